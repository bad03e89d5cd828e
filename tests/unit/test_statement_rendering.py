"""What the channels make of the reminder engine's plan rows (issue 12): one message per customer with a statement of
account, the formal notice (B2B and B2C), English, SendGrid's ``send_at`` for a deferred email, and the call list's
columns for a negotiator. A per-invoice row of the old policy renders as it always did."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from relance.channels.email import OutboxTransport, build_mail, reminder_text, send_at_for
from relance.channels.outbox import CALL_CONTEXT_COLUMNS, CALL_LIST_COLUMNS, CallListOutbox, LetterOutbox
from relance.tabular_output import read_csv_records
from tests.conftest import require
from tests.standins.sendgrid import SPEC_PATH, load_validator

AS_OF = date(2026, 3, 15)
NOW = datetime(2026, 3, 15, 19, 30, tzinfo=UTC)  # 20:30 in Paris: past a debtor's contact hours
HOSTILE = '<script>alert("x")</script> & Fils'
NNBSP, NBSP = "\u202f", "\u00a0"

STATEMENT = [  # deliberately not in due-date order: the message lists the oldest first
    {"invoice_id": "F-0040", "issue_date": "2026-02-01", "due_date": "2026-03-03", "amount": 310.0,
     "open_amount": 310.0, "days_overdue": 12},
    {"invoice_id": "F-0012", "issue_date": "2026-01-01", "due_date": "2026-01-29", "amount": 1500.0,
     "open_amount": 1200.0, "days_overdue": 45},
    {"invoice_id": "F-0077", "issue_date": "2026-02-10", "due_date": "2026-03-12", "amount": 2700.0,
     "open_amount": 2700.0, "days_overdue": 3},
]  # fmt: skip
#: The pre-issue-12 call list header, as files written by the previous version have it.
OLD_CALL_HEADER = CALL_LIST_COLUMNS[: CALL_LIST_COLUMNS.index("scenario")]


def _money(text: str) -> str:
    """``1 200,00 €`` as format_amount writes it (narrow no-break space, no-break space)."""
    return text.replace("_", NNBSP).replace(" €", NBSP + "€")


def _engine_row(**overrides) -> dict:
    row = {
        "reminder_key": "rk-customer-1",
        "invoice_id": "F-0012",  # the lead invoice
        "customer_id": "C-1",
        "customer_name": HOSTILE,
        "customer_type": "B2B",
        "recipient": "compta@example.org",
        "phone": "+33199001234",
        "tone": "cordial",
        "channel": "email",
        "open_amount": 4210.0,  # the total due
        "currency": "EUR",
        "due_date": pd.Timestamp("2026-01-29"),
        "days_overdue": 45,
        "statement": json.dumps(STATEMENT),
        "invoice_ids": json.dumps(["F-0012", "F-0040", "F-0077"]),
        "language": "fr",
        "scenario": "b2b_standard",
        "step": "overdue_21",
        "as_of_date": pd.Timestamp(AS_OF),
        "model_version": "7",
        "model_run_id": "run-7",
    }
    row.update(overrides)
    return row


def _legacy_row(**overrides) -> dict:
    """A row of relance.reminders.policy.plan_reminders: one invoice, none of the engine's columns."""
    row = {
        "reminder_key": "rk-legacy",
        "invoice_id": "F-1",
        "customer_id": "C-9",
        "customer_name": "Client 1",
        "customer_type": "B2C",
        "recipient": "client1@example.org",
        "phone": "+33100000001",
        "tone": "cordial",
        "channel": "email",
        "step": "overdue_7",
        "open_amount": 1001.0,
        "currency": "EUR",
        "due_date": pd.Timestamp("2026-03-07"),
        "days_overdue": 8,
        "as_of_date": pd.Timestamp(AS_OF),
        "model_version": "7",
        "model_run_id": "run-7",
    }
    row.update(overrides)
    return row


def _mail(row: dict, now: datetime = NOW) -> dict:
    return build_mail(
        row, sender_email="relances@example.com", sender_name="Service recouvrement", lineage={}, now=now
    ).get()


class _Tables(HTMLParser):
    """The text of every table cell, row by row; and every paragraph's text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.paragraphs: list[str] = []
        self._cell: list[str] | None = None
        self._para: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "p":
            self._para = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "p" and self._para is not None:
            self.paragraphs.append("".join(self._para))
            self._para = None

    def handle_data(self, data):
        for part in (self._cell, self._para):
            if part is not None:
                part.append(data)


def _parse(html_text: str) -> _Tables:
    parser = _Tables()
    parser.feed(html_text)
    return parser


# ---------------------------------------------------------------------------------------------------------
# a per-invoice row: exactly today's message
# ---------------------------------------------------------------------------------------------------------
def test_a_per_invoice_row_reads_as_it_always_did():
    body = _mail(_legacy_row())
    assert body["subject"] == "Facture F-1 : règlement en attente"
    assert body["content"][0]["value"] == (
        "Bonjour Client 1,\n\n"
        f"Sauf erreur de notre part, la facture n° F-1, échue le 07/03/2026, d'un montant restant dû de "
        f"{_money('1_001,00 €')}, n'a pas encore été réglée.\n\n"
        "Il s'agit peut-être d'un simple oubli : nous vous remercions de bien vouloir procéder à son règlement dans "
        "les meilleurs délais.\n\n"
        "Si vous l'avez réglée entre-temps, merci de ne pas tenir compte de ce message.\n\n"
        "Cordialement,\nService recouvrement"
    )
    assert body["content"][1]["value"].startswith('<!doctype html><html lang="fr"><body><p>Bonjour Client 1,</p>')
    assert "<table" not in body["content"][1]["value"]
    assert "send_at" not in body
    assert body["personalizations"][0]["custom_args"] == {
        "reminder_key": "rk-legacy",
        "invoice_id": "F-1",
        "model_version": "7",
        "model_run_id": "run-7",
    }  # no scenario, no step: a legacy row's metadata is unchanged
    assert sorted(body["categories"]) == ["cordial", "relance"]


def test_a_statement_of_one_invoice_keeps_the_single_invoice_wording():
    one = [dict(STATEMENT[1])]
    subject, text = reminder_text(
        _engine_row(statement=json.dumps(one), open_amount=1200.0, customer_name="Alpha"), sender_name="S"
    )
    assert subject == "Facture F-0012 : règlement en attente"
    assert f"la facture n° F-0012, échue le 29/01/2026, d'un montant restant dû de {_money('1_200,00 €')}" in text
    assert "Relevé" not in subject and "Total" not in text


# ---------------------------------------------------------------------------------------------------------
# a statement of account
# ---------------------------------------------------------------------------------------------------------
def test_three_invoices_make_one_email_with_a_statement_in_the_text_part():
    body = _mail(_engine_row())
    assert body["subject"] == f"Relevé de compte : 3 factures échues, {_money('4_210,00 €')}"
    text = body["content"][0]["value"]
    lines = [line for line in text.splitlines() if line.startswith("- Facture")]
    assert lines == [
        f"- Facture F-0012 du 01/01/2026, échéance le 29/01/2026 (45 jours de retard) : restant dû "
        f"{_money('1_200,00 €')} sur {_money('1_500,00 €')}",
        f"- Facture F-0040 du 01/02/2026, échéance le 03/03/2026 (12 jours de retard) : restant dû "
        f"{_money('310,00 €')}",
        f"- Facture F-0077 du 10/02/2026, échéance le 12/03/2026 (3 jours de retard) : restant dû "
        f"{_money('2_700,00 €')}",
    ]
    assert f"Total restant dû : {_money('4_210,00 €')}" in text
    assert "les 3 factures ci-dessous" in text and text.startswith(f"Bonjour {HOSTILE},")


def test_the_html_part_has_the_same_statement_as_a_table_and_escapes_the_customer_name():
    html_part = _mail(_engine_row())["content"][1]["value"]
    assert "<script>" not in html_part and "&lt;script&gt;" in html_part and "&amp; Fils" in html_part
    parsed = _parse(html_part)
    assert parsed.paragraphs[0] == f"Bonjour {HOSTILE},"  # the escaped name reads back as the name
    assert parsed.rows == [
        ["Facture", "Date", "Échéance", "Retard", "Montant", "Restant dû"],
        ["F-0012", "01/01/2026", "29/01/2026", "45 jours", _money("1_500,00 €"), _money("1_200,00 €")],
        ["F-0040", "01/02/2026", "03/03/2026", "12 jours", _money("310,00 €"), _money("310,00 €")],
        ["F-0077", "10/02/2026", "12/03/2026", "3 jours", _money("2_700,00 €"), _money("2_700,00 €")],
        ["Total restant dû", _money("4_210,00 €")],
    ]


def test_a_hostile_invoice_number_is_escaped_in_the_table():
    statement = [dict(STATEMENT[0], invoice_id="<img src=x onerror=alert(1)>"), STATEMENT[1]]
    html_part = _mail(_engine_row(statement=json.dumps(statement), open_amount=1510.0))["content"][1]["value"]
    assert "<img" not in html_part
    assert _parse(html_part).rows[2][0] == "<img src=x onerror=alert(1)>"


def test_the_total_is_the_sum_of_the_lines_and_a_different_open_amount_is_logged(caplog):
    with caplog.at_level(logging.WARNING, logger="relance.channels.email"):
        subject, text = reminder_text(_engine_row(open_amount=9999.0), sender_name="S")
    assert subject.endswith(_money("4_210,00 €")) and f"Total restant dû : {_money('4_210,00 €')}" in text
    assert "differs from its statement's total" in caplog.text


@pytest.mark.parametrize(
    ("days", "tone", "subject"),
    [
        ((-3, -10, -20), "preventive", "Relevé de compte : 3 factures à échéance"),
        ((30, 5, -2), "cordial", "Relevé de compte : 3 factures dont 2 échues"),
        ((30, -5, -2), "cordial", "Relevé de compte : 3 factures dont 1 échue,"),
        ((30, 5, 2), "firm", "Relance, relevé de compte : 3 factures échues"),
    ],
)
def test_the_subject_counts_the_invoices_and_says_which_are_overdue(days, tone, subject):
    statement = [dict(line, days_overdue=d) for line, d in zip(STATEMENT, days, strict=True)]
    got, text = reminder_text(_engine_row(statement=json.dumps(statement), tone=tone), sender_name="S")
    assert got.startswith(subject)
    assert "non échue" in text if min(days) < 0 else "non échue" not in text


# ---------------------------------------------------------------------------------------------------------
# the formal notice
# ---------------------------------------------------------------------------------------------------------
def test_a_formal_notice_to_a_business_states_penalties_the_indemnity_per_invoice_and_a_deadline():
    subject, text = reminder_text(_engine_row(tone="formal_notice"), sender_name="S")
    assert subject == f"Mise en demeure de payer : 3 factures échues, {_money('4_210,00 €')}"
    assert text.startswith("Madame, Monsieur,")
    assert "nous vous mettons en demeure" in text and "dans un délai de 8 jours" in text
    assert "article L441-10 du Code de commerce" in text and "pénalités de retard" in text
    assert "article D441-5" in text and f"40{NBSP}€ due pour chaque facture" in text
    assert f"soit {_money('120,00 €')} pour 3 factures" in text  # 40 euros x 3 invoices paid late
    assert "Code civil" not in text


def test_a_formal_notice_for_one_business_invoice_claims_one_indemnity():
    row = _engine_row(tone="formal_notice", statement=None, open_amount=1200.0)
    subject, text = reminder_text(row, sender_name="S")
    assert subject == "Mise en demeure de payer : facture F-0012"
    assert f"soit {_money('40,00 €')} pour cette facture" in text and "L441-10" in text


@pytest.mark.parametrize("customer_type", ["B2C", None])  # unknown type: no professional's indemnity claimed
def test_a_formal_notice_to_a_consumer_claims_no_indemnity_and_stays_courteous(customer_type):
    subject, text = reminder_text(_engine_row(tone="formal_notice", customer_type=customer_type), sender_name="S")
    assert subject.startswith("Mise en demeure de payer : 3 factures échues")
    assert "dans un délai de 8 jours" in text and "Total restant dû" in text
    for professional in ("L441-10", "D441-5", "indemnité", "pénalités", "procédure"):
        assert professional not in text
    assert "taux légal" in text and "article 1231-6 du Code civil" in text and "échéancier" in text


# ---------------------------------------------------------------------------------------------------------
# English
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("tone", "single_subject", "grouped_subject"),
    [
        ("preventive", "Reminder: invoice F-0012 falls due on 29 Jan 2026", "Statement of account: 3 overdue"),
        ("cordial", "Invoice F-0012: payment outstanding", "Statement of account: 3 overdue invoices, €4,210.00"),
        ("firm", "Reminder: invoice F-0012 unpaid", "Payment reminder, statement of account: 3 overdue"),
        ("formal_notice", "Formal notice to pay: invoice F-0012", "Formal notice to pay: 3 overdue invoices"),
    ],
)
def test_every_tone_has_english_wording(tone, single_subject, grouped_subject):
    single = _engine_row(tone=tone, language="en", statement=None, open_amount=1200.0, customer_name="Acme Ltd")
    subject, text = reminder_text(single, sender_name="Collections")
    assert subject == single_subject
    assert "€1,200.00" in text and text.endswith("\nCollections")
    grouped = _mail(_engine_row(tone=tone, language="EN-gb"))
    assert grouped["subject"].startswith(grouped_subject)
    for part in (text, grouped["content"][0]["value"]):
        for french in ("Bonjour", "facture", "Cordialement", "restant dû", NBSP + "€"):
            assert french not in part
    assert (
        "- Invoice F-0012 of 1 Jan 2026, due 29 Jan 2026 (45 days overdue): €1,200.00 of €1,500.00 outstanding"
        in (grouped["content"][0]["value"])
    )
    html_part = grouped["content"][1]["value"]
    assert html_part.startswith('<html lang="en">', len("<!doctype html>")) and "<script>" not in html_part
    assert "&lt;script&gt;" in html_part or tone == "formal_notice"  # a formal notice greets no one by name
    assert _parse(html_part).rows[0] == ["Invoice", "Date", "Due", "Overdue", "Amount", "Outstanding"]


def test_an_english_formal_notice_to_a_business_cites_the_same_law():
    _, text = reminder_text(_engine_row(tone="formal_notice", language="en"), sender_name="S")
    assert "within 8 days" in text and "L441-10" in text and "D441-5" in text and "€120.00 for 3 invoices" in text
    _, b2c = reminder_text(_engine_row(tone="formal_notice", language="en", customer_type="B2C"), sender_name="S")
    assert "D441-5" not in b2c and "indemnity" not in b2c and "payment plan" in b2c


def test_an_unknown_tone_or_a_malformed_statement_is_refused():
    with pytest.raises(ValueError, match="unknown tone"):
        reminder_text(_engine_row(tone="threatening"), sender_name="S")
    with pytest.raises(ValueError, match="invoice_id"):
        reminder_text(_engine_row(statement=json.dumps([{"open_amount": 1}])), sender_name="S")


# ---------------------------------------------------------------------------------------------------------
# send_at
# ---------------------------------------------------------------------------------------------------------
def test_a_future_deliver_at_becomes_a_spec_valid_send_at(tmp_path):
    paris_morning = datetime(2026, 3, 16, 8, 0, tzinfo=ZoneInfo("Europe/Paris"))  # Monday 08:00 CET = 07:00 UTC
    body = _mail(_engine_row(deliver_at=paris_morning))
    assert body["send_at"] == int(datetime(2026, 3, 16, 7, 0, tzinfo=UTC).timestamp()) == 1773644400
    require(SPEC_PATH.exists(), f"SendGrid Mail Send spec not found at {SPEC_PATH}")
    assert not list(load_validator().iter_errors(body))

    # the outbox writes what would be POSTed: send_at included
    mail = build_mail(
        _engine_row(deliver_at=paris_morning), sender_email="r@example.com", sender_name="S", lineage={}, now=NOW
    )
    written = json.loads(OutboxTransport(tmp_path).send(mail, "rk-customer-1").outbox_path.read_text())
    assert written["send_at"] == 1773644400


def test_a_naive_deliver_at_is_utc_and_is_never_rounded_earlier():
    naive = pd.Timestamp("2026-03-16 07:00:00.400")  # ops.reminders_planned.deliver_at: a UTC TIMESTAMP
    assert send_at_for(naive, now=NOW) == 1773644401
    assert send_at_for(naive.to_pydatetime(), now=NOW.replace(tzinfo=None)) == 1773644401


@pytest.mark.parametrize("deliver_at", [None, pd.NaT, NOW, NOW - timedelta(hours=2)])
def test_no_send_at_without_a_future_deliver_at(deliver_at):
    assert "send_at" not in _mail(_engine_row(deliver_at=deliver_at))


def test_a_deliver_at_beyond_sendgrids_72_hours_is_refused_not_sent_early():
    with pytest.raises(ValueError, match="72 hours"):
        _mail(_engine_row(deliver_at=NOW + timedelta(hours=72, minutes=1)))
    assert _mail(_engine_row(deliver_at=NOW + timedelta(hours=72)))["send_at"] == int(NOW.timestamp()) + 72 * 3600


# ---------------------------------------------------------------------------------------------------------
# custom args
# ---------------------------------------------------------------------------------------------------------
def test_custom_args_carry_ids_scenario_and_step_and_nothing_personal():
    args = _mail(_engine_row())["personalizations"][0]["custom_args"]
    assert args == {
        "reminder_key": "rk-customer-1",
        "invoice_id": "F-0012",
        "model_version": "7",
        "model_run_id": "run-7",
        "scenario": "b2b_standard",
        "step": "overdue_21",
    }
    hostile = _mail(_engine_row(scenario="Relance Dupont <dupont@example.org>"))
    assert "scenario" not in hostile["personalizations"][0]["custom_args"]
    assert "dupont" not in json.dumps(hostile["personalizations"][0]["custom_args"]).lower()


# ---------------------------------------------------------------------------------------------------------
# the letter
# ---------------------------------------------------------------------------------------------------------
def _pdf_text(pdf: bytes) -> str:
    import io

    from pypdf import PdfReader

    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    return " ".join(text.replace(NBSP, " ").split())


def test_a_grouped_letter_carries_the_statement_and_an_english_one_is_in_english(tmp_path):
    """The letter is a PDF (relance.channels.letters; its own tests in test_letters.py): read back, it has the
    statement of account, the formal notice's figures, and English words for an English customer."""
    letters = LetterOutbox(tmp_path, sender_name="Service recouvrement", as_of_date=AS_OF)
    french = _pdf_text(letters.render(_engine_row(tone="formal_notice", channel="letter")))
    for line in ("F-0012 01/01/2026 29/01/2026 45 jours", "F-0040", "F-0077", "Total restant dû 4 210,00 €"):
        assert line in french, line
    assert "Mise en demeure de payer" in french and "D441-5" in french and HOSTILE in french

    english = _pdf_text(letters.render(_engine_row(tone="firm", channel="letter", language="en")))
    assert "Subject: Payment reminder" in english and "15 Mar 2026" in english
    assert "ADRESSE POSTALE MANQUANTE : compléter depuis la fiche client C-1 (postal address missing)" in english


# ---------------------------------------------------------------------------------------------------------
# the call list
# ---------------------------------------------------------------------------------------------------------
def test_a_call_line_says_what_is_owed_what_to_say_when_to_call_and_the_last_contact(tmp_path):
    row = _engine_row(
        channel="call",
        tone="firm",
        priority=1,
        talking_points=json.dumps(["=Promised 12/03, not paid", "Disputes nothing"]),
        call_window="10:00-13:00 / 14:00-20:00 Europe/Paris",
        last_contact_at=pd.Timestamp("2026-03-10 09:15:00"),
        last_contact_channel="email",
    )
    outbox = CallListOutbox(tmp_path, AS_OF)
    outbox.send(row, "rk-customer-1")
    outbox.send(_legacy_row(channel="call", tone="firm"), "rk-legacy")

    raw = outbox.path.read_text(encoding="utf-8").splitlines()
    assert raw[0].split(",") == list(CALL_LIST_COLUMNS)
    assert "'=Promised 12/03" in raw[1]  # a talking point that starts like a formula is written as text
    grouped, single = read_csv_records(outbox.path)
    assert {c: grouped[c] for c in CALL_CONTEXT_COLUMNS} == {
        "scenario": "b2b_standard",
        "priority": "1",
        "total_due": "4210.0",
        "invoice_count": "3",
        "invoices": f"F-0012 {_money('1_200,00 €')} +45 j; F-0040 {_money('310,00 €')} +12 j; "
        f"F-0077 {_money('2_700,00 €')} +3 j",
        "talking_points": "=Promised 12/03, not paid | Disputes nothing",
        "call_window": "10:00-13:00 / 14:00-20:00 Europe/Paris",
        "last_contact": "2026-03-10 09:15 UTC (email)",
    }
    assert (grouped["invoice_id"], grouped["phone"]) == ("F-0012", "+33199001234")
    # a per-invoice line: its one invoice, and blanks where the policy has nothing to say
    assert (single["total_due"], single["invoice_count"], single["invoices"]) == (
        "1001.0",
        "1",
        f"F-1 {_money('1_001,00 €')} +8 j",
    )
    assert single["scenario"] == single["talking_points"] == single["last_contact"] == ""


def test_a_call_list_with_the_previous_header_is_rewritten_with_the_new_columns(tmp_path):
    path = tmp_path / "calls" / f"{AS_OF.isoformat()}.csv"
    path.parent.mkdir(parents=True)
    old_line = ",".join({"reminder_key": "k0", "customer_name": "Beta"}.get(c, "") for c in OLD_CALL_HEADER)
    path.write_text(",".join(OLD_CALL_HEADER) + "\n" + old_line + "\n", encoding="utf-8")

    outbox = CallListOutbox(tmp_path, AS_OF)
    outbox.send(_engine_row(channel="call", talking_points="Call the CFO"), "rk-customer-1")
    outbox.send(_engine_row(channel="call"), "k0")  # listed before the upgrade: not added twice

    rows = read_csv_records(path)
    assert path.read_text(encoding="utf-8").splitlines()[0] == ",".join(CALL_LIST_COLUMNS)
    assert [r["reminder_key"] for r in rows] == ["k0", "rk-customer-1"]
    assert rows[0]["customer_name"] == "Beta" and all(rows[0][c] == "" for c in CALL_CONTEXT_COLUMNS)
    assert (rows[1]["talking_points"], rows[1]["invoice_count"]) == ("Call the CFO", "3")
