"""The finance workbook, read back with openpyxl: the expected sheets per language, numbers that stay numbers with
their currency's format, totals that reconcile with the summary, and every cell that comes from data written as
text: no formula anywhere in the file, whatever a customer or scenario is called."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime

import openpyxl
import pytest

from relance.reports.finance_tables import build_document
from relance.reports.finance_xlsx import build_workbook, workbook_bytes
from relance.tabular_output import needs_quote, set_xlsx_cell
from tests.unit.finance_pack_factory import EVIL, tiny_pack

WEEKLY_SHEETS = {
    "fr": [
        "Synthèse", "Balance âgée", "Par client", "Par segment", "Par secteur", "DSO", "CEI", "Prévision",
        "Prévu vs réel", "À risque", "Alertes", "Relances", "Effet témoin", "Coût du retard", "Notes",
    ],
    "en": [
        "Summary", "Aged balance", "By customer", "By segment", "By sector", "DSO", "CEI", "Forecast", "Backtest",
        "At risk", "Alerts", "Reminders", "Holdout effect", "Late payment cost", "Notes",
    ],
}  # fmt: skip


def _reload(language: str, kind: str = "weekly", **overrides):
    data = workbook_bytes(build_document(tiny_pack(**overrides), kind, language))
    return data, openpyxl.load_workbook(io.BytesIO(data))


def _rows(ws):
    header = [c.value for c in ws[1]]
    return [dict(zip(header, [c.value for c in row], strict=True)) for row in ws.iter_rows(min_row=2)]


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_expected_sheets_in_the_readers_language(language) -> None:
    _, wb = _reload(language)
    assert wb.sheetnames == WEEKLY_SHEETS[language]
    for name in wb.sheetnames[1:-1]:  # the tables (not the summary, not the notes)
        assert wb[name].freeze_panes == "A2", f"{name}: header frozen"
        assert wb[name]["A1"].font.bold
    assert wb[wb.sheetnames[-1]]["A2"].value == "Covers open invoices only.", "the forecast's notes"
    _, flash = _reload(language, "flash")
    assert flash.sheetnames == (
        ["Synthèse", "Alertes", "Relances du jour"] if language == "fr" else ["Summary", "Alerts", "Today's reminders"]
    )


def test_no_cell_of_the_file_is_a_formula_and_data_reads_back_unchanged() -> None:
    data, wb = _reload("fr")
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/sheet")]
        assert sheets and all(b"<f>" not in z.read(n) and b"<f " not in z.read(n) for n in sheets)
    customers = _rows(wb["Par client"])
    by_id = {r["N° client"]: r for r in customers}
    assert by_id["C2"]["Client"] == EVIL and by_id["C3"]["Client"] == "+33 Martin"
    assert by_id["C4"]["Client"] == "@Smith Ltd"
    cells = [c for row in wb["Par client"].iter_rows(min_row=2) for c in row if isinstance(c.value, str)]
    for cell in cells:
        assert cell.data_type == "s"
        if needs_quote(cell.value):
            assert cell.number_format == "@" and cell.quotePrefix, cell.coordinate
    scenario = [r["Scénario"] for r in _rows(wb["Relances"])]
    assert "=cmd|' /C calc'!A0" in scenario
    at_risk = _rows(wb["À risque"])
    assert {r["Raison principale"] for r in at_risk} >= {"-1 risk"}


def test_numbers_stay_numbers_with_their_currency_format_and_dates_stay_dates() -> None:
    _, wb = _reload("fr")
    ws = wb["Par client"]
    header = [c.value for c in ws[1]]
    total = header.index("Total") + 1
    eur, gbp = ws.cell(row=2, column=total), ws.cell(row=5, column=total)
    assert isinstance(eur.value, float) and eur.value == pytest.approx(1734.56)
    assert eur.number_format == '#,##0.00\\ "€";-#,##0.00\\ "€"'
    assert gbp.number_format.endswith('"£"')
    _, en = _reload("en")
    assert en["By customer"].cell(row=2, column=total).number_format.startswith('"€"')
    dso = _rows(wb["DSO"])
    assert isinstance(dso[0]["Semaine au"], datetime | date)
    cei = wb["CEI"]
    header = [c.value for c in cei[1]]
    cell = cei.cell(row=2, column=header.index("CEI") + 1)
    assert cell.value == pytest.approx(0.7857) and cell.number_format == "0.0%"


def test_totals_reconcile_with_the_summary_sheet() -> None:
    _, wb = _reload("en")
    summary = wb["Summary"]
    rows = {r[0].value: [c.value for c in r[1:]] for r in summary.iter_rows() if r[0].value}
    header = next(r for r in summary.iter_rows(values_only=True) if r[0] == "Metric")
    assert header[1:3] == ("EUR", "GBP")
    open_eur, open_gbp = rows["Open receivables"][:2]
    customers = _rows(wb["By customer"])
    for currency, expected in (("EUR", open_eur), ("GBP", open_gbp)):
        assert sum(r["Total"] for r in customers if r["Currency"] == currency) == pytest.approx(expected)
    for sheet in ("By segment", "By sector"):
        totals = {r["Currency"]: r["Total"] for r in _rows(wb[sheet]) if r[wb[sheet]["B1"].value] == "Total"}
        assert totals == pytest.approx({"EUR": open_eur, "GBP": open_gbp}), sheet
    aged = {r["Currency"]: r["Total"] for r in _rows(wb["Aged balance"])}
    assert aged == pytest.approx({"EUR": open_eur, "GBP": open_gbp})
    assert rows["Cost of late payment to date"][:2] == [8.0, 0.8]


def test_set_xlsx_cell_types_and_control_characters() -> None:
    ws = openpyxl.Workbook().active
    assert set_xlsx_cell(ws["A1"], "=1+1").data_type == "s"
    assert set_xlsx_cell(ws["A2"], "plain").number_format == "General"
    assert set_xlsx_cell(ws["A3"], "bad\x00byte").value == "bad\ufffdbyte"
    assert set_xlsx_cell(ws["A4"], float("nan")).value is None
    assert set_xlsx_cell(ws["A5"], True).value is True
    buf = io.BytesIO()
    ws.parent.save(buf)
    back = openpyxl.load_workbook(io.BytesIO(buf.getvalue())).active
    assert back["A1"].value == "=1+1" and back["A1"].data_type == "s"


def test_build_workbook_on_a_pack_without_forecast_or_cei() -> None:
    doc = build_document(
        tiny_pack(cei=None, forecast_weeks=None, forecast_backtest=None, missing={"cei": "serving.report_cei"}),
        "weekly",
        "en",
    )
    wb = build_workbook(doc)
    assert "CEI" not in wb.sheetnames and "Forecast" not in wb.sheetnames
    texts = [c.value for c in wb["Summary"]["A"] if c.value]
    assert any("serving.report_cei does not exist" in t for t in texts)
