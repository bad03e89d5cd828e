"""relance.ops, the one owner of the ops tables: migrations of older warehouses and the quarantine's two stages."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from relance import ops

OLD_QUARANTINE = """create table ops.quarantine (batch_id VARCHAR, entity VARCHAR, row_number BIGINT,
    natural_key VARCHAR, expectation VARCHAR, severity VARCHAR, reason VARCHAR, row_json VARCHAR,
    quarantined_at TIMESTAMP, flow_run_id VARCHAR)"""


def _row(batch: str, n: int, stage: ops.QuarantineStage) -> ops.QuarantineRow:
    return ops.QuarantineRow(batch, "invoices", n, f"I{n}", "rule", "warning", "why", "{}", stage, datetime(2026, 1, 1))


def test_an_older_warehouse_gets_the_stage_column_filled_from_the_old_prefix() -> None:
    con = duckdb.connect()
    con.execute("create schema ops")
    con.execute(OLD_QUARANTINE)
    con.execute(
        "insert into ops.quarantine values ('b', 'invoices', 1, 'I1', 'load:cast', 'error', 'r', '{}', now(), 'f'),"
        " ('b', 'invoices', 2, 'I2', 'expect_x', 'warning', 'r', '{}', now(), 'f')"
    )
    ops.ensure_ops(con)
    ops.ensure_ops(con)  # idempotent
    assert con.execute("select natural_key, stage from ops.quarantine order by 1").fetchall() == [
        ("I1", "load"),
        ("I2", "contract"),
    ]
    columns = {r[0] for r in con.execute("describe ops.ingest_batches").fetchall()}
    assert {"source_name", "rows_flagged"} <= columns


def test_revalidating_replaces_contract_rows_keeps_load_rows_and_counts_flagged_rows() -> None:
    con = duckdb.connect()
    ops.ensure_ops(con)
    for batch in ("B1", "B2"):
        ops.record_batch(con, ops.BatchRecord(batch, "invoices", "f.csv", "h", 3, 3, 0, 0, "loaded", "demo"))
    ops.quarantine(con, [_row("B1", 1, "load")])
    ops.replace_contract_quarantine(con, ["B1", "B2"], [_row("B1", 2, "contract"), _row("B1", 3, "contract")])
    ops.replace_contract_quarantine(con, ["B1"], [_row("B1", 3, "contract")])  # validated again: one row left
    rows = con.execute("select batch_id, row_number, stage from ops.quarantine order by 2").fetchall()
    assert rows == [("B1", 1, "load"), ("B1", 3, "contract")]
    flagged = dict(con.execute("select batch_id, rows_flagged from ops.ingest_batches").fetchall())
    assert flagged == {"B1": 1, "B2": 0}
    with pytest.raises(ValueError, match="contract rows of the batches it replaces"):
        ops.replace_contract_quarantine(con, ["B2"], [_row("B1", 4, "contract")])


def test_the_volume_history_leaves_out_batches_excluded_from_the_current_state() -> None:
    con = duckdb.connect()
    ops.ensure_ops(con)
    for i, n in enumerate([100, 5, 110, 120]):
        ops.record_batch(
            con,
            ops.BatchRecord(
                f"b{i}", "invoices", "f.csv", f"h{i}", n, n, 0, 0, "loaded", "erp", datetime(2026, 11, i + 1)
            ),
        )
    ops.set_validation_states(con, {"b0": "passed", "b1": "failed", "b2": "passed"}, at=datetime(2026, 11, 5))
    latest = ops.batch_records(con, ["b3"])[0]
    assert ops.previous_volumes(con, latest, 10) == [110, 100], "the failed 5-row delivery is no measure"
    assert [b.state for b in ops.list_batches(con)] == ["pending", "passed", "superseded", "passed"]
    assert [b.batch_id for b in ops.blocking_batches(con)] == ["b3"]


def test_the_staging_macro_excludes_the_same_batch_states_as_the_loader() -> None:
    """dbt cannot import relance.ops: its copy of the excluded states is checked here instead."""
    import re
    from pathlib import Path

    macro = (Path(__file__).resolve().parents[2] / "dbt_project" / "macros" / "staging.sql").read_text()
    (listed,) = re.findall(r"validation_state in \(([^)]*)\)", macro)
    assert tuple(s.strip().strip("'") for s in listed.split(",")) == ops.EXCLUDED_STATES
    assert set(ops.EXCLUDED_STATES) | set(ops.BLOCKING_STATES) < set(ops.VALIDATION_STATES)
