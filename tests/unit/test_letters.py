"""Letters as PDF: the penalty arithmetic of L441-10 / D441-5 by hand, and the letters read back with pypdf."""

from __future__ import annotations

import io
import json
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from pypdf import PdfReader

from relance.channels.email import DeliveryError
from relance.channels.letters import (
    EcbRateError,
    EcbRates,
    _warn_unverified,
    half_year_start,
    invoice_penalty,
    load_ecb_rates,
    postal_address,
    render_letter_pdf,
)
from relance.channels.outbox import LetterOutbox

SHIPPED = load_ecb_rates()
LETTER_DATE = date(2025, 8, 20)
SENDER = "Service recouvrement"
SENDER_ADDRESS = "Acme SAS\n1 place de la Bourse\n75002 Paris"


def _penalty(amount: str, due: date, letter: date, rates: EcbRates = SHIPPED, margin: str = "10"):
    return invoice_penalty("F-1", Decimal(amount), due, letter, ecb_rates=rates, margin_points=margin, indemnity_eur=40)


# ---------------------------------------------------------------------------------------------------------
# the rate table and the arithmetic
# ---------------------------------------------------------------------------------------------------------
def test_the_shipped_table_gives_the_published_half_year_rates():
    """The ECB rate in force on 1 January / 1 July, as the half-year reference rates of L441-10 were published."""
    expected = {
        date(2023, 7, 1): "4.00",
        date(2024, 1, 1): "4.50",
        date(2024, 7, 1): "4.25",
        date(2025, 1, 1): "3.15",
        date(2025, 7, 1): "2.15",
        date(2026, 1, 1): "2.15",
    }
    assert {day: SHIPPED.in_force(day) for day in expected} == {d: Decimal(r) for d, r in expected.items()}
    assert SHIPPED.in_force(date(2016, 3, 16)) == Decimal("0.00")  # a change applies from its effective date
    assert SHIPPED.in_force(date(2016, 3, 15)) == Decimal("0.05")
    assert SHIPPED.verified_through == date(2026, 3, 19)
    assert SHIPPED.is_verified(date(2026, 1, 1)) and not SHIPPED.is_verified(date(2026, 7, 1))
    assert (half_year_start(date(2025, 6, 30)), half_year_start(date(2025, 7, 1))) == (
        date(2025, 1, 1),
        date(2025, 7, 1),
    )


def test_penalties_across_a_half_year_boundary_by_hand():
    """1,000.00 due 15 May 2025, letter of 20 August: 46 days (16 May-30 June) at 3.15 + 10 = 13.15 %, then 51
    days (1 July-20 August) at 2.15 + 10 = 12.15 %: 16.5726... + 16.9767... = 33.5493... -> 33.55."""
    p = _penalty("1000.00", date(2025, 5, 15), LETTER_DATE)
    assert [(x.start, x.end, x.days, x.annual_rate) for x in p.periods] == [
        (date(2025, 5, 16), date(2025, 6, 30), 46, Decimal("13.15")),
        (date(2025, 7, 1), date(2025, 8, 20), 51, Decimal("12.15")),
    ]
    assert p.days_late == 97
    exact = (Decimal("1000") * Decimal("13.15") * 46 + Decimal("1000") * Decimal("12.15") * 51) / Decimal(36500)
    assert sum(x.interest for x in p.periods) == exact
    assert p.penalty == Decimal("33.55") and p.indemnity == Decimal("40.00")


def test_the_issue_s_case_due_2026_05_15_letter_2026_08_20_with_two_rates():
    """A table where the ECB moved on 10 June 2026 (a hypothetical 2.40): the first half-year keeps the rate in
    force on 1 January (2.15), the second takes the one in force on 1 July. 1,000.00: 15.3123... + 17.3260..."""
    rates = EcbRates(((date(2025, 6, 11), Decimal("2.15")), (date(2026, 6, 10), Decimal("2.40"))), date(2026, 12, 31))
    p = _penalty("1000.00", date(2026, 5, 15), date(2026, 8, 20), rates)
    assert [(x.days, x.annual_rate) for x in p.periods] == [(46, Decimal("12.15")), (51, Decimal("12.40"))]
    assert p.penalty == Decimal("32.64") and p.rate_verified


def test_a_period_over_new_year_is_split_and_the_margin_is_a_setting():
    p = _penalty("2400.00", date(2024, 12, 20), date(2025, 1, 10), margin="8")
    assert [(x.days, x.ecb_rate, x.annual_rate) for x in p.periods] == [
        (11, Decimal("4.25"), Decimal("12.25")),  # 21-31 December: the rate of 1 July 2024
        (10, Decimal("3.15"), Decimal("11.15")),  # 1-10 January: the rate of 1 January 2025
    ]
    # 2400 x 12.25 % x 11/365 = 8.8602... ; 2400 x 11.15 % x 10/365 = 7.3315... ; sum 16.1917... -> 16.19
    assert p.penalty == Decimal("16.19")


def test_rounding_is_exact_decimal_half_up_to_the_cent():
    """12.50 x 7.30 % x 2/365 = 0.005 exactly: half up gives 0.01 (binary floats and banker's rounding give 0.00)."""
    p = _penalty("12.50", date(2020, 3, 1), date(2020, 3, 3), margin="7.3")  # ECB rate 0.00 in 2020
    assert sum(x.interest for x in p.periods) == Decimal("0.005")
    assert p.penalty == Decimal("0.01")


def test_an_invoice_not_late_on_the_letter_date_owes_nothing():
    on_time = _penalty("500.00", LETTER_DATE, LETTER_DATE)
    assert (on_time.periods, on_time.penalty, on_time.indemnity) == ((), Decimal("0.00"), Decimal("0.00"))
    one_day = _penalty("500.00", date(2025, 8, 19), LETTER_DATE)
    assert one_day.days_late == 1 and one_day.indemnity == Decimal("40.00")


def test_a_date_before_the_table_is_a_clear_error_and_a_bad_table_is_refused(tmp_path: Path):
    with pytest.raises(EcbRateError, match=r"no ECB main refinancing rate known on 2009-01-01.*starts on 2009-05-13"):
        _penalty("100.00", date(2009, 3, 1), date(2009, 6, 1))
    bad = tmp_path / "rates.yaml"
    bad.write_text(
        "rates:\n  - {effective_date: 2025-06-11, mro_rate: '2.15'}\n"
        "  - {effective_date: 2024-06-12, mro_rate: '4.25'}\n"
    )
    with pytest.raises(ValueError, match="increasing"):
        load_ecb_rates(bad)
    bad.write_text("rates:\n  - {effective_date: 2025-06-11}\n")
    with pytest.raises(ValueError, match="mro_rate"):
        load_ecb_rates(bad)


def test_postal_address_lines_by_country():
    fr = {"address_line1": "12 rue des Lilas", "address_line2": None, "postal_code": "09100", "city": "Pamiers"}
    assert postal_address({**fr, "country_code": "FR"}) == ["12 rue des Lilas", "09100 PAMIERS"]
    gb = {"address_line1": "4 Station Road", "postal_code": "ls1 4ab", "city": "Leeds", "country_code": "GB"}
    assert postal_address(gb) == ["4 Station Road", "LEEDS", "LS1 4AB", "ROYAUME-UNI"]
    assert postal_address({**fr, "address_line1": "  "}) is None
    assert postal_address({**fr, "city": float("nan")}) is None


# ---------------------------------------------------------------------------------------------------------
# the letters, read back
# ---------------------------------------------------------------------------------------------------------
STATEMENT = [
    {"invoice_id": "F-0012", "open_amount": 1000.0, "due_date": "2025-05-15", "days_overdue": 97, "amount": 1000.0},
    {"invoice_id": "F-0040", "open_amount": 2310.5, "due_date": "2025-07-31", "days_overdue": 20, "amount": 2500.0},
    {"invoice_id": "F-0077", "open_amount": 400.0, "due_date": "2025-09-30", "days_overdue": -41, "amount": 400.0},
]


def _row(**overrides):
    row = {
        "reminder_key": "rk-0123456789abcdef",
        "as_of_date": LETTER_DATE,
        "invoice_id": "F-0012",
        "customer_id": "C-1",
        "customer_name": "Bâti Sud",
        "customer_type": "B2B",
        "tone": "formal_notice",
        "language": "fr",
        "currency": "EUR",
        "open_amount": 3710.5,
        "statement": json.dumps(STATEMENT),
        "address_line1": "12 rue des Lilas",
        "address_line2": "ZA des Portes",
        "postal_code": "09100",
        "city": "Pamiers",
        "country_code": "FR",
    }
    return {**row, **overrides}


def _pdf(row, **kwargs) -> bytes:
    return render_letter_pdf(
        row,
        sender_name=SENDER,
        sender_address=SENDER_ADDRESS,
        as_of_date=kwargs.pop("as_of_date", LETTER_DATE),
        ecb_rates=kwargs.pop("ecb_rates", SHIPPED),
        margin_points=kwargs.pop("margin_points", 10),
        indemnity_eur=kwargs.pop("indemnity_eur", 40),
    )


def _text(pdf: bytes) -> str:
    """The letter's text, no-break spaces as spaces and every run of white space one space."""
    reader = PdfReader(io.BytesIO(pdf))
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages).replace("\u00a0", " "))


def test_a_formal_notice_to_a_business_states_its_address_invoices_penalties_and_indemnities():
    pdf = _pdf(_row())
    assert pdf.startswith(b"%PDF-")
    text = _text(pdf)
    for expected in (
        "Service recouvrement Acme SAS 1 place de la Bourse 75002 Paris",
        "Bâti Sud 12 rue des Lilas ZA des Portes 09100 PAMIERS",
        "Le 20/08/2025",
        "Lettre recommandée avec avis de réception",
        "Objet : Mise en demeure de payer",
        "Total restant dû 3 710,50 €",  # the statement of account, the three invoices
        "L441-10",
        "D441-5",
        "arrêté au 20/08/2025",
    ):
        assert expected in text, expected
    # the penalty table: the two invoices late on the letter's date, not the one due in September
    assert "13,15 % × 46 j 12,15 % × 51 j 33,55 €" in text  # F-0012, by hand above
    assert "2 310,50 € 12,15 % × 20 j 15,38 €" in text  # F-0040: 2310.50 x 12.15 % x 20/365 = 15.3823...
    assert text.count("40,00 €") == 2 and "Total 3 310,50 € 48,93 € 80,00 €" in text
    assert "Total réclamé : 3 310,50 € de principal + 48,93 € de pénalités + 80,00 € d'indemnités = 3 439,43 €" in text
    assert "majoré de 10 points" in text and "à vérifier" not in text


def test_the_indemnity_and_margin_settings_reach_the_letter():
    text = _text(_pdf(_row(), margin_points=8, indemnity_eur=50))
    assert "11,15 % × 46 j 10,15 % × 51 j" in text and "majoré de 8 points" in text
    assert "Total 3 310,50 €" in text and "100,00 €" in text


def test_a_consumer_s_formal_notice_has_no_indemnity_and_no_l441_10_penalties():
    text = _text(_pdf(_row(customer_type="B2C", customer_name="Jean Dupont")))
    assert "Mise en demeure de payer" in text and "Jean Dupont 12 rue des Lilas" in text
    assert "intérêts au taux légal à compter de la présente mise en demeure (article 1231-6 du Code civil)" in text
    for absent in ("L441-10", "D441-5", "indemnité", "Pénalités", "40,00 €", "Taux annuel"):
        assert absent not in text, absent


def test_a_firm_letter_to_a_business_computes_no_penalties():
    text = _text(_pdf(_row(tone="firm")))
    assert "Objet :" in text and "F-0040" in text and "Taux annuel" not in text and "L441-10" not in text
    assert "Lettre recommandée" not in text


def test_an_english_letter_is_in_english_and_keeps_the_indemnity_in_euros_beside_another_currency():
    row = _row(
        language="en",
        currency="GBP",
        customer_name="Leeds Trading Ltd",
        statement=None,
        invoice_id="INV-7",
        open_amount=1500.0,
        due_date="2025-05-15",
        address_line1="4 Station Road",
        address_line2=None,
        postal_code="LS1 4AB",
        city="Leeds",
        country_code="GB",
    )
    text = _text(_pdf(row))
    for expected in (
        "Leeds Trading Ltd 4 Station Road LEEDS LS1 4AB ROYAUME-UNI",
        "20 Aug 2025",
        "By registered post with acknowledgement of receipt",
        "Subject: Formal notice to pay: invoice INV-7",
        "Dear Sir or Madam,",
        "Late-payment penalties (art. L441-10 of the French Commercial Code)",
        "Days late",
        "13.15% × 46 d 12.15% × 51 d £50.32 €40.00",  # 1500 x (13.15 % x 46 + 12.15 % x 51)/365 = 50.3239...
        "Total claimed: £1,550.32 (outstanding and penalties), plus €40.00 of indemnities.",
        "Yours faithfully",
    ):
        assert expected in text, expected
    assert "Madame, Monsieur" not in text and "Objet" not in text


def test_a_hostile_customer_name_is_printed_as_text():
    name = '<b>Evil</b> & <font size="40" color="red">Co</font> <br/>'
    text = _text(_pdf(_row(customer_name=name, address_line2="<i>Bât. B</i>")))
    assert name.strip() in text and "<i>Bât. B</i>" in text


def test_a_letter_without_a_postal_address_says_so_where_the_address_goes(caplog):
    text = _text(_pdf(_row(address_line1=None, postal_code=None, city=None)))
    assert "Bâti Sud ADRESSE POSTALE MANQUANTE : compléter depuis la fiche client C-1" in text
    assert "no postal address" in caplog.text


def test_a_rate_after_the_checked_table_is_flagged_for_an_operator(caplog):
    _warn_unverified.cache_clear()  # said once per process: whatever ran before, this test hears it
    row = _row(statement=None, open_amount=1000.0, due_date="2026-05-15")
    text = _text(_pdf(row, as_of_date=date(2026, 8, 20)))
    assert "12,15 % × 46 j 12,15 % × 51 j *" in text and "* Taux BCE à vérifier" in text
    assert "the ECB rate in force on 2026-07-01 is taken as 2.15" in caplog.text


# ---------------------------------------------------------------------------------------------------------
# the outbox
# ---------------------------------------------------------------------------------------------------------
def test_the_outbox_writes_one_pdf_per_key_the_same_bytes_each_time(tmp_path: Path):
    outbox = LetterOutbox(
        tmp_path, sender_name=SENDER, sender_address=SENDER_ADDRESS, as_of_date=LETTER_DATE, ecb_rates=SHIPPED
    )
    result = outbox.send(_row(), "rk-0123456789abcdef")
    path = tmp_path / "letter" / "rk-0123456789abcdef.pdf"
    assert result.outbox_path == path and result.provider_message_id is None
    first = path.read_bytes()
    assert "33,55 €" in _text(first)
    outbox.send(_row(), "rk-0123456789abcdef")
    assert path.read_bytes() == first  # invariant mode: a rerun writes the same file
    assert sorted(p.name for p in (tmp_path / "letter").iterdir()) == ["rk-0123456789abcdef.pdf"]  # no temp file


def test_a_letter_that_cannot_be_computed_is_a_delivery_error_and_no_file(tmp_path: Path):
    outbox = LetterOutbox(tmp_path, sender_name=SENDER)
    row = _row(statement=None, due_date="2008-12-31", as_of_date=date(2009, 2, 1))
    with pytest.raises(DeliveryError, match="not written: no ECB main refinancing rate") as caught:
        outbox.send(row, "rk-old")
    assert not caught.value.retryable and not (tmp_path / "letter" / "rk-old.pdf").exists()
