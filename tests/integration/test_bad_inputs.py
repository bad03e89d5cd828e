"""The bad-input corpus: what real exports get wrong, imported end to end with ``import_source``.

Every case writes a small demo-format landing directory (``customers`` + ``invoices``) with one defect, imports
it through the ``demo`` profile (or a copy with one reader option changed) into a fresh DuckDB warehouse with
the real loader and GX suites, and checks both the message or quarantine reason AND that the counts reconcile:
rows read = rows loaded + rows unchanged + rows quarantined, for every batch.

Corpus files are generated here (no binaries in git); ``tests/fixtures/bad_inputs/`` is not needed.
"""

from __future__ import annotations

import datetime as dt
import logging
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import pytest
import yaml

from flows.import_receivables import ImportReport, import_source
from relance.raw_schema import ENTITIES
from relance.sources.base import SourceError

pytestmark = pytest.mark.integration

CUSTOMERS: list[dict[str, Any]] = [
    {"customer_id": "C1", "customer_name": "Société Générale d'Ébénisterie", "customer_type": "B2B",
     "siren": "732829320", "country_code": "FR", "currency": "EUR", "payment_terms_days": "30",
     "is_end_of_month_terms": "false", "created_date": "2023-01-01"},
    {"customer_id": "C2", "customer_name": "Hélène Müller", "customer_type": "B2C", "country_code": "FR",
     "currency": "EUR", "payment_terms_days": "0", "is_end_of_month_terms": "false", "created_date": "2023-06-01"},
]  # fmt: skip


def invoice(n: int, **overrides: str) -> dict[str, str]:
    row = {
        "invoice_id": f"F-{n:04d}",
        "customer_id": "C1" if n % 2 else "C2",
        "document_type": "invoice",
        "issue_date": f"2024-01-{n:02d}",
        "due_date": f"2024-02-{n:02d}",
        "amount": f"{100 * n}.50",
        "currency": "EUR",
        "payment_terms_days": "30",
        "is_end_of_month_terms": "false",
    }
    row.update(overrides)
    return row


def write_csv(
    path: Path,
    entity: str,
    rows: list[dict[str, Any]],
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
    drop: tuple[str, ...] = (),
    extra: dict[str, str] | None = None,
) -> Path:
    """A demo-format CSV of ``entity`` (raw columns, minus ``drop``, plus ``extra`` constant columns)."""
    cols = [c for c in ENTITIES[entity] if c not in drop] + list(extra or {})
    lines = [delimiter.join(cols)]
    for r in rows:
        full = {**r, **(extra or {})}
        lines.append(delimiter.join(str(full.get(c) or "") for c in cols))
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def landing(tmp_path: Path, invoices: list[dict[str, str]], **csv_options: Any) -> Path:
    d = tmp_path / "landing"
    d.mkdir()
    customer_options = {k: v for k, v in csv_options.items() if k in ("delimiter", "encoding")}
    write_csv(d / "customers.csv", "customers", CUSTOMERS, **customer_options)
    write_csv(d / "invoices.csv", "invoices", invoices, **csv_options)
    return d


def demo_variant(tmp_path: Path, **reader: Any) -> str:
    """Path of a copy of the demo profile with some reader options changed."""
    data = yaml.safe_load((resources.files("relance.sources.profiles") / "demo.yaml").read_text(encoding="utf-8"))
    data["name"] = "demo_variant"
    data["reader"].update(reader)
    path = tmp_path / "demo_variant.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return str(path)


def run_import(tmp_path: Path, source: Path, profile: str = "demo") -> tuple[ImportReport, duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    report = import_source(
        con, source, profile=profile, gx_dir=tmp_path / "gx", flow_run_id="bad-inputs", data_docs=False
    )
    return report, con


def assert_reconciles(report: ImportReport) -> dict[str, Any]:
    batches = {b.entity: b for b in report.load.batches}
    for b in batches.values():
        assert b.rows_read == b.rows_loaded + b.rows_unchanged + b.rows_quarantined, b
    assert report.reconciles()
    return batches


def quarantine(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    return con.sql(
        "SELECT entity, row_number, natural_key, stage || ':' || expectation, reason FROM ops.quarantine "
        "ORDER BY entity, row_number"
    ).fetchall()


# ----------------------------------------------------------------------------------------------- encodings


def test_cp1252_file_is_detected_and_accents_survive(tmp_path: Path) -> None:
    src = landing(tmp_path, [invoice(1), invoice(2)], encoding="cp1252", delimiter=";")
    assert b"Soci\xe9t\xe9" in (src / "customers.csv").read_bytes()
    report, con = run_import(tmp_path, src)
    batches = assert_reconciles(report)
    assert report.success
    assert (batches["customers"].rows_loaded, batches["invoices"].rows_loaded) == (2, 2)
    names = [r[0] for r in con.sql("SELECT customer_name FROM raw.customers ORDER BY customer_id").fetchall()]
    assert names == ["Société Générale d'Ébénisterie", "Hélène Müller"]


def test_cp1252_file_forced_to_utf8_is_a_clear_error(tmp_path: Path) -> None:
    src = landing(tmp_path, [invoice(1)], encoding="cp1252")
    with pytest.raises(SourceError, match=r"customers\.csv: not valid UTF-8 at line 2 .*looks like cp1252"):
        run_import(tmp_path, src, demo_variant(tmp_path, encoding="utf-8"))
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        assert con.sql("SELECT count(*) FROM raw.customers").fetchone() == (0,)


# ----------------------------------------------------------------------------------------------- dialect, columns


def test_semicolon_file_is_detected(tmp_path: Path) -> None:
    report, con = run_import(tmp_path, landing(tmp_path, [invoice(1), invoice(2), invoice(3)], delimiter=";"))
    batches = assert_reconciles(report)
    assert batches["invoices"].rows_loaded == 3 and report.success


def test_semicolon_file_with_delimiter_forced_to_comma_names_the_missing_columns(tmp_path: Path) -> None:
    src = landing(tmp_path, [invoice(1)], delimiter=";")
    with pytest.raises(SourceError) as err:
        run_import(tmp_path, src, demo_variant(tmp_path, delimiter=","))
    msg = str(err.value)
    assert "missing column(s) 'customer_id' (for customers.customer_id)" in msg
    assert "the file has 1 column(s)" in msg and "Wrong delimiter?" in msg and "set reader.delimiter to ';'" in msg


def test_missing_columns_are_named(tmp_path: Path) -> None:
    src = landing(tmp_path, [invoice(1)], drop=("currency", "due_date"))
    with pytest.raises(SourceError) as err:
        run_import(tmp_path, src)
    msg = str(err.value)
    assert "invoices.csv: missing column(s) 'due_date' (for invoices.due_date); 'currency'" in msg
    assert "'invoice_id'" in msg  # and what the file has


def test_extra_columns_are_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = landing(tmp_path, [invoice(1), invoice(2)], extra={"sales_rep": "Bob", "region_code": "84"})
    with caplog.at_level(logging.WARNING, logger="relance.sources.tabular"):
        report, con = run_import(tmp_path, src)
    assert "ignoring column(s) sales_rep, region_code: not mapped by profile 'demo'" in caplog.text
    batches = assert_reconciles(report)
    assert batches["invoices"].rows_loaded == 2 and report.success
    assert "sales_rep" not in [r[0] for r in con.sql("DESCRIBE raw.invoices").fetchall()]


# ----------------------------------------------------------------------------------------------- values


def test_duplicated_invoice_numbers_fail_validation_naming_the_id(tmp_path: Path) -> None:
    rows = [invoice(1), invoice(2), invoice(3, invoice_id="F-0002", amount="999.00")]
    report, con = run_import(tmp_path, landing(tmp_path, rows))
    batches = assert_reconciles(report)
    assert batches["invoices"].rows_read == 3
    assert not report.success
    failures = "\n".join(report.validation.critical_failures)
    assert "expect_column_values_to_be_unique(invoice_id)" in failures and "F-0002" in failures


def test_negative_invoice_amount_is_quarantined_with_the_reason(tmp_path: Path) -> None:
    rows = [invoice(1), invoice(2, amount="-250.00"), invoice(3)]
    report, con = run_import(tmp_path, landing(tmp_path, rows))
    assert_reconciles(report)
    assert report.success  # a warning: the batch passes, the row is set aside
    q = [r for r in quarantine(con) if r[0] == "invoices"]
    assert len(q) == 1
    entity, row_number, key, expectation, reason = q[0]
    assert key == "F-0002" and "amount is > 0" in reason
    assert expectation.startswith("contract:")
    # a validation (not load) quarantine: the row is in raw, flagged in ops.quarantine, excluded downstream
    assert con.sql("SELECT rows_loaded FROM ops.ingest_batches WHERE entity = 'invoices'").fetchone() == (3,)


def test_dry_run_shows_the_quarantine_and_writes_nothing(tmp_path: Path) -> None:
    src = landing(tmp_path, [invoice(1), invoice(2, amount="-250.00"), invoice(3, issue_date="15/01/2024")])
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        report = import_source(con, src, profile="demo", gx_dir=tmp_path / "gx", flow_run_id="dry", dry_run=True)
        batches = assert_reconciles(report)
        assert report.dry_run and report.success
        assert (batches["invoices"].rows_loaded, batches["invoices"].rows_quarantined) == (2, 1)
        assert [r.reason for r in report.load.rejected if "issue_date" in r.reason]
        [warning] = [w for w in report.validation.warning_failures if w.startswith("invoices")]
        assert "F-0002" in warning and report.validation.quarantined_rows == 1
        # nothing written: no rows, no quarantine, no run record, no GX context or data docs
        assert report.validation.data_docs_index is None
        assert not (tmp_path / "gx").exists()
        for table in ("raw.invoices", "ops.ingest_batches", "ops.quarantine", "ops.validation_runs"):
            assert con.sql(f"SELECT count(*) FROM {table}").fetchone() == (0,), table


def test_mixed_date_formats_quarantine_the_bad_rows_and_load_the_others(tmp_path: Path) -> None:
    rows = [
        invoice(1),
        invoice(2, issue_date="15/01/2024"),
        invoice(3),
        invoice(4, due_date="Feb 4 2024"),
        invoice(5),
    ]
    report, con = run_import(tmp_path, landing(tmp_path, rows))
    batches = assert_reconciles(report)
    inv = batches["invoices"]
    assert (inv.rows_read, inv.rows_loaded, inv.rows_quarantined) == (5, 3, 2)
    q = [r for r in quarantine(con) if r[0] == "invoices"]
    assert [(r[1], r[2]) for r in q] == [(3, "F-0002"), (5, "F-0004")]  # file lines of the bad rows
    assert "column issue_date: 15/01/2024 is not a valid DATE" in q[0][4]
    assert "column due_date: Feb 4 2024 is not a valid DATE" in q[1][4]
    assert con.sql("SELECT count(*) FROM raw.invoices").fetchone() == (3,)


def test_mixed_date_formats_with_a_declared_format(tmp_path: Path) -> None:
    rows = [
        invoice(1, issue_date="01/01/2024", due_date="31/01/2024"),
        invoice(2, issue_date="01/31/2024", due_date="02/03/2024"),  # US order among French dates
    ]
    src = landing(tmp_path, rows)
    report, con = run_import(tmp_path, src, demo_variant(tmp_path, date_format="%d/%m/%Y"))
    batches = assert_reconciles(report)
    assert (batches["invoices"].rows_loaded, batches["invoices"].rows_quarantined) == (1, 1)
    reason = next(r[4] for r in quarantine(con) if r[0] == "invoices")
    assert "column issue_date: 01/31/2024 is not a valid DATE" in reason
    assert con.sql("SELECT due_date::VARCHAR FROM raw.invoices").fetchone() == ("2024-01-31",)


# ----------------------------------------------------------------------------------------------- Excel


def write_xlsx(path: Path, entity: str, rows: list[dict[str, Any]], title: str) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append([title])
    cols = list(ENTITIES[entity])
    ws.append(cols)
    for r in rows:
        ws.append([r.get(c) for c in cols])
    wb.save(path)
    return path


def test_excel_two_row_header(tmp_path: Path) -> None:
    src = tmp_path / "landing"
    src.mkdir()
    write_xlsx(src / "customers.xlsx", "customers", CUSTOMERS, "Clients au 31/01/2024")
    rows = [invoice(1, issue_date=dt.date(2024, 1, 1)), invoice(2, amount=200.5)]  # typed cells too
    write_xlsx(src / "invoices.xlsx", "invoices", rows, "Factures au 31/01/2024")
    with pytest.raises(
        SourceError, match=r"header row 1 has empty column name.*two-row header\? set reader\.header_row"
    ):
        run_import(tmp_path, src)
    report, con = run_import(tmp_path, src, demo_variant(tmp_path, header_row=2))
    batches = assert_reconciles(report)
    assert (batches["customers"].rows_loaded, batches["invoices"].rows_loaded) == (2, 2) and report.success
    assert con.sql(
        "SELECT invoice_id, issue_date::VARCHAR, amount::VARCHAR FROM raw.invoices ORDER BY 1"
    ).fetchall() == [
        ("F-0001", "2024-01-01", "100.50"),
        ("F-0002", "2024-01-02", "200.50"),
    ]


# ----------------------------------------------------------------------------------------------- broken files


def test_empty_file(tmp_path: Path) -> None:
    src = landing(tmp_path, [invoice(1)])
    (src / "invoices.csv").write_bytes(b"")
    with pytest.raises(SourceError, match=r"invoices\.csv: file is empty"):
        run_import(tmp_path, src)


def test_header_only_file(tmp_path: Path) -> None:
    src = landing(tmp_path, [])
    with pytest.raises(SourceError, match=r"invoices\.csv: header only"):
        run_import(tmp_path, src)


def test_truncated_file_loads_the_complete_rows_and_quarantines_the_last_line(tmp_path: Path) -> None:
    src = landing(tmp_path, [invoice(1), invoice(2), invoice(3)])
    data = (src / "invoices.csv").read_bytes()
    (src / "invoices.csv").write_bytes(data[: len(data) - 25])  # cut inside the last row, as a failed copy would
    report, con = run_import(tmp_path, src)
    batches = assert_reconciles(report)
    inv = batches["invoices"]
    assert (inv.rows_read, inv.rows_loaded, inv.rows_quarantined) == (3, 2, 1)
    q = [r for r in quarantine(con) if r[0] == "invoices"]
    assert q[0][1] == 4 and q[0][3] == "load:parse"
    assert "line 4 cannot be parsed" in q[0][4] and "truncated line?" in q[0][4]
