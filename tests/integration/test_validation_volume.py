"""Integration tests: the volume anomaly data contract (a batch's rows_read against previous loads)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

import expectations.suites as suites
from expectations.runner import ValidationSummary, validate_batches
from relance.ingest import load_extracts
from relance.raw_schema import ENTITIES
from relance.sources.base import EntityExtract

pytestmark = pytest.mark.integration

CUSTOMER = {
    "customer_id": "C1",
    "customer_name": "Bati Sud",
    "customer_type": "B2B",
    "siren": "732829320",
    "region": "Occitanie",
    "country_code": "FR",
    "email": "compta@batisud.fr",
    "phone": "+33612345678",
    "credit_limit": "10000.00",
    "currency": "EUR",
    "payment_terms_days": "30",
    "is_end_of_month_terms": "false",
    "created_date": "2023-01-15",
}


def _table(entity: str, rows: list[dict[str, str]]) -> pa.Table:
    return pa.table({c: pa.array([r.get(c) for r in rows], pa.string()) for c in ENTITIES[entity]})


def _invoice(invoice_id: str) -> dict[str, str]:
    return {
        "invoice_id": invoice_id,
        "customer_id": "C1",
        "document_type": "invoice",
        "issue_date": "2024-01-01",
        "due_date": "2024-01-31",
        "amount": "100.00",
        "currency": "EUR",
        "payment_terms_days": "30",
        "is_end_of_month_terms": "false",
    }


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(str(tmp_path / "wh.duckdb"))
    yield c
    c.close()


def load(con: duckdb.DuckDBPyConnection, source: str, ids: list[str], *, tag: str) -> str:
    """Load invoices ``ids`` (plus customer C1) as one extract of ``source``; the invoices batch id."""
    extracts = [
        EntityExtract("customers", _table("customers", [CUSTOMER]), "customers", "cust-v1"),
        EntityExtract("invoices", _table("invoices", [_invoice(i) for i in ids]), f"invoices-{tag}", f"h-{tag}"),
    ]
    report = load_extracts(con, extracts, source_name=source, flow_run_id=None)
    return report.batch("invoices").batch_id


def history(con: duckdb.DuckDBPyConnection, source: str, sizes: list[int]) -> None:
    """Earlier loads of ``source`` with these invoice counts (ids unique across loads)."""
    for n, size in enumerate(sizes):
        load(con, source, [f"{source}-H{n}-{i}" for i in range(size)], tag=f"{source}-h{n}")


def validate(con: duckdb.DuckDBPyConnection, tmp_path: Path, batch_id: str) -> ValidationSummary:
    return validate_batches(con, [batch_id], gx_dir=tmp_path / "gx", flow_run_id="fr-v", data_docs=False)


def test_collapse_after_three_loads_is_a_warning_and_quarantines_nothing(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    history(con, "demo", [100, 104, 96])
    batch = load(con, "demo", [f"N{i}" for i in range(10)], tag="small")

    summary = validate(con, tmp_path, batch)

    assert summary.success, summary.critical_failures
    assert summary.critical_failures == []
    [msg] = summary.warning_failures
    assert msg.startswith("invoices from demo: 10 rows read, 10% of the median 100 of the last 3 loads"), msg
    assert batch in msg and "expected 50 to 300 rows read" in msg
    assert summary.quarantined_rows == 0
    assert con.execute("SELECT count(*) FROM ops.quarantine").fetchone()[0] == 0
    assert con.execute("SELECT rows_flagged FROM ops.ingest_batches WHERE batch_id = ?", [batch]).fetchone()[0] == 0
    run = con.execute(
        "SELECT success, critical_failures, warning_failures FROM ops.validation_runs WHERE validation_id = ?",
        [summary.validation_id],
    ).fetchone()
    assert run == (True, 0, 1)
    # the check is a GX expectation of the suite (so it shows in data docs), bounds as suite parameters
    suite = json.loads((tmp_path / "gx" / "expectations" / "raw_invoices.json").read_text())
    [volume] = [e for e in suite["expectations"] if e["kwargs"].get("column") == suites.VOLUME_COLUMN]
    assert volume["type"] == "expect_column_max_to_be_between" and volume["severity"] == "warning"
    assert volume["kwargs"]["min_value"] == {"$PARAMETER": suites.VOLUME_MIN_PARAM}


def test_only_two_earlier_loads_flag_nothing(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    history(con, "demo", [100, 100])
    batch = load(con, "demo", [f"N{i}" for i in range(10)], tag="small")

    with caplog.at_level(logging.INFO, logger="expectations.volume"):
        summary = validate(con, tmp_path, batch)

    assert summary.success and summary.warning_failures == [] and summary.quarantined_rows == 0
    assert any("2 previous load(s)" in r.getMessage() and "not checked" in r.getMessage() for r in caplog.records)


def test_normal_batches_are_not_flagged_and_a_spike_is(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    history(con, "demo", [100, 100, 100])
    normal = load(con, "demo", [f"N{i}" for i in range(120)], tag="normal")
    assert validate(con, tmp_path, normal).warning_failures == []

    # rows_read (not rows appended) is compared: a re-extract of mostly unchanged rows is not a collapse
    rerun = load(con, "demo", [*(f"N{i}" for i in range(120)), "N-new"], tag="rerun")
    loaded = con.execute("SELECT rows_read, rows_loaded FROM ops.ingest_batches WHERE batch_id = ?", [rerun])
    assert loaded.fetchone() == (121, 1)
    assert validate(con, tmp_path, rerun).warning_failures == []

    # history now 121, 120, 100, 100, 100: median 100, upper bound 300
    spike = load(con, "demo", [f"S{i}" for i in range(301)], tag="spike")
    [msg] = validate(con, tmp_path, spike).warning_failures
    assert msg.startswith("invoices from demo: 301 rows read, 301% of the median 100 of the last 5 loads"), msg


def test_history_is_per_source_and_ignores_unloaded_batches(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    history(con, "erp", [100, 100, 100])
    history(con, "demo", [100, 100])
    # an 'unchanged' batch (same file hash again) is not a previous load
    load(con, "demo", [f"demo-H1-{i}" for i in range(100)], tag="demo-h1")
    batch = load(con, "demo", [f"N{i}" for i in range(10)], tag="small")

    assert validate(con, tmp_path, batch).warning_failures == []

    erp_batch = load(con, "erp", [f"E{i}" for i in range(10)], tag="erp-small")
    [msg] = validate(con, tmp_path, erp_batch).warning_failures
    assert msg.startswith("invoices from erp: 10 rows read, 10% of the median 100 of the last 3 loads")


def test_volume_bounds_use_the_last_ten_loads_and_module_ratios(monkeypatch: pytest.MonkeyPatch) -> None:
    assert suites.volume_bounds([100, 100]) is None
    bounds = suites.volume_bounds([10, 20, 30, *([1000] * 20)])  # most recent first: 10 of them count
    assert bounds is not None and bounds.loads == 10 and bounds.median == 1000
    assert (bounds.min_value, bounds.max_value) == (500, 3000)
    assert not bounds.is_anomaly(500) and not bounds.is_anomaly(3000)
    assert bounds.is_anomaly(499) and bounds.is_anomaly(3001)
    monkeypatch.setattr(suites, "VOLUME_LOW_RATIO", 0.1)
    assert suites.volume_bounds([100, 100, 100]).min_value == pytest.approx(10)  # type: ignore[union-attr]
    msg = suites.volume_message("invoices", None, 1200, suites.VolumeBounds(10_000, 10, 5_000, 30_000))
    assert msg == "invoices from an unnamed source: 1,200 rows read, 12% of the median 10,000 of the last 10 loads"
