"""ops.predictions: the model's outputs as scoring stores them, the p_late_30d -> p_late migration of existing
warehouses, and the pure reading of whatever a model version returns (``models.predict.model_outputs``)."""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import numpy as np
import pandas as pd
import pytest

from models.contract import OUTPUT_COLUMNS
from models.predict import PREDICTION_COLUMNS, model_outputs, write_predictions
from relance import ops

AS_OF = date(2026, 3, 31)
SCORED_AT = datetime(2026, 3, 31, 7)


def _preds(**overrides: object) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "invoice_id": ["I1", "I2"],
            "as_of_date": [AS_OF, AS_OF],
            "p_late": [0.8, 0.1],
            "days_late_p10": [2.0, np.nan],
            "days_late_p50": [14.5, np.nan],
            "days_late_p90": [40.0, np.nan],
            "reason_1": ["Customer paid 62% of past invoices late", None],
            "reason_2": ["Already 11 days overdue", None],
            "reason_3": [None, None],
            "target_name": ["late_over_5d", "late_over_5d"],
            "model_name": ["payment_delay", "payment_delay"],
            "model_version": ["4", "4"],
            "model_run_id": ["run-4", "run-4"],
        }
    )
    for column, value in overrides.items():
        frame[column] = value
    return frame[list(PREDICTION_COLUMNS)]


def _stored(con: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    cur = con.execute("SELECT * FROM ops.predictions ORDER BY invoice_id")
    names = [d[0] for d in cur.description]
    return {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}


def test_every_output_is_stored_with_its_target_and_lineage() -> None:
    con = duckdb.connect()
    assert write_predictions(con, _preds(), dbt_invocation_id="inv-1", flow_run_id="fr-1", scored_at=SCORED_AT) == 2
    rows = _stored(con)
    assert rows["I1"]["p_late"] == 0.8 and rows["I1"]["target_name"] == "late_over_5d"
    assert (rows["I1"]["days_late_p10"], rows["I1"]["days_late_p50"], rows["I1"]["days_late_p90"]) == (2, 14.5, 40)
    assert (rows["I1"]["reason_1"], rows["I1"]["reason_2"], rows["I1"]["reason_3"]) == (
        "Customer paid 62% of past invoices late",
        "Already 11 days overdue",
        None,
    )
    # no quantiles, no reasons: null, never NaN or the text 'None'
    assert [rows["I2"][c] for c in ("days_late_p50", "reason_1", "reason_3")] == [None, None, None]
    assert (rows["I2"]["model_version"], rows["I2"]["dbt_invocation_id"], rows["I2"]["flow_run_id"]) == (
        "4",
        "inv-1",
        "fr-1",
    )

    # re-scoring the day replaces every column, reasons and quantiles included (a baseline has none)
    baseline = _preds(days_late_p10=np.nan, days_late_p50=np.nan, days_late_p90=np.nan, reason_2=None)
    baseline["model_version"] = "5"
    write_predictions(con, baseline, dbt_invocation_id="inv-2", flow_run_id="fr-2", scored_at=SCORED_AT)
    again = _stored(con)
    assert len(again) == 2 and again["I1"]["model_version"] == "5" and again["I1"]["days_late_p50"] is None
    assert again["I1"]["reason_2"] is None and again["I1"]["reason_1"] == "Customer paid 62% of past invoices late"


def test_bad_predictions_are_refused_before_anything_is_written() -> None:
    con = duckdb.connect()
    with pytest.raises(ValueError, match=r"p_late value\(s\) outside \[0, 1\]"):
        write_predictions(con, _preds(p_late=[1.2, 0.1]), dbt_invocation_id=None, flow_run_id=None, scored_at=SCORED_AT)
    crossed = _preds(days_late_p10=[20.0, np.nan])  # p10 above p50 for I1
    with pytest.raises(ValueError, match="quantiles out of order.*I1"):
        write_predictions(con, crossed, dbt_invocation_id=None, flow_run_id=None, scored_at=SCORED_AT)
    with pytest.raises(KeyError, match="target_name"):
        write_predictions(
            con, _preds().drop(columns="target_name"), dbt_invocation_id=None, flow_run_id=None, scored_at=SCORED_AT
        )
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'ops'").fetchone()[0] == 0


def test_an_existing_warehouse_keeps_its_scores_under_the_new_name() -> None:
    """A warehouse written before the rename: p_late_30d in ops.predictions and ops.reminders_planned."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA ops")
    con.execute(
        """CREATE TABLE ops.predictions (invoice_id VARCHAR, as_of_date DATE, p_late_30d DOUBLE, model_name VARCHAR,
               model_version VARCHAR, model_run_id VARCHAR, dbt_invocation_id VARCHAR, scored_at TIMESTAMP,
               flow_run_id VARCHAR, PRIMARY KEY (invoice_id, as_of_date))"""
    )
    con.execute(
        "INSERT INTO ops.predictions VALUES ('OLD', '2026-03-30', 0.35, 'payment_delay', '2', 'r2', 'i', ?, 'f')",
        [SCORED_AT],
    )
    con.execute("CREATE TABLE ops.reminders_planned (reminder_key VARCHAR PRIMARY KEY, p_late_30d DOUBLE)")
    con.execute("INSERT INTO ops.reminders_planned VALUES ('k', 0.6)")

    ops.ensure_ops(con)
    ops.ensure_ops(con)  # idempotent
    assert "p_late_30d" not in ops.table_columns(con, "predictions")
    assert set(ops.PREDICTION_DETAIL_COLUMNS) <= set(ops.table_columns(con, "predictions"))
    old = _stored(con)["OLD"]
    assert old["p_late"] == 0.35 and old["target_name"] is None and old["reason_1"] is None  # not guessed
    assert con.execute("SELECT p_late FROM ops.reminders_planned").fetchall() == [(0.6,)]

    # the migrated table takes today's rows, and its primary key still holds
    write_predictions(con, _preds(), dbt_invocation_id="inv", flow_run_id="fr", scored_at=SCORED_AT)
    write_predictions(con, _preds(), dbt_invocation_id="inv", flow_run_id="fr", scored_at=SCORED_AT)
    assert sorted(_stored(con)) == ["I1", "I2", "OLD"] and _stored(con)["I1"]["reason_2"] == "Already 11 days overdue"


def test_a_caller_with_only_the_core_columns_stores_null_details() -> None:
    con = duckdb.connect()
    ops.ensure_ops(con)
    core = _preds()[list(ops.PREDICTION_COLUMNS)]
    ops.upsert_predictions(con, core, dbt_invocation_id=None, flow_run_id=None, scored_at=SCORED_AT)
    assert all(_stored(con)["I1"][c] is None for c in ops.PREDICTION_DETAIL_COLUMNS)
    with pytest.raises(KeyError, match="p_late"):
        ops.upsert_predictions(
            con, core.drop(columns="p_late"), dbt_invocation_id=None, flow_run_id=None, scored_at=SCORED_AT
        )


# --------------------------------------------------------------------------------------- model_outputs
def test_full_outputs_pass_through_in_contract_order() -> None:
    raw = pd.DataFrame(
        {
            "reason_1": ["a", None],
            "p_late": [0.3, 0.6],
            "days_late_p10": [1.0, 2.0],
            "days_late_p50": [3.0, 4.0],
            "days_late_p90": [5.0, 6.0],
            "reason_2": [np.nan, "b"],
            "reason_3": [None, None],
            "extra": [9, 9],
        }
    )
    out = model_outputs(raw, 2)
    assert tuple(out.columns) == OUTPUT_COLUMNS
    assert out["p_late"].tolist() == [0.3, 0.6] and out["days_late_p90"].tolist() == [5.0, 6.0]
    assert out["reason_1"].tolist() == ["a", None] and out["reason_2"].tolist() == [None, "b"]


def test_a_legacy_model_is_read_as_p_late_with_null_quantiles_and_reasons() -> None:
    out = model_outputs(pd.DataFrame({"p_late_30d": [0.25, 0.75]}), 2)
    assert tuple(out.columns) == OUTPUT_COLUMNS
    assert out["p_late"].tolist() == [0.25, 0.75]
    assert out[["days_late_p10", "days_late_p50", "days_late_p90"]].isna().all().all()
    assert out[["reason_1", "reason_2", "reason_3"]].map(lambda v: v is None).all().all()


def test_model_outputs_refuse_what_is_not_a_payment_model() -> None:
    with pytest.raises(ValueError, match="none is 'p_late'"):
        model_outputs(pd.DataFrame({"score": [0.1]}), 1)
    with pytest.raises(ValueError, match="1 row\\(s\\) for 2 input"):
        model_outputs(pd.DataFrame({"p_late": [0.1]}), 2)
    assert model_outputs(pd.DataFrame(), 0).empty  # nothing to score
