"""Scoring keeps every output a registered model gives, with the target it estimates, through real MLflow.

Two model versions stand in for the two generations of relance models, registered in a real MLflow registry
(SQLite): a legacy one that returns the single column ``p_late_30d``, and a current one that returns every
``OUTPUT_COLUMNS`` column and carries the ``relance.target_name`` version tag. Their rule is a plain function of
one feature, so every stored number can be checked by hand. Scores go to a real DuckDB ``ops.predictions``.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from pathlib import Path

import duckdb
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from models.contract import FEATURE_COLUMNS, NUMERIC_FEATURES, OUTPUT_COLUMNS
from models.predict import TARGET_NAME_TAG, ScoringRun, score, write_predictions
from models.registry import CHAMPION, mlflow_uris

pytestmark = pytest.mark.integration

AS_OF = date(2026, 3, 31)


class LegacyModel(mlflow.pyfunc.PythonModel):
    """What models registered before p_late returned: one column, p_late_30d = the customer's late share."""

    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201 (MLflow's signature)
        return pd.DataFrame({"p_late_30d": pd.to_numeric(model_input["cust_late_share"]).fillna(0.5).to_numpy()})


class CurrentModel(mlflow.pyfunc.PythonModel):
    """Every output: p_late = late share, days late = 10 x late share +- 5, one reason when the share is known."""

    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
        share = pd.to_numeric(model_input["cust_late_share"])
        mid = (share * 10).to_numpy()
        reason = [None if pd.isna(s) else f"Customer paid {s:.0%} of past invoices late" for s in share]
        return pd.DataFrame(
            {
                "p_late": share.fillna(0.5).to_numpy(),
                "days_late_p10": mid - 5,
                "days_late_p50": mid,
                "days_late_p90": mid + 5,
                "reason_1": reason,
                "reason_2": [None] * len(share),
                "reason_3": [None] * len(share),
            }
        )


def _register(tracking_uri: str, name: str, model: mlflow.pyfunc.PythonModel, tags: dict[str, str]) -> str:
    with mlflow_uris(tracking_uri), mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=model, registered_model_name=name)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    version = str(info.registered_model_version)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    client.set_registered_model_alias(name, CHAMPION, version)
    return version


def _scoring_frame() -> pd.DataFrame:
    frame = pd.DataFrame({c: [0.0, 0.0, 0.0] for c in NUMERIC_FEATURES})
    for c in FEATURE_COLUMNS:
        if c not in frame.columns:
            frame[c] = ["x", "x", "x"]
    frame["cust_late_share"] = [0.2, 0.9, np.nan]  # C has no history
    frame.insert(0, "invoice_id", ["A", "B", "C"])
    frame.insert(1, "as_of_date", pd.Timestamp(AS_OF))
    return frame


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("scoring")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    with mlflow_uris(uri):
        mlflow.set_experiment("scoring-outputs")
    return uri


def _stored(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return con.execute("SELECT * FROM ops.predictions ORDER BY invoice_id").df()


def test_a_current_model_stores_every_output_under_its_own_target(tracking_uri: str, tmp_path: Path, caplog) -> None:
    version = _register(tracking_uri, "current", CurrentModel(), {TARGET_NAME_TAG: "late_over_5d"})
    with caplog.at_level(logging.WARNING, logger="models.predict"):
        # the settings name another target: the model's own tag wins, and the mismatch is logged
        preds = score(_scoring_frame(), tracking_uri=tracking_uri, model_name="current", target_name="late_any")
    assert any("estimates late_over_5d" in r.getMessage() for r in caplog.records)
    assert set(OUTPUT_COLUMNS) <= set(preds.columns)
    run = ScoringRun.of(preds, "current")
    assert (run.model_version, run.scored, run.target_name) == (version, 3, "late_over_5d")

    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    write_predictions(con, preds, dbt_invocation_id="inv", flow_run_id="fr", scored_at=datetime(2026, 3, 31, 7))
    rows = _stored(con).set_index("invoice_id")
    assert rows.loc["B", "p_late"] == 0.9 and rows.loc["B", "target_name"] == "late_over_5d"
    assert tuple(rows.loc["B", ["days_late_p10", "days_late_p50", "days_late_p90"]]) == (4.0, 9.0, 14.0)
    assert rows.loc["A", "reason_1"] == "Customer paid 20% of past invoices late"
    assert rows.loc["C", "p_late"] == 0.5
    # no history, no reason: SQL null (not the text 'nan' or 'None')
    assert con.execute("SELECT reason_1 IS NULL FROM ops.predictions WHERE invoice_id = 'C'").fetchall() == [(True,)]
    assert (rows["model_version"] == version).all() and rows["model_run_id"].notna().all()


def test_a_legacy_model_still_scores_with_the_settings_target(tracking_uri: str, tmp_path: Path) -> None:
    version = _register(tracking_uri, "legacy", LegacyModel(), {})  # no target tag: registered before it
    preds = score(_scoring_frame(), tracking_uri=tracking_uri, model_name="legacy", target_name="unpaid_30d_after_due")
    assert list(preds["p_late"]) == [0.2, 0.9, 0.5]
    assert preds[["days_late_p10", "days_late_p50", "days_late_p90"]].isna().all().all()
    assert preds[["reason_1", "reason_2", "reason_3"]].map(lambda v: v is None).all().all()
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    write_predictions(con, preds, dbt_invocation_id=None, flow_run_id=None, scored_at=datetime(2026, 3, 31, 7))
    rows = _stored(con)
    assert set(rows["target_name"]) == {"unpaid_30d_after_due"} and set(rows["model_version"]) == {version}
    assert rows["days_late_p50"].isna().all() and rows["reason_1"].isna().all()

    # without the tag and without the caller's target, the target is unknown: stored as null, not invented
    unnamed = score(_scoring_frame(), tracking_uri=tracking_uri, model_name="legacy")
    assert unnamed["target_name"].isna().all() and ScoringRun.of(unnamed, "legacy").target_name is None
