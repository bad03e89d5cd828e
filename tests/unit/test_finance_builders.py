"""The finance outputs' pure builders on a tiny pack (tests/unit/finance_pack_factory.py): numbers formatted per
language, totals that reconcile per currency (never across), the DSO change, the WAPE printed beside its
baselines, the holdout effect, sections that say "not available" on an older warehouse, the flash's subset."""

from __future__ import annotations

import math

import pytest

from relance.reports import i18n
from relance.reports.finance_tables import (
    aged_by_currency,
    build_document,
    format_value,
    markdown,
    summary_rows,
)
from tests.unit.finance_pack_factory import AS_OF, EVIL, tiny_pack

NNBSP, NBSP, MINUS = "\u202f", "\u00a0", "\u2212"


def _figure(doc, key):
    return next(k for k in doc.key_figures if k.key == key)


def _table(doc, name):
    return next(t for t in doc.tables() if t.name == name)


def _section(doc, section_id):
    return next(s for s in doc.sections if s.id == section_id)


# --- formats ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "currency", "language", "expected"),
    [
        (1234.56, "EUR", "fr", f"1{NNBSP}234,56{NBSP}€"),
        (1234.56, "EUR", "en", "€1,234.56"),
        (1234.5, "GBP", "fr", f"1{NNBSP}234,50{NBSP}£"),
        (1234.5, "GBP", "en", "£1,234.50"),
        (-1234.565, "EUR", "fr", f"{MINUS}1{NNBSP}234,57{NBSP}€"),  # half up, as by hand
        (-0.001, "EUR", "en", "€0.00"),  # never "-0"
        (1234.5, "CHF", "en", f"CHF{NBSP}1,234.50"),
        (1234.5, "CHF", "fr", f"1{NNBSP}234,50{NBSP}CHF"),
        (None, "EUR", "fr", "n/d"),
        (math.nan, "EUR", "en", "n/a"),
        (1e7, "EUR", "fr", f"10{NNBSP}000{NNBSP}000,00{NBSP}€"),
    ],
)
def test_money_is_written_the_readers_way(value, currency, language, expected) -> None:
    assert i18n.money(value, currency, language) == expected


def test_numbers_percentages_dates_per_language() -> None:
    assert (i18n.number(48.25, "fr"), i18n.number(48.25, "en")) == ("48,3", "48.3")
    assert (i18n.percent(0.1234, "fr"), i18n.percent(0.1234, "en")) == (f"12,3{NBSP}%", "12.3%")
    assert i18n.percent(78.57, "fr", ratio=False) == f"78,6{NBSP}%"
    assert (i18n.day(AS_OF, "fr"), i18n.day(AS_OF, "en")) == ("26/10/2026", "26 Oct 2026")
    assert i18n.points(0.5, "fr") == f"+50,0{NBSP}pts"
    assert i18n.signed_number(-2.25, "en") == f"{MINUS}2.3"
    assert format_value(None, "date", "fr") == "" and format_value(math.nan, "money", "en", "EUR") == "n/a"


def test_the_catalogue_has_the_same_keys_in_both_languages() -> None:
    assert set(i18n.CATALOGUE["fr"]) == set(i18n.CATALOGUE["en"])
    assert set(i18n.CODES["fr"]) == set(i18n.CODES["en"])
    assert set(i18n.SECTORS["fr"]) == set(i18n.SECTORS["en"])
    sheets = [k for k in i18n.CATALOGUE["fr"] if k.startswith("sheet_")]
    assert all(len(i18n.CATALOGUE[lang][k]) <= 31 for lang in ("fr", "en") for k in sheets), "Excel's limit"
    with pytest.raises(ValueError, match="unsupported language 'de'"):
        i18n.t("de", "weekly_title", date="x")


def test_money_formats_for_the_workbook() -> None:
    assert i18n.money_format("EUR", "fr") == '#,##0.00\\ "€";-#,##0.00\\ "€"'
    assert i18n.money_format("GBP", "en") == '"£"#,##0.00;-"£"#,##0.00'


# --- totals -----------------------------------------------------------------------------------------------------


def test_aged_balance_by_currency_reconciles_with_the_per_bucket_relation() -> None:
    pack = tiny_pack()
    from_customers = aged_by_currency(pack).set_index("currency")
    from_buckets = aged_by_currency(tiny_pack(aged_by_customer=None)).set_index("currency")
    # EUR: 1234.56 + 300 + 75; GBP: 4234.50 -- the same whichever relation it comes from
    assert from_customers["total_open"].round(2).to_dict() == {"EUR": 1609.56 + 500.0, "GBP": 4234.5}
    for column in ("not_due", "d1_30", "d31_60", "d61_90", "d90_plus", "total_open", "overdue_amount"):
        assert from_customers[column].round(2).to_dict() == from_buckets[column].round(2).to_dict(), column
    assert from_customers["invoice_count"].to_dict() == {"EUR": 8, "GBP": 3}


@pytest.mark.parametrize("table_name", ["aged_by_segment", "aged_by_sector"])
def test_segment_and_sector_groups_add_up_to_each_currency_and_never_mix_them(table_name) -> None:
    pack = tiny_pack()
    doc = build_document(pack, "weekly", "fr")
    table = _table(doc, table_name).frame
    totals = aged_by_currency(pack).set_index("currency")["total_open"]
    for currency, part in table.groupby("currency"):
        groups, total = part[~part["_total"]], part[part["_total"]]
        assert len(total) == 1 and total["group"].iloc[0] == "Total"
        assert groups["total_open"].sum() == pytest.approx(totals[currency])
        assert total["total_open"].iloc[0] == pytest.approx(totals[currency])
    assert set(table["currency"]) == {"EUR", "GBP"}
    labels = set(table["group"])
    if table_name == "aged_by_segment":
        assert {"Entreprises · petite", "Particuliers", "Entreprises · grande"} <= labels
    else:
        assert {"F · Construction", "Non renseigné", "G · Commerce, réparation auto"} <= labels


def test_key_figures_in_each_language() -> None:
    fr, en = build_document(tiny_pack(), "weekly", "fr"), build_document(tiny_pack(), "weekly", "en")
    assert fr.currencies == en.currencies == ("EUR", "GBP")
    assert _figure(fr, "open_receivables").texts == {"EUR": f"2{NNBSP}109,56{NBSP}€", "GBP": f"4{NNBSP}234,50{NBSP}£"}
    assert _figure(en, "open_receivables").texts == {"EUR": "€2,109.56", "GBP": "£4,234.50"}
    # countback DSO on the last Sunday (48.25) against the Sunday a week before (50.5)
    assert _figure(fr, "dso_countback_days").texts["EUR"] == f"48,3{NBSP}j".replace(NBSP, " ")
    assert _figure(fr, "dso_change").texts == {"EUR": f"{MINUS}2,3 j", "GBP": "+2,5 j"}
    assert _figure(en, "dso_change").values["EUR"] == pytest.approx(-2.25)
    assert _figure(en, "cei_13w_pct").texts == {"EUR": "78.6%", "GBP": "80.0%"}
    assert _figure(en, "cash_expected_13w").texts == {"EUR": "€6,000.00", "GBP": "£1,800.00"}
    assert _figure(fr, "cash_this_week_range").texts["EUR"] == f"500{NBSP}€ – 3{NNBSP}000{NBSP}€"
    assert _figure(en, "late_payment_cost_to_date").texts == {"EUR": "€8.00", "GBP": "£0.80"}
    assert fr.title == "Rapport hebdomadaire du poste clients au 26/10/2026"
    assert en.subject == "relance: weekly receivables report as of 26 Oct 2026"


def test_summary_rows_are_rectangular_and_per_currency() -> None:
    rows = summary_rows(tiny_pack())
    assert [r["currency"] for r in rows] == ["EUR", "GBP"]
    assert len({tuple(r) for r in rows}) == 1, "same keys in every row"
    eur = rows[0]
    assert (eur["open_receivables"], eur["overdue"], eur["invoices"]) == (2109.56, 859.56, 8)
    assert eur["overdue_share"] == pytest.approx(859.56 / 2109.56, abs=1e-4)
    assert (eur["dso_countback_days"], eur["dso_countback_last_week"], eur["dso_simple_days"]) == (48.25, 50.5, 60.3)
    assert eur["forecast_wape"] == pytest.approx(40 / 290, abs=1e-4)
    assert rows[1]["cash_expected_this_week"] == 300.0  # the first forecast week


def test_wape_is_printed_beside_the_baselines() -> None:
    en = build_document(tiny_pack(), "weekly", "en")
    notes = _section(en, "backtest").notes
    assert (
        notes[0]
        == "WAPE EUR over 2 past weeks: 13.8% (goal ≤ 8%); baselines: customer's mean delay 20.0%, at due date 25.0%."
    )
    assert "customer's mean delay n/a" in notes[1] and "22.2%" in notes[1]
    backtest = _table(en, "backtest")
    assert [c.label for c in backtest.columns][-2:] == ["Baseline: customer's mean delay", "Baseline: at due date"]
    assert backtest.rows_for_html()["week_start"].iloc[0] > backtest.rows_for_html()["week_start"].iloc[1]
    no_wape = build_document(tiny_pack(wape={"EUR": math.nan}), "weekly", "fr")
    assert _section(no_wape, "backtest").notes[0] == "WAPE EUR : non calculable (pas assez de semaines passées)."


def test_holdout_effect_overall_by_channel_and_by_scenario() -> None:
    doc = build_document(tiny_pack(), "weekly", "fr")
    holdout = _table(doc, "holdout").frame
    first = holdout.iloc[0]
    assert first["group"] == "toutes relances (intention de traiter)"
    assert (first["n_treated"], first["rate_treated"], first["rate_holdout"]) == (10, 0.7, 0.2)
    assert first["effect"] == pytest.approx(0.5)
    assert list(holdout["group"]) == ["toutes relances (intention de traiter)", "e-mail", "Scénario b2b_standard"]
    without = build_document(tiny_pack(experiment_outcomes=None), "weekly", "en")
    assert "Too early to tell" in _section(without, "reminders").notes[0]


def test_a_relation_missing_on_an_older_warehouse_is_a_section_that_says_so() -> None:
    pack = tiny_pack(
        cei=None,
        late_payment_cost=None,
        dso_trend=None,
        forecast_weeks=None,
        forecast_backtest=None,
        missing={"cei": "serving.report_cei", "late_payment_cost": "serving.report_late_payment_cost",
                 "dso_trend": "serving.report_dso_trend"},
    )  # fmt: skip
    doc = build_document(pack, "weekly", "en")
    assert (
        _section(doc, "cei").unavailable
        == "Not available: the relation serving.report_cei does not exist in this warehouse yet."
    )
    assert "serving.report_late_payment_cost" in _section(doc, "late-cost").unavailable
    assert "serving.report_dso_trend" in _section(doc, "dso").unavailable
    assert "no cash-in forecast for this day" in _section(doc, "forecast").unavailable
    assert set(doc.charts) == {"aged"}
    # the simple DSO of serving.report_dso still reaches the key figures
    assert _figure(doc, "dso_simple_days").texts["EUR"] == "60.3 d"
    assert _figure(doc, "dso_countback_days").texts["EUR"] == "n/a"


def test_a_pack_missing_a_column_is_refused_with_the_relation_named() -> None:
    with pytest.raises(ValueError, match=r"serving.report_cei is missing columns \['cei_pct'\]"):
        tiny_pack(cei=tiny_pack().cei.drop(columns=["cei_pct"]))


def test_the_flash_is_the_short_subset() -> None:
    flash = build_document(tiny_pack(), "flash", "fr")
    assert [s.id for s in flash.sections] == ["alerts", "reminders-today"]
    assert flash.charts == {}
    assert [k.key for k in flash.key_figures] == [
        "open_receivables",
        "overdue",
        "overdue_share",
        "dso_countback_days",
        "dso_countback_last_week",
        "dso_change",
        "dso_simple_days",
        "cash_expected_this_week",
        "cash_this_week_range",
    ]
    alerts = _table(flash, "alerts").frame
    assert list(alerts["title"]) == ["Changement de dirigeant : Dupont SA"], "only the day's new alerts"
    reminders = _table(flash, "reminders_today").frame
    eur = reminders[reminders["currency"] == "EUR"].iloc[0]
    assert (eur["messages"], eur["invoices"], eur["amount"], eur["channel_label"]) == (2, 3, 150.0, "e-mail")
    assert set(reminders["currency"]) == {"EUR", "GBP"}, "one row per currency, never a sum across them"


def test_weekly_sections_in_order_and_html_limits() -> None:
    doc = build_document(tiny_pack(), "weekly", "en")
    assert [s.id for s in doc.sections] == [
        "aged", "aged-detail", "dso", "cei", "forecast", "backtest", "at-risk", "alerts", "reminders", "late-cost",
    ]  # fmt: skip
    assert set(doc.charts) == {"aged", "dso", "forecast"}
    customers = _table(doc, "aged_by_customer")
    assert len(customers.frame) == 4 and list(customers.rows_for_html()["customer_id"]) == ["C1", "C2", "C4"]
    at_risk = _table(doc, "at_risk").frame
    assert at_risk.loc[at_risk["invoice_id"] == "I2", "customer"].iloc[0] == f"{EVIL} (insolvency proceedings)"
    risk = _table(doc, "at_risk")
    assert [c.label for c in risk.columns_for_xlsx()][-2:] == ["Latest event", "Event date"]
    html = [c.key for c in risk.columns_for_html()]
    assert "risk_event_text" in html and not {"currency", "invoice_id", "risk_event_date"} & set(html)
    assert risk.frame.loc[0, "risk_event_text"] == "director change (1 May 2026)"
    forecast_notes = _section(doc, "forecast").notes
    assert "Covers open invoices only." not in forecast_notes and "Notes sheet" in forecast_notes[-1]
    assert doc.workbook_notes == ("Covers open invoices only.",)
    assert [d.isoformat() for d in _table(doc, "dso_trend").rows_for_html()["week_end_date"][:2]] == [
        "2026-10-25",
        "2026-10-18",
    ], "latest first"
    cei = _table(doc, "cei").frame
    assert list(cei["period_label"])[:2] == ["Last 13 weeks", "19 Oct 2026 – 25 Oct 2026"]


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown report kind 'monthly'"):
        build_document(tiny_pack(), "monthly", "fr")  # type: ignore[arg-type]


def test_markdown_has_the_key_figures_and_keeps_data_as_text() -> None:
    doc = build_document(
        tiny_pack(reminder_performance=None, missing={"reminder_performance": "serving.x"}), "weekly", "en"
    )
    text = markdown(doc, files=["/tmp/a.html"])
    assert "| Open receivables | €2,109.56 | £4,234.50 |" in text
    assert "`/tmp/a.html`" in text and "## Cost of late payment" in text
    assert "_Not available: the relation serving.x does not exist in this warehouse yet._" not in text  # holdout
    names = tiny_pack().reminder_performance.assign(scenario=["[x](https://evil.example)", "a|b", "<img src=x>"])
    text = markdown(build_document(tiny_pack(reminder_performance=names), "weekly", "en"))
    rows = [line for line in text.splitlines() if line.startswith("| EUR |") or line.startswith("| GBP |")]
    assert "| EUR | \\[x\\](https://evil.example) | email |" in text
    assert "| EUR | a\\|b | letter |" in text and "\\<img src=x\\>" in text
    assert all(line.count(" | ") == rows[0].count(" | ") for line in rows if "email" in line or "letter" in line)
