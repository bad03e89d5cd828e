"""The loader every source shares: typing, load-time quarantine, idempotence, watermarks, dry run."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from relance.ingest import IngestError, load_extracts, read_watermarks
from relance.sources.base import EntityExtract, Reject
from relance.warehouse import connect


def _invoice(invoice_id: str, **over: str | None) -> dict[str, str | None]:
    row = {
        "invoice_id": invoice_id,
        "customer_id": "C1",
        "document_type": "invoice",
        "credited_invoice_id": "",
        "issue_date": "2026-01-01",
        "due_date": "2026-01-31",
        "amount": "100.50",
        "currency": "EUR",
        "payment_terms_days": "30",
        "is_end_of_month_terms": "false",
    }
    return row | over


@pytest.fixture
def con(tmp_path: Path):
    c = connect(tmp_path / "w.duckdb")
    yield c
    c.close()


def test_bad_values_and_rejects_are_quarantined_with_reasons_and_counts_reconcile(con) -> None:
    rows = [_invoice("I1"), _invoice("I2", issue_date="01/02/2026", amount="abc"), _invoice("I3", amount=" ")]
    ext = EntityExtract(
        "invoices",
        pa.Table.from_pylist(rows),
        "ledger.csv",
        "h1",
        rejects=[Reject("invoices", 7, "7 fields, expected 10", {"line": "x;y"})],
    )
    report = load_extracts(con, [ext], source_name="t", flow_run_id="run-1")
    (b,) = report.batches
    assert (b.rows_read, b.rows_loaded, b.rows_unchanged, b.rows_quarantined) == (4, 2, 0, 2)
    assert b.rows_read == b.rows_loaded + b.rows_unchanged + b.rows_quarantined
    reasons = {r.row_number: r.reason for r in report.rejected}
    assert "column issue_date: 01/02/2026 is not a valid DATE" in reasons[2]
    assert "column amount: abc is not a valid DECIMAL(18,2)" in reasons[2]
    assert reasons[7].startswith("ledger.csv, row 7")
    assert con.sql("select invoice_id, amount from raw.invoices order by 1").fetchall()[1] == ("I3", None)
    q = con.sql(
        "select natural_key, stage, expectation, flow_run_id from ops.quarantine order by row_number"
    ).fetchall()
    assert q == [("I2", "load", "cast", "run-1"), (None, "load", "parse", "run-1")]


def test_same_content_twice_loads_nothing_and_a_changed_row_is_appended(con) -> None:
    t = pa.Table.from_pylist([_invoice("I1"), _invoice("I2")])
    load_extracts(con, [EntityExtract("invoices", t, "a.csv", "h1")], source_name="t", flow_run_id=None)
    same_file = load_extracts(con, [EntityExtract("invoices", t, "a.csv", "h1")], source_name="t", flow_run_id=None)
    assert same_file.batches[0].status == "unchanged"
    t2 = pa.Table.from_pylist([_invoice("I1"), _invoice("I2", amount="90.00")])
    again = load_extracts(con, [EntityExtract("invoices", t2, "b.csv", "h2")], source_name="t", flow_run_id=None)
    assert (again.batches[0].rows_loaded, again.batches[0].rows_unchanged) == (1, 1)
    assert con.sql("select count(*) from raw.invoices where invoice_id = 'I2'").fetchone()[0] == 2


def test_watermark_moves_only_on_commit_and_dry_run_writes_nothing(con) -> None:
    t = pa.Table.from_pylist([_invoice("I1")])
    dry = load_extracts(
        con,
        [EntityExtract("invoices", t, "db", "q1", watermark="2026-02-01")],
        source_name="erp",
        flow_run_id=None,
        dry_run=True,
    )
    assert dry.batches[0].rows_loaded == 1
    assert read_watermarks(con, "erp") == {}
    assert con.sql("select count(*) from raw.invoices").fetchone()[0] == 0
    assert con.sql("select count(*) from ops.ingest_batches").fetchone()[0] == 0
    load_extracts(
        con, [EntityExtract("invoices", t, "db", "q1", watermark="2026-02-01")], source_name="erp", flow_run_id=None
    )
    assert read_watermarks(con, "erp") == {"invoices": "2026-02-01"}


def test_missing_raw_columns_are_named_and_nothing_loads(con) -> None:
    good = EntityExtract("invoices", pa.Table.from_pylist([_invoice("I1")]), "a.csv", "h1")
    partial = pa.Table.from_pylist([{"customer_id": "C1", "customer_name": "X"}])
    with pytest.raises(IngestError, match=r"customers rows lack column\(s\) customer_type"):
        load_extracts(
            con, [good, EntityExtract("customers", partial, "c.csv", "h2")], source_name="t", flow_run_id=None
        )
    assert con.sql("select count(*) from raw.invoices").fetchone()[0] == 0


def test_sql_extracts_stream_from_files(con, tmp_path: Path) -> None:
    csv = tmp_path / "inv.csv"
    import pyarrow.csv as pacsv

    pacsv.write_csv(pa.Table.from_pylist([_invoice("I1"), _invoice("I2")]), csv)
    sql = f"SELECT * FROM read_csv('{csv}', header = true, all_varchar = true)"
    report = load_extracts(con, [EntityExtract("invoices", sql, str(csv), "h")], source_name="t", flow_run_id=None)
    assert report.batches[0].rows_loaded == 2


def test_inside_a_callers_transaction_the_caller_decides(con) -> None:
    from relance.warehouse import ensure_schemas

    ensure_schemas(con)
    t = pa.Table.from_pylist([_invoice("I1")])
    con.begin()
    load_extracts(con, [EntityExtract("invoices", t, "a", "h")], source_name="t", flow_run_id=None, in_transaction=True)
    assert con.sql("select count(*) from raw.invoices").fetchone()[0] == 1  # visible inside the transaction
    con.rollback()
    assert con.sql("select count(*) from raw.invoices").fetchone()[0] == 0
