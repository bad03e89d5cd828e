"""The validation gate (issue 9, item 1): a batch that failed its contract blocks every later run, not only the
run that loaded it; batches loaded but never validated are validated before anything downstream.

Reproduction this starts from: import a file with a duplicate invoice id, then run the daily pipeline twice. The
second run found the same file ``unchanged``, validated nothing and went on to dbt, scoring and sending.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from expectations.runner import CriticalValidationError, validate_pending
from flows.import_receivables import import_source
from relance import ops
from relance.importer import load_landing
from tests.integration.test_validation import CUSTOMERS, INVOICES, write_landing

pytestmark = pytest.mark.integration

DUPLICATE = [*INVOICES, INVOICES[0]]  # invoice I1 twice: the critical uniqueness expectation fails


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(str(tmp_path / "wh.duckdb"))
    yield c
    c.close()


def _gate(con: duckdb.DuckDBPyConnection, tmp_path: Path):
    return validate_pending(con, gx_dir=tmp_path / "gx", flow_run_id="fr", data_docs=False)


def _state(con: duckdb.DuckDBPyConnection, batch_id: str) -> str:
    return con.execute("SELECT validation_state FROM ops.ingest_batches WHERE batch_id = ?", [batch_id]).fetchone()[0]


def test_a_failed_batch_keeps_blocking_the_next_runs_until_superseded(con, tmp_path: Path) -> None:
    landing = write_landing(tmp_path / "landing", CUSTOMERS, DUPLICATE)
    first = load_landing(con, landing, flow_run_id="run-1")
    bad = first.batch("invoices").batch_id
    gate = _gate(con, tmp_path)
    with pytest.raises(CriticalValidationError, match="invoice_id"):
        gate.raise_if_blocked()
    assert _state(con, bad) == "failed"

    # the next run: the same file is unchanged, nothing is pending, and the run is still stopped
    second = load_landing(con, landing, flow_run_id="run-2")
    assert second.batch("invoices").status == "unchanged"
    again = _gate(con, tmp_path)
    assert again.summary is None and again.validated == []
    assert [b.batch_id for b in again.blocking] == [bad]
    with pytest.raises(CriticalValidationError, match=f"batch {bad} .*: failed") as stopped:
        again.raise_if_blocked()
    assert "relance batches quarantine" in str(stopped.value)

    # the source delivers a corrected file: it passes and supersedes the failed batch; the gate opens
    write_landing(tmp_path / "landing", CUSTOMERS, INVOICES)
    third = load_landing(con, landing, flow_run_id="run-3")
    fixed = third.batch("invoices").batch_id
    opened = _gate(con, tmp_path)
    opened.raise_if_blocked()
    assert _state(con, fixed) == "passed"
    assert _state(con, bad) == "superseded"
    note = con.execute("SELECT state_note FROM ops.ingest_batches WHERE batch_id = ?", [bad]).fetchone()[0]
    assert fixed in note


def test_an_operator_quarantine_unblocks_and_is_recorded(con, tmp_path: Path) -> None:
    report = load_landing(con, write_landing(tmp_path / "landing", CUSTOMERS, DUPLICATE), flow_run_id="run-1")
    bad = report.batch("invoices").batch_id
    assert _gate(con, tmp_path).blocking
    state = ops.quarantine_batch(con, bad, note="duplicate export, see ticket 42", at=report.batches[0].loaded_at)
    assert state.state == "quarantined" and "ticket 42" in (state.state_note or "")
    _gate(con, tmp_path).raise_if_blocked()
    unchanged = report.batch("customers").batch_id
    assert _state(con, unchanged) == "passed"
    with pytest.raises(ValueError, match="unknown batch id"):
        ops.quarantine_batch(con, "nope", note="x", at=report.batches[0].loaded_at)


def test_a_crash_between_load_and_validation_leaves_pending_batches_that_the_next_run_validates(
    con, tmp_path: Path
) -> None:
    # the load committed, then the process died before validating: the batches are pending
    report = load_landing(con, write_landing(tmp_path / "landing", CUSTOMERS, DUPLICATE), flow_run_id="run-1")
    assert set(ops.pending_batch_ids(con)) == {b.batch_id for b in report.batches}
    # the next run loads nothing new (same files) but validates what is pending, and is stopped
    load_landing(con, tmp_path / "landing", flow_run_id="run-2")
    gate = _gate(con, tmp_path)
    assert set(gate.validated) == {b.batch_id for b in report.batches}
    assert ops.pending_batch_ids(con) == []
    with pytest.raises(CriticalValidationError):
        gate.raise_if_blocked()


def test_relance_import_records_the_failure_so_the_daily_run_is_blocked(con, tmp_path: Path) -> None:
    landing = write_landing(tmp_path / "landing", CUSTOMERS, DUPLICATE)
    report = import_source(con, landing, profile="demo", gx_dir=None, flow_run_id=None, data_docs=False)
    assert not report.success
    blocking = _gate(con, tmp_path).blocking
    assert [b.entity for b in blocking] == ["invoices"]


def test_a_dry_run_leaves_no_state_behind(con, tmp_path: Path) -> None:
    landing = write_landing(tmp_path / "landing", CUSTOMERS, DUPLICATE)
    import_source(con, landing, profile="demo", gx_dir=None, flow_run_id=None, dry_run=True, data_docs=False)
    assert ops.list_batches(con) == [] and ops.blocking_batches(con) == []


def test_a_batch_too_large_to_validate_fails_instead_of_passing(con, tmp_path: Path) -> None:
    from expectations.runner import validate_batches

    report = load_landing(con, write_landing(tmp_path / "landing", CUSTOMERS, INVOICES), flow_run_id="run-1")
    summary = validate_batches(
        con, report.batch_ids, gx_dir=tmp_path / "gx", flow_run_id="fr", data_docs=False, max_batch_rows=2
    )
    assert not summary.success
    assert any("holds 3 rows, over the 2-row cap" in m for m in summary.critical_failures)
    assert _state(con, report.batch("invoices").batch_id) == "failed"
    assert _state(con, report.batch("customers").batch_id) == "passed"


def test_contract_failures_name_the_same_file_lines_as_load_rejects(con, tmp_path: Path) -> None:
    """A row quarantined at load used to shift the contract's row numbers: both now name the file's lines."""
    invoices = [
        "I1,C1,invoice,,2024-01-01,2024-01-31,1200.50,EUR,30,false",  # line 2
        "I2,C1,invoice,,2024-01-10,2024-02-09,12.345,EUR,30,false",  # line 3: would round, rejected at load
        "I3,C2,invoice,,2024-01-20,2024-02-19,300.00,EUR,30,false",  # line 4
        "I3,C2,invoice,,2024-01-20,2024-02-19,300.00,EUR,30,false",  # line 5: the duplicate
    ]
    report = load_landing(con, write_landing(tmp_path / "landing", CUSTOMERS, invoices), flow_run_id="run-1")
    assert [r.reason.split(":")[0] for r in report.rejected] == [f"{tmp_path / 'landing' / 'invoices.csv'}, row 3"]
    gate = _gate(con, tmp_path)
    (failure,) = gate.summary.critical_failures
    assert "row 4 [I3]" in failure and "row 5 [I3]" in failure, failure
