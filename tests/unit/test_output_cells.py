"""Outputs finance opens in Excel never execute formulas, and phone numbers stay text (issue 9, item 7).

Reproduction: a customer named ``=HYPERLINK("http://evil","click")`` (or ``+cmd|' /C calc'!A0``, ``@SUM(1)``) went
verbatim into the call list (``<outbox>/calls/<date>.csv``) and the finance report's ``at_risk.csv``, where a
spreadsheet runs it; an E.164 number ``+33199001234`` was written bare, which Excel reads as a number (or a
formula) and loses the ``+``.
"""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from relance.channels.outbox import CALL_LIST_COLUMNS, CallListOutbox
from relance.reminders.policy import EXPLANATION_COLUMNS
from relance.reports.finance import write_finance_report
from relance.tabular_output import (
    FORMULA_TRIGGERS,
    csv_rows,
    neutralise_cell,
    neutralise_frame,
    read_csv_records,
    restore_cell,
    write_csv,
)

AS_OF = date(2026, 3, 31)
PHONE = "+33199001234"
HOSTILE_NAMES = (
    '=HYPERLINK("http://evil.example","click")',
    "+cmd|' /C calc'!A0",
    "@SUM(1)",
    "-2+3+cmd|' /C calc'!A0",
    '\uff1dHYPERLINK("http://evil.example")',  # full-width equals sign
    "\t=1+1",
    "  =1+1",
    "'=1+1",  # an apostrophe already there must not let the rest through once restored
)


def _raw_cells(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def _starts_like_a_formula(cell: str) -> bool:
    stripped = cell.lstrip("'").lstrip(" \u00a0\u3000")
    return bool(cell) and (cell[0] in FORMULA_TRIGGERS or (cell[0] != "'" and stripped[:1] in FORMULA_TRIGGERS))


# ---------------------------------------------------------------------------------------------------------
# the rule
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+33199001234", "'+33199001234"),
        ("-12.50", "'-12.50"),  # a number as text is text
        ("@SUM(1)", "'@SUM(1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("\n=1", "'\n=1"),
        (" =1", "' =1"),
        ("\uff0b1", "'\uff0b1"),
        ("\uff20x", "'\uff20x"),
        ("\uff0dx", "'\uff0dx"),
        ("'=1", "''=1"),
        ("Alpha SA", "Alpha SA"),
        ("O'Neil", "O'Neil"),
        ("'t Hooft", "'t Hooft"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_text_that_could_start_a_formula_gets_one_apostrophe_and_comes_back_unchanged(value, written):
    assert neutralise_cell(value) == written
    assert restore_cell(written) == value


@pytest.mark.parametrize(
    "value",
    [-12.5, -3, 0, Decimal("-12.50"), np.float64(-1.5), np.int64(-2), True, None, float("nan"), pd.NaT, AS_OF],
)
def test_numbers_dates_and_missing_values_are_written_as_they_are(value):
    out = neutralise_cell(value)
    assert out is value or (pd.isna(out) and pd.isna(value))


def test_a_frame_keeps_its_numeric_columns_and_neutralises_its_text():
    frame = pd.DataFrame(
        {"name": ["=x", "ok", None], "phone": [PHONE, "+447700900123", None], "amount": [-1.5, 2.0, np.nan]}
    )
    out = neutralise_frame(frame)
    assert out["name"].tolist()[:2] == ["'=x", "ok"] and out["name"].isna().tolist() == [False, False, True]
    assert out["phone"].tolist()[:2] == ["'" + PHONE, "'+447700900123"]
    assert out["amount"].dtype == frame["amount"].dtype
    pd.testing.assert_series_equal(out["amount"], frame["amount"])
    assert frame.loc[0, "name"] == "=x"  # the caller's frame is not changed


def test_write_csv_round_trips_through_read_csv_records(tmp_path):
    frame = pd.DataFrame({"customer_name": list(HOSTILE_NAMES), "phone": [PHONE] * len(HOSTILE_NAMES)})
    path = write_csv(frame, tmp_path / "out.csv")
    for row in _raw_cells(path)[1:]:
        assert not any(_starts_like_a_formula(c) for c in row), row
    assert [r["customer_name"] for r in read_csv_records(path)] == list(HOSTILE_NAMES)
    assert {r["phone"] for r in read_csv_records(path)} == {PHONE}


def test_csv_rows_writes_blank_for_missing_and_ignores_unknown_keys():
    text = csv_rows([{"a": "=1", "b": None, "zzz": "x"}], ("a", "b"), header=True)
    assert text == "a,b\n'=1,\n"


# ---------------------------------------------------------------------------------------------------------
# the call list
# ---------------------------------------------------------------------------------------------------------
def _call(i: int, name: str) -> dict:
    return {
        "as_of_date": AS_OF,
        "invoice_id": f"INV-{i}",
        "customer_id": f"C{i}",
        "customer_name": name,
        "phone": PHONE,
        "open_amount": Decimal("-12.50") if i == 0 else Decimal("1200.00"),
        "currency": "EUR",
        "due_date": pd.Timestamp("2026-02-01"),
        "days_overdue": -3 if i == 0 else 58,
        "p_late": 0.42,
        "risk_grade": "D",
        "predicted_payment_date": date(2026, 4, 20),
        "predicted_payment_date_p10": pd.Timestamp("2026-04-02"),
        "predicted_payment_date_p90": None,
        "reason_1": name,  # a reason is text a spreadsheet must not run either
        "reason_2": "Already 58 days overdue",
        "reason_3": None,
        "step": "firm",
        "tone": "firm",
    }


def test_call_list_neutralises_hostile_names_and_keeps_the_phone_as_text(tmp_path):
    outbox = CallListOutbox(tmp_path, AS_OF)
    for i, name in enumerate(HOSTILE_NAMES):
        outbox.send(_call(i, name), f"key{i}")

    rows = _raw_cells(outbox.path)
    assert tuple(rows[0]) == CALL_LIST_COLUMNS
    col = {name: i for i, name in enumerate(rows[0])}
    for row in rows[1:]:
        text_cells = [
            row[col[c]] for c in ("reminder_key", "invoice_id", "customer_id", "customer_name", "phone", "reason_1")
        ]
        assert not any(_starts_like_a_formula(c) for c in text_cells), row
        assert row[col["phone"]] == "'" + PHONE  # text in a spreadsheet, '+' and every digit kept
    # genuine numbers stay numbers a spreadsheet can sum
    assert (rows[1][col["open_amount"]], rows[1][col["days_overdue"]]) == ("-12.50", "-3")

    back = read_csv_records(outbox.path)
    assert [r["customer_name"] for r in back] == list(HOSTILE_NAMES)
    assert [r["reason_1"] for r in back] == list(HOSTILE_NAMES)
    assert {r["phone"] for r in back} == {PHONE}
    # why the invoice is on the list: grade, payment date range (ISO dates, blank when unknown), reasons
    first = back[0]
    assert (first["risk_grade"], first["reason_2"], first["reason_3"]) == ("D", "Already 58 days overdue", "")
    assert (first["predicted_payment_date_p10"], first["predicted_payment_date"]) == ("2026-04-02", "2026-04-20")
    assert first["predicted_payment_date_p90"] == ""


def test_a_call_list_of_an_earlier_version_gets_the_new_columns_and_keeps_its_lines(tmp_path):
    old_columns = [c for c in CALL_LIST_COLUMNS if c not in EXPLANATION_COLUMNS]
    path = tmp_path / "calls" / f"{AS_OF.isoformat()}.csv"
    path.parent.mkdir(parents=True)
    path.write_text(
        ",".join(old_columns) + "\n" + ",".join("k0" if c == "reminder_key" else "x" for c in old_columns) + "\n"
    )
    outbox = CallListOutbox(tmp_path, AS_OF)
    outbox.send(_call(1, "Alpha"), "key1")
    outbox.send(_call(1, "Alpha"), "k0")  # already listed before the upgrade: not added again
    rows = read_csv_records(path)
    assert tuple(rows[0]) == CALL_LIST_COLUMNS and [r["reminder_key"] for r in rows] == ["k0", "key1"]
    assert rows[0]["customer_name"] == "x" and rows[0]["risk_grade"] == ""  # old line kept, new cells blank
    assert rows[1]["risk_grade"] == "D" and rows[1]["reason_1"] == "Alpha"


def test_call_list_still_refuses_a_key_it_already_holds(tmp_path):
    CallListOutbox(tmp_path, AS_OF).send(_call(1, "=HYPERLINK(1)"), "key1")
    again = CallListOutbox(tmp_path, AS_OF)  # a new instance reads the keys from the file
    again.send(_call(1, "=HYPERLINK(1)"), "key1")
    assert len(_raw_cells(again.path)) == 2  # header + one line


# ---------------------------------------------------------------------------------------------------------
# the finance report
# ---------------------------------------------------------------------------------------------------------
def _report_frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    aged = pd.DataFrame(
        {"currency": ["EUR"], "aging_bucket": ["1-30"], "invoice_count": [len(HOSTILE_NAMES)], "open_amount": [-5.0]}
    )
    dso = pd.DataFrame({"currency": ["EUR"], "receivables": [-5.0], "sales_90d": [100.0], "dso_days": [-1.5]})
    n = len(HOSTILE_NAMES) + 1
    at_risk = pd.DataFrame(
        {
            "invoice_id": [f"INV-{i}" for i in range(n)],
            "customer_id": ["-C1", *(f"C{i}" for i in range(1, n))],
            "customer_name": [*HOSTILE_NAMES, "<img src=x onerror=alert(1)>"],
            "phone": [PHONE] * n,
            "currency": ["EUR"] * n,
            "open_amount": [-12.5] + [100.0] * (n - 1),
            "days_overdue": [-5] + [10] * (n - 1),
            "p_late": [0.5] * n,
            "target_name": ["late_any"] * n,
            "risk_grade": ["=B", *(["B"] * (n - 1))],
            "predicted_payment_date": [pd.Timestamp("2026-04-20")] * n,
            "reason_1": [*HOSTILE_NAMES, None],
            "expected_at_risk": [-6.25] + [50.0] * (n - 1),
            "risk_rank": list(range(1, n + 1)),
        }
    )
    return aged, dso, at_risk


def test_report_csvs_neutralise_names_keep_numbers_and_the_html_escapes_them(tmp_path):
    aged, dso, at_risk = _report_frames()
    report = write_finance_report(
        aged, dso, at_risk, as_of_date=AS_OF, out_dir=tmp_path, model_version="7", flow_run_id="fr-1"
    )
    rows = _raw_cells(report.csv_paths["at_risk"])
    col = {name: i for i, name in enumerate(rows[0])}
    numeric = {"open_amount", "days_overdue", "p_late", "expected_at_risk", "risk_rank"}
    for row in rows[1:]:
        for name, i in col.items():
            if name not in numeric:
                assert not _starts_like_a_formula(row[i]), (name, row[i])
        assert row[col["phone"]] == "'" + PHONE
    assert rows[1][col["customer_id"]] == "'-C1"
    # genuine numbers stay numbers: pandas (and a spreadsheet) read them back as given
    back = pd.read_csv(report.csv_paths["at_risk"])
    pd.testing.assert_series_equal(back["open_amount"], at_risk["open_amount"])
    pd.testing.assert_series_equal(back["days_overdue"], at_risk["days_overdue"])
    assert [r["customer_name"] for r in read_csv_records(report.csv_paths["at_risk"])] == at_risk[
        "customer_name"
    ].tolist()
    for name in ("aged_balance", "dso"):
        for row in _raw_cells(report.csv_paths[name])[1:]:
            assert all(c == "" or not _starts_like_a_formula(c) or float(c) < 0 for c in row), row

    html = report.html_path.read_text(encoding="utf-8")
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "=HYPERLINK(&#34;http://evil.example&#34;,&#34;click&#34;)" in html  # shown as text, escaped once
