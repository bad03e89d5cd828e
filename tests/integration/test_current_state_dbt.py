"""Current state is exact, as dbt's staging reads it (issue 9, item 2): the real loader writes a small warehouse with
every case of the issue, ``dbt run --select staging`` builds it, and the staging views hold what the sources say now.

Reproductions: a reverted value (100, 80, 100) stayed at 80; of two versions in one load the current one was
random; a batch that failed its contract still fed the current state; an invoice cancelled in a full export stayed
current; an FEC payment re-lettered from invoice A to B left A paid.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from relance import dbt, ops
from relance.ingest import load_extracts
from relance.settings import Settings
from relance.sources.base import EntityExtract
from relance.sources.fec import read_fec
from tests.conftest import DbtInvoke
from tests.unit.test_fec_parse import fec_line, write

pytestmark = pytest.mark.integration


def _customer(customer_id: str) -> dict[str, str]:
    return {"customer_id": customer_id, "customer_name": customer_id, "customer_type": "B2B", "currency": "EUR"}


def _invoice(invoice_id: str, amount: str) -> dict[str, str]:
    return {
        "invoice_id": invoice_id,
        "customer_id": "K1",
        "document_type": "invoice",
        "issue_date": "2026-01-01",
        "due_date": "2026-01-31",
        "amount": amount,
        "currency": "EUR",
    }


def _extract(entity: str, rows: list[dict], name: str, *, full_snapshot: bool = False) -> EntityExtract:
    from relance.raw_schema import ENTITIES

    table = pa.Table.from_pylist([{c: r.get(c) for c in ENTITIES[entity]} for r in rows])
    return EntityExtract(entity, table, name, f"{name}:{rows!r}", full_snapshot=full_snapshot)


def _load(con: duckdb.DuckDBPyConnection, *extracts: EntityExtract, source: str = "erp"):
    return load_extracts(con, list(extracts), source_name=source, flow_run_id=None)


def _seed(con: duckdb.DuckDBPyConnection, tmp: Path) -> None:
    _load(con, _extract("customers", [_customer("K1")], "customers.csv"))
    # a source of full exports; DEL will be cancelled there
    snapshot = [_invoice(i, "10.00") for i in ("DEL", "KEEP")]
    _load(con, _extract("invoices", snapshot, "full.csv", full_snapshot=True), source="erp-full")
    # R: 100, then 80, then 100 again; S: two files of one load, the later one says 70; F: a failed batch says 999
    _load(con, _extract("invoices", [_invoice("R", "100.00"), _invoice("F", "50.00")], "day1.csv"))
    _load(con, _extract("invoices", [_invoice("R", "80.00")], "day2.csv"))
    _load(con, _extract("invoices", [_invoice("R", "100.00")], "day3.csv"))
    _load(
        con,
        _extract("invoices", [_invoice("S", "60.00")], "morning.csv"),
        _extract("invoices", [_invoice("S", "70.00")], "evening.csv"),
    )
    failed = _load(con, _extract("invoices", [_invoice("F", "999.00")], "bad.csv"))
    ops.set_validation_states(con, {failed.batches[0].batch_id: "failed"}, at=datetime(2026, 2, 1))
    # DEL cancelled at the source: the next full export lacks it
    _load(con, _extract("invoices", [_invoice("KEEP", "10.00")], "full.csv", full_snapshot=True), source="erp-full")

    # FEC: payment P lettered with A, then re-lettered with B in a re-export of the same fiscal year
    books = [
        fec_line("VE", "1", "20240105", aux="K1", piece="A", debit="100,00", let="AA"),
        fec_line("VE", "2", "20240110", aux="K1", piece="B", debit="100,00"),
        fec_line("BQ", "3", "20240201", aux="K1", piece="P", credit="100,00", let="AA"),
    ]
    relettered = [
        fec_line("VE", "1", "20240105", aux="K1", piece="A", debit="100,00"),
        fec_line("VE", "2", "20240110", aux="K1", piece="B", debit="100,00", let="AB"),
        fec_line("BQ", "3", "20240201", aux="K1", piece="P", credit="100,00", let="AB"),
    ]
    for name, lines in (("v1", books), ("v2", relettered)):
        (tmp / name).mkdir()
        _load(con, *read_fec(write(tmp / name, lines)), source="fec")


def test_staging_holds_what_the_sources_say_now(tmp_path: Path, dbt_invoke: DbtInvoke) -> None:
    settings = Settings(data_dir=tmp_path)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        _seed(con, tmp_path)
    args = dbt.dbt_args(settings, ["run"], as_of_date=date(2026, 3, 1), extra=("--select", "staging"))
    dbt.run_dbt(settings, args, invoke=dbt_invoke)

    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        invoices = dict(con.execute("select invoice_id, amount from staging.stg_invoices").fetchall())
        allocations = con.execute("select payment_id, invoice_id from staging.stg_payment_allocations").fetchall()

    assert invoices["R"] == 100  # the revert is current
    assert invoices["S"] == 70  # the later file of the load
    assert invoices["F"] == 50  # the failed batch's version is not
    assert "DEL" not in invoices and invoices["KEEP"] == 10  # the cancelled invoice is gone
    assert allocations == [("P", "B")]  # the re-lettered payment pays B, not A
    assert {"A", "B"} <= set(invoices)


def test_versions_are_known_from_their_load_after_the_history_import(tmp_path: Path, dbt_invoke: DbtInvoke) -> None:
    """Point in time (issue 10): the same loads as above, read by the version views the features use. A source's
    first load is its history import, known from the start; every later version from its load date; a failed
    batch's version never; a full export's tombstone retires the key from its load date."""
    settings = Settings(data_dir=tmp_path)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        _seed(con, tmp_path)
    args = dbt.dbt_args(settings, ["run"], as_of_date=date(2026, 3, 1), extra=("--select", "staging"))
    dbt.run_dbt(settings, args, invoke=dbt_invoke)

    start, current = date(1, 1, 1), date(9999, 12, 31)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        (loaded,) = con.execute(
            "select distinct cast(_loaded_at as date) from raw.invoices where _source_file = 'day2.csv'"
        ).fetchone()
        versions = con.execute(
            "select invoice_id, amount, is_deleted, known_from, known_until from staging.stg_invoice_versions"
            " where invoice_id in ('R', 'F', 'DEL') order by invoice_id, known_from, known_until"
        ).fetchall()
        customers = con.execute(
            "select customer_id, known_from, known_until from staging.stg_customer_versions"
            " where known_from < known_until"
        ).fetchall()

    assert versions == [
        ("DEL", 10, False, start, loaded),  # erp-full's first export: history
        ("DEL", 10, True, loaded, current),  # cancelled by the next export: a tombstone from its load date
        ("F", 50, False, start, current),  # the failed batch's 999 is no version at all
        ("R", 100, False, start, loaded),  # erp's first load (day1.csv): history, known from the start
        ("R", 80, False, loaded, loaded),  # day2 and day3 on one day: 80 is never the version of a whole day
        ("R", 100, False, loaded, current),
    ]
    # erp's K1 and the FEC's (first load of that source: history too); the later-loaded one holds every date
    assert customers == [("K1", start, current)]
