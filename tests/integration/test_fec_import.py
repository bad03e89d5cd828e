"""The FEC source end to end: real FEC files -> read_fec -> load_extracts -> dbt -> marts.customers.

Acceptance of "Receivables ingestion from real sources", scope item 2:

* every one of the nine real FEC files of ``../shared/data/fec/`` imports, and for every customer account the
  warehouse's ``net_open_amount`` (open receivables minus money on account, after ``dbt build``) equals that
  account's ledger balance (debits - credits of its 411 lines), computed here independently with plain
  string parsing, to the cent;
* an FEC written from the demo data (``relance.demo.fec_export.write_fec``) imports to the same invoice and
  payment state as the demo's tabular export.

dbt is parsed once per session (tests/conftest.py) and the manifest reused for every build (each build gets its
own warehouse, always named ``warehouse.duckdb`` because the manifest carries the database name). The nine files
share one warehouse and one build, their ids prefixed per file (see ``_namespaced``), to stay fast.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from relance import dbt
from relance.demo.fec_export import write_fec
from relance.ingest import load_extracts
from relance.settings import Settings
from relance.sources.base import EntityExtract
from relance.sources.fec import read_fec
from tests.conftest import DEMO_AS_OF, DbtInvoke, copy_warehouse, require

pytestmark = pytest.mark.integration

FEC_FILES = (
    "fec_ekylibre_quadra_123456789FEC20190731.txt",
    "fec_ekylibre_odicom_123456789FEC20200331.txt",
    "fec_ekylibre_agrigest_123456789FEC20230331.txt",
    "fec_ekylibre_istea_123456789FEC20201231.txt",
    "fec_ekylibre_sage-coala_2020.txt",
    "fec_neolegal_fec-reader_0000000001FEC20220831.txt",
    "fec_neolegal_fec-reader_000000000FEC20231231.txt",
    "fec_neolegal_fec-reader_111111111FEC20221231.txt",
    "fec_neolegal_fec-reader_123456789FEC20500930.txt",
)
WAREHOUSE_NAME = "warehouse.duckdb"


# ---------------------------------------------------------------------------------------------------------
# dbt in process, with the session's parsed manifest (tests/conftest.py)
# ---------------------------------------------------------------------------------------------------------
def _build_customers(invoke: DbtInvoke, warehouse: Path, as_of: date) -> None:
    """``dbt build --select +customers`` (models, unit and data tests) on one warehouse."""
    settings = Settings(data_dir=warehouse.parent)
    assert settings.warehouse == warehouse, "the manifest's relations carry the database name 'warehouse'"
    args = dbt.dbt_args(
        settings, ["build"], as_of_date=as_of, extra=("--select", "+customers", "--indirect-selection", "cautious")
    )
    dbt.run_dbt(settings, args, invoke=invoke)


def _rows(warehouse: Path, sql: str) -> list[dict[str, Any]]:
    # plain read-write connection: dbt-duckdb may still hold its in-process connection to the file
    with duckdb.connect(str(warehouse)) as con:
        cur = con.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


# ---------------------------------------------------------------------------------------------------------
# the independent ledger: a few lines of plain parsing, sharing nothing with relance.sources.fec
# ---------------------------------------------------------------------------------------------------------
def _ledger(path: Path) -> tuple[dict[str, Decimal], date]:
    """Balance (debit - credit) per customer account of the 411 lines, and the latest date in the file."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    lines = [ln for ln in re.split(r"[\r\n]+", text) if ln.strip()]
    sep = "\t" if "\t" in lines[0] else "|"
    col = {name.strip().lower(): i for i, name in enumerate(lines[0].split(sep))}
    balances: dict[str, Decimal] = defaultdict(Decimal)
    latest = date(1900, 1, 1)
    for line in lines[1:]:
        f = [x.strip() for x in line.split(sep)]
        for name in ("ecrituredate", "piecedate"):
            if re.fullmatch(r"\d{8}", f[col[name]]):
                latest = max(latest, date(int(f[col[name]][:4]), int(f[col[name]][4:6]), int(f[col[name]][6:])))
        if f[col["comptenum"]].startswith("411"):
            customer = f[col["compauxnum"]] or f[col["comptenum"]]
            debit, credit = (Decimal(f[col[c]].replace(",", ".") or "0") for c in ("debit", "credit"))
            balances[customer] += debit - credit
    return dict(balances), latest


@pytest.fixture(scope="module")
def fec_dir(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "fec"
    require(path.is_dir(), f"real FEC files not found at {path} (../shared/data/fec beside the checkout)")
    return path


def test_the_nine_real_fec_files_are_present(fec_dir: Path) -> None:
    present = {p.name for p in fec_dir.glob("fec_*.txt")}
    assert set(FEC_FILES) <= present, f"missing: {sorted(set(FEC_FILES) - present)}"


def _namespaced(extract: EntityExtract, prefix: str) -> EntityExtract:
    """The extract with every id prefixed, so the books of nine unrelated companies can share one warehouse.

    Only a test device (one dbt build instead of nine): different companies reuse account numbers such as
    411100000. Values are otherwise untouched; it goes through the same loader and dbt as a lone file.
    """
    table = extract.table
    assert isinstance(table, pa.Table)
    for column in ("customer_id", "invoice_id", "credited_invoice_id", "payment_id"):
        if column in table.column_names:
            i = table.column_names.index(column)
            table = table.set_column(i, column, pc.binary_join_element_wise(prefix, table[column], ""))
    return dataclasses.replace(extract, table=table)


@pytest.fixture(scope="module")
def real_fec_warehouse(
    fec_dir: Path, dbt_invoke: DbtInvoke, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, dict[str, Decimal]], date]:
    """All nine files read and loaded (one load per file), one dbt build after the latest entry of any."""
    warehouse = tmp_path_factory.mktemp("real_fec") / WAREHOUSE_NAME
    ledgers: dict[str, dict[str, Decimal]] = {}
    latest = date(1900, 1, 1)
    with duckdb.connect(str(warehouse)) as con:
        for i, name in enumerate(FEC_FILES):
            path = fec_dir / name
            ledger, file_latest = _ledger(path)
            assert ledger, f"{name}: the independent parse found no 411 lines"
            ledgers[name] = {f"F{i}:{c}": v for c, v in ledger.items()}
            latest = max(latest, file_latest)
            extracts = [_namespaced(e, f"F{i}:") for e in read_fec(path)]
            report = load_extracts(con, extracts, source_name=f"fec:{name}", flow_run_id="test-fec")
            assert {b.entity for b in report.batches} == {"customers", "invoices", "payments", "payment_allocations"}
            bad = [b for b in report.batches if b.rows_read != b.rows_loaded or b.rows_quarantined]
            assert not bad, f"{name}: rows not loaded: {bad} {report.rejected[:5]}"
    as_of = latest + timedelta(days=1)
    _build_customers(dbt_invoke, warehouse, as_of)
    return warehouse, ledgers, as_of


@pytest.mark.parametrize("name", FEC_FILES)
def test_real_fec_open_receivables_equal_ledger_balance(
    name: str, real_fec_warehouse: tuple[Path, dict[str, dict[str, Decimal]], date]
) -> None:
    warehouse, ledgers, as_of = real_fec_warehouse
    ledger = ledgers[name]
    prefix = next(iter(ledger)).split(":", 1)[0] + ":"
    mart = _rows(
        warehouse,
        f"select customer_id, as_of_date, net_open_amount from marts.customers where customer_id like '{prefix}%'",
    )
    assert {r["as_of_date"] for r in mart} == {as_of}  # the reused manifest did take this build's vars
    derived = {r["customer_id"]: r["net_open_amount"] for r in mart}
    assert set(derived) == set(ledger), (
        f"{name}: customers only in warehouse {sorted(set(derived) - set(ledger))[:5]}, "
        f"only in ledger {sorted(set(ledger) - set(derived))[:5]}"
    )
    wrong = {c: (derived[c], ledger[c]) for c in ledger if derived[c] != ledger[c]}
    assert not wrong, f"{name}: {len(wrong)} customer(s) derived != ledger, e.g. {list(wrong.items())[:5]}"


def test_real_fec_documents_reach_the_marts(real_fec_warehouse: tuple[Path, Any, date]) -> None:
    """Not only balances: the invoices, lettered payments and credit notes of the real files are in the marts."""
    warehouse, ledgers, _ = real_fec_warehouse
    counts = _rows(
        warehouse,
        "select split_part(invoice_id, ':', 1) as f, count(*) as n, count(settled_date) as settled, "
        "sum(credited_amount) as credited from marts.invoices group by 1",
    )
    by_file = {r["f"]: r for r in counts}
    quadra = by_file["F0"]  # 3,000 lettered lines of 3,310: most invoices are settled
    assert quadra["n"] > 1000 and quadra["settled"] > 0.7 * quadra["n"]
    assert sum(r["credited"] for r in counts) > 0  # credit notes in sales journals credit their invoices
    allocations = _rows(warehouse, "select count(*) as n from staging.stg_payment_allocations")[0]["n"]
    assert allocations > 2000


def test_real_fec_lettering_with_counterpart_outside_the_file(real_fec_warehouse: tuple[Path, Any, date]) -> None:
    """neolegal 0000000001 (F5): group AATF holds only invoices (paid after the period): they stay fully open;
    CLAURE's group AAAT holds only a payment (its invoices are in an earlier year): it is money on account."""
    warehouse, _, _ = real_fec_warehouse
    rows = _rows(
        warehouse,
        "select invoice_id, amount, paid_amount, open_amount, is_open from marts.invoices "
        "where invoice_id in ('F5:FA  220376', 'F5:FA  220383')",
    )
    assert len(rows) == 2
    assert all(r["is_open"] and r["paid_amount"] == 0 and r["open_amount"] == r["amount"] for r in rows)
    claure = _rows(warehouse, "select * from marts.customers where customer_id = 'F5:CLAURE'")[0]
    assert claure["unallocated_credit_amount"] >= Decimal("2780.98")
    assert claure["net_open_amount"] == claure["open_amount"] - claure["unallocated_credit_amount"]


# ---------------------------------------------------------------------------------------------------------
# the demo written as an FEC imports to the same state as its tabular export
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_warehouses(
    tmp_path_factory: pytest.TempPathFactory, demo_landing: Path, demo_raw_warehouse: Path, dbt_invoke: DbtInvoke
) -> tuple[Path, Path]:
    """The session's demo export (tests/conftest.py) as loaded from its tabular files, and as written to an FEC
    and read back, each built by dbt as of the day the export ends."""
    root = tmp_path_factory.mktemp("demo")
    tabular = copy_warehouse(demo_raw_warehouse, root / "tabular")
    _build_customers(dbt_invoke, tabular, DEMO_AS_OF)

    landing = demo_landing
    fec_path = write_fec(landing, root / "demo_FEC.txt")
    from_fec = root / "fec" / WAREHOUSE_NAME
    from_fec.parent.mkdir()
    with duckdb.connect(str(from_fec)) as con:
        report = load_extracts(con, read_fec(fec_path), source_name="fec", flow_run_id=None)
    assert sum(b.rows_quarantined for b in report.batches) == 0
    _build_customers(dbt_invoke, from_fec, DEMO_AS_OF)
    return tabular, from_fec


def _by(rows: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    return {r.pop(key): r for r in rows}


def test_demo_fec_invoices_match_tabular_export(demo_warehouses: tuple[Path, Path]) -> None:
    tabular, from_fec = demo_warehouses
    sql = (
        "select invoice_id, customer_id, currency, issue_date, due_date, amount, credited_amount, paid_amount, "
        "open_amount, is_open, settled_date from marts.invoices"
    )
    expected, actual = _by(_rows(tabular, sql), "invoice_id"), _by(_rows(from_fec, sql), "invoice_id")
    assert len(expected) > 1000
    assert set(actual) == set(expected)
    diff = {i: (expected[i], actual[i]) for i in expected if expected[i] != actual[i]}
    assert not diff, f"{len(diff)} invoices differ, e.g. {list(diff.items())[:3]}"
    # the comparison covers every state: paid, partly paid, credited, open, in a foreign currency
    states = list(expected.values())
    assert any(r["is_open"] and r["paid_amount"] > 0 for r in states)
    assert any(r["credited_amount"] > 0 for r in states)
    assert any(not r["is_open"] for r in states) and any(r["is_open"] for r in states)
    assert any(r["currency"] != "EUR" for r in states)


def test_demo_fec_payments_and_allocations_match_tabular_export(demo_warehouses: tuple[Path, Path]) -> None:
    tabular, from_fec = demo_warehouses
    pay_sql = "select payment_id, customer_id, payment_date, amount, currency from staging.stg_payments"
    alloc_sql = "select payment_id, invoice_id, allocated_amount from staging.stg_payment_allocations"
    expected_pay, actual_pay = _by(_rows(tabular, pay_sql), "payment_id"), _by(_rows(from_fec, pay_sql), "payment_id")
    assert len(expected_pay) > 500 and actual_pay == expected_pay
    key = lambda r: (r["payment_id"], r["invoice_id"])  # noqa: E731
    expected_alloc = {key(r): r["allocated_amount"] for r in _rows(tabular, alloc_sql) if r["allocated_amount"]}
    actual_alloc = {key(r): r["allocated_amount"] for r in _rows(from_fec, alloc_sql)}
    assert actual_alloc == expected_alloc
    # batch payers: at least one payment pays several invoices, and it survived as one payment
    per_payment = defaultdict(int)
    for p, _ in actual_alloc:
        per_payment[p] += 1
    assert max(per_payment.values()) > 1


def test_demo_fec_customer_balances_match_tabular_export(demo_warehouses: tuple[Path, Path]) -> None:
    tabular, from_fec = demo_warehouses
    sql = (
        "select customer_id, open_invoice_count, open_amount, overdue_amount, unallocated_credit_amount, "
        "net_open_amount from marts.customers"
    )
    expected, actual = _by(_rows(tabular, sql), "customer_id"), _by(_rows(from_fec, sql), "customer_id")
    # a demo customer without any document or payment has no line in an FEC, hence no account
    absent = set(expected) - set(actual)
    assert all(expected[c]["open_amount"] == 0 and expected[c]["net_open_amount"] == 0 for c in absent)
    assert set(actual) <= set(expected)
    diff = {c: (expected[c], actual[c]) for c in actual if expected[c] != actual[c]}
    assert not diff, f"{len(diff)} customers differ, e.g. {list(diff.items())[:3]}"
    assert sum(r["open_amount"] for r in actual.values()) > 0
