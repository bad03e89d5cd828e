"""A collector's call file read and checked row by row: encodings and separators Excel writes, local times, French
amounts, and every broken rule named by line and field (nothing dropped silently)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from relance.reminders.calls import (
    CALL_OUTCOMES,
    FILE_COLUMNS,
    CallFileError,
    default_call_id,
    read_call_file,
    template_csv,
)
from relance.sources.base import SOURCE_ROW

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
PARIS = "Europe/Paris"


def _read(path: Path, **kwargs: object):
    return read_call_file(path, timezone=PARIS, now=NOW, **kwargs)  # type: ignore[arg-type]


def _errors(call_file) -> dict[tuple[int, str | None], str]:
    return {(e.line, e.field): e.message for e in call_file.errors}


def test_an_excel_latin1_semicolon_file_with_local_times_and_french_amounts(tmp_path: Path) -> None:
    text = (
        "Customer_ID;called_at;outcome;promised_date;promised_amount;collector;note;téléphone\n"
        "C1;02/11/2026 10:15;Promesse;20/11/2026;1 234,50 €;Hélène;réglera le solde;'+33199001234\n"
        "C2;2026-07-01 09:00;messagerie;;;Hélène;;\n"
    )
    path = tmp_path / "appels.csv"
    path.write_bytes(text.encode("cp1252"))
    calls = _read(path)
    assert calls.errors == [] and calls.delimiter == ";" and calls.encoding not in ("utf-8", "utf-8-sig")
    assert calls.ignored_columns == ("téléphone",)
    first, second = calls.rows
    assert first.called_at == datetime(2026, 11, 2, 9, 15, tzinfo=UTC)  # CET, UTC+1
    assert second.called_at == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)  # CEST, UTC+2
    assert (first.outcome, first.promised_date, first.promised_amount) == (
        "promise",
        date(2026, 11, 20),
        Decimal("1234.50"),
    )
    assert first.collector == "Hélène" and first.note == "réglera le solde"
    assert second.outcome == "voicemail" and second.promised_amount is None
    assert first.call_id == default_call_id("C1", first.called_at)
    assert first.raw_values()["called_at"] == "2026-11-02 09:15:00"


def test_a_comma_utf8_file_with_offsets_and_its_own_call_ids(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text(
        "\ufeffcall_id,reminder_key,customer_id,called_at,outcome\n"
        "K-1,rk1,C1,2026-11-02T10:15:00+01:00,reached\n"
        "K-2,,C2,2026-11-02T09:20:00Z,do_not_contact\n",
        encoding="utf-8",
    )
    calls = _read(path)
    assert calls.errors == [] and calls.delimiter == ","
    assert [(r.call_id, r.reminder_key, r.called_at.hour) for r in calls.rows] == [("K-1", "rk1", 9), ("K-2", None, 9)]
    assert calls.rows[1].suppressed_channel == "*"


def test_every_broken_rule_names_its_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text(
        "customer_id;called_at;outcome;promised_date;promised_amount;note\n"
        "C1;2026-11-02 10:00;promise;;;\n"  # 2: a promise without a date
        "C1;2026-11-02 11:00;promise;2026-11-01;;\n"  # 3: promised before the call
        "C1;2026-11-02 12:00;promise;2026-11-20;-10;\n"  # 4: amount not positive
        "C1;2026-11-02 13:00;promis;;;\n"  # 5: unknown outcome
        ";2026-11-02 14:00;reached;;;\n"  # 6: no customer
        "C1;2026-11-02;reached;;;\n"  # 7: no time of day
        "C1;2027-11-02 10:00;reached;;;\n"  # 8: in the future
        "C1;2026-11-02 15:00;reached;2026-11-20;;\n"  # 9: promised date without a promise
        "C1;2026-11-02 16:00;reached;;;a;b\n"  # 10: too many fields
        "C1;2026-11-02 17:00;promise;2026-11-20;12,345;\n"  # 11: three decimals
        "\n"  # a blank line: skipped, not an error
        "C9;2026-11-02 18:00;reached;;;\n"  # 13: unknown customer
        "C1;2026-11-02 19:00;reached;;;ok\n"  # 14: good
        "C1;2026-11-02 19:00;reached;;;again\n",  # 15: the same call again
        encoding="utf-8",
    )
    calls = _read(path, known_customers={"C1"})
    errors = _errors(calls)
    assert "outcome 'promise' needs the date" in errors[(2, "promised_date")]
    assert "is before the call (2026-11-02)" in errors[(3, "promised_date")]
    assert "must be greater than 0" in errors[(4, "promised_amount")]
    assert "'promis' is not a call outcome" in errors[(5, "outcome")]
    assert all(o in errors[(5, "outcome")] for o in CALL_OUTCOMES)
    assert "is empty" in errors[(6, "customer_id")]
    assert "has no time of day" in errors[(7, "called_at")]
    assert "in the future" in errors[(8, "called_at")]
    assert "goes with outcome 'promise'" in errors[(9, "promised_date")]
    assert "7 fields but the header has 6" in errors[(10, None)]
    assert "more than two decimals" in errors[(11, "promised_amount")]
    assert "'C9' is not a customer loaded" in errors[(13, "customer_id")]
    assert "the same call as line 14" in errors[(15, "call_id")]
    assert [r.line for r in calls.rows] == [14]
    assert calls.rows_read == 14 - 1  # every non-blank data line: good or rejected

    extract = calls.extract()
    assert [r.row_number for r in extract.rejects] == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15]
    assert extract.rejects[0].reason.startswith("field promised_date: ")
    assert extract.rejects[0].raw["customer_id"] == "C1"
    assert extract.table.column(SOURCE_ROW).to_pylist() == [14]
    assert calls.errors[0].describe(path).startswith("calls.csv, line 2, field promised_date: ")


def test_a_file_without_a_required_column_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text("customer_id;outcome\nC1;reached\n", encoding="utf-8")
    with pytest.raises(CallFileError, match="missing column.*called_at.*relance calls template"):
        _read(path)
    path.write_text("client;date;résultat\nC1;2026-11-02 10:00;joint\n", encoding="utf-8")
    with pytest.raises(CallFileError, match="names none of the columns"):
        _read(path)


def test_the_template_reads_back_and_excel_sep_line_is_understood(tmp_path: Path) -> None:
    assert template_csv().splitlines() == [";".join(FILE_COLUMNS)]
    path = tmp_path / "template.csv"
    path.write_text(template_csv(example=True), encoding="utf-8")
    calls = _read(path)
    assert calls.errors == [] and [r.outcome for r in calls.rows] == ["promise", "voicemail"]

    path.write_text("sep=,\n" + template_csv(",", example=True), encoding="utf-8")
    calls = _read(path)
    assert calls.errors == [] and [r.line for r in calls.rows] == [3, 4]


def test_an_xlsx_sheet_is_read_like_a_csv(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["customer_id", "called_at", "outcome", "promised_date", "promised_amount", "collector"])
    ws.append(["C1", datetime(2026, 11, 2, 10, 15), "promise", date(2026, 11, 20), 1234.5, "Claire"])
    ws.append(["C2", "02/11/2026 10:40", "dispute", None, None, "Claire"])
    ws.append(["C3", datetime(2026, 11, 2, 11, 0), "promise", None, 50, "Claire"])
    path = tmp_path / "calls.xlsx"
    wb.save(path)
    calls = _read(path)
    assert [(r.customer_id, r.called_at.hour, r.outcome) for r in calls.rows] == [
        ("C1", 9, "promise"),
        ("C2", 9, "dispute"),
    ]
    assert calls.rows[0].promised_amount == Decimal("1234.50") and calls.rows[0].promised_date == date(2026, 11, 20)
    assert list(_errors(calls)) == [(4, "promised_date")]
