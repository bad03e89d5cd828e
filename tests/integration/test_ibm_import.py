"""Acceptance: the public IBM accounts-receivable sample imports through the ``ibm_ar`` profile and dbt agrees.

Imports ``../shared/data/ibm_accounts_receivable.csv`` with :func:`flows.import_receivables.import_source` into a fresh
DuckDB warehouse (real loader, real GX suites), then builds ``+int_invoice_settlement_dates`` in-process and
checks, for every settled invoice, that relance's days late equals the file's ``DaysLate`` (which the file
floors at 0 for early payment). The outcome columns are read from the file only here, as the answer key.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from flows.import_receivables import import_source
from relance import dbt
from relance.settings import Settings
from tests.conftest import DbtInvoke, require

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ibm_csv(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "ibm_accounts_receivable.csv"
    require(path.is_file(), f"IBM accounts-receivable sample not found at {path}")
    return path


@pytest.fixture(scope="module")
def warehouse(ibm_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("ibm")
    db = root / "warehouse.duckdb"
    with duckdb.connect(str(db)) as con:
        report = import_source(
            con, ibm_csv, profile="ibm_ar", gx_dir=root / "gx", flow_run_id="test-ibm", data_docs=False
        )
    return db, report


def test_import_counts_and_reconciliation(warehouse: tuple[Path, object]) -> None:
    db, report = warehouse
    assert report.success, report.validation
    assert report.reconciles()
    batches = {b.entity: b for b in report.load.batches}
    assert batches["invoices"].rows_read == batches["invoices"].rows_loaded == 2466
    assert batches["customers"].rows_loaded == 100
    assert batches["payments"].rows_loaded == batches["payment_allocations"].rows_loaded == 2466
    assert all(b.rows_quarantined == 0 for b in batches.values())
    with duckdb.connect(str(db)) as con:
        assert con.sql("SELECT count(*), count(DISTINCT invoice_id) FROM raw.invoices").fetchone() == (2466, 2466)
        assert con.sql("SELECT count(*) FROM raw.customers").fetchone() == (100,)
        assert con.sql("SELECT count(*) FROM raw.disputes").fetchone() == (0,)  # Disputed has no date
        # zero-padded invoice numbers survive as text, dates are M/D/YYYY parsed, amounts exact
        row = con.sql(
            "SELECT customer_id, issue_date::VARCHAR, due_date::VARCHAR, amount::VARCHAR, payment_terms_days "
            "FROM raw.invoices WHERE invoice_id = '0000611365'"
        ).fetchone()
        assert row == ("0379-NEVHP", "2013-01-02", "2013-02-01", "55.94", 30)


def test_reimport_is_unchanged(warehouse: tuple[Path, object], ibm_csv: Path, tmp_path: Path) -> None:
    db, _ = warehouse
    with duckdb.connect(str(db)) as con:
        again = import_source(
            con, ibm_csv, profile="ibm_ar", gx_dir=tmp_path / "gx", flow_run_id="test-ibm-2", data_docs=False
        )
        assert {b.status for b in again.load.batches} == {"unchanged"}
        assert con.sql("SELECT count(*) FROM raw.invoices").fetchone() == (2466,)


def test_days_late_matches_the_file(warehouse: tuple[Path, object], ibm_csv: Path, dbt_invoke: DbtInvoke) -> None:
    db, _ = warehouse
    settings = Settings(data_dir=db.parent)
    assert settings.warehouse == db
    args = dbt.dbt_args(
        settings,
        ["build"],
        as_of_date=date(2014, 1, 31),
        # cautious: skip tests that also need unselected models (stg_invoices -> stg_customers relationship)
        extra=("--select", "+int_invoice_settlement_dates", "--indirect-selection", "cautious"),
    )
    dbt.run_dbt(settings, args, invoke=dbt_invoke)
    with duckdb.connect(str(db)) as con:
        rows = con.sql(
            f"""
            SELECT s.invoice_id, greatest(s.days_late, 0) AS days_late, CAST(f.DaysLate AS INTEGER) AS file_days_late
            FROM intermediate.int_invoice_settlement_dates s
            JOIN read_csv('{ibm_csv}', all_varchar = true) f ON f.invoiceNumber = s.invoice_id
            WHERE f.SettledDate IS NOT NULL
            """
        ).fetchall()
    assert len(rows) == 2466
    mismatches = [r for r in rows if r[1] != r[2]]
    assert not mismatches, f"{len(mismatches)} invoices disagree, e.g. {mismatches[:5]}"
    assert sum(r[2] > 0 for r in rows) == 877  # 35.6 % late, as documented for the sample
