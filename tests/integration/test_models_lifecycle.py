"""The payment-delay model lifecycle against a real DuckDB file and a real MLflow (SQLite) registry.

Synthetic feature/label tables with exactly the contract columns; the label depends on ``cust_late_share``,
``days_to_due`` and ``is_disputed`` plus noise. One module-scoped scenario trains twice: first on real labels
(must become champion), then on pure-noise labels (must not), and the tests read its outcome.
"""

from __future__ import annotations

import ast
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

import models.pyfunc
from models.contract import (
    CATEGORICAL_FEATURES,
    CONTEXT_COLUMNS,
    FEATURE_COLUMNS,
    KEY_COLUMNS,
    NUMERIC_FEATURES,
    OUTPUT_COLUMNS,
    PREDICTION,
    QUANTILE_COLUMNS,
    TARGET,
)
from models.features import FeatureDataError, dataset_hash, load_scoring_frame, load_training_frame
from models.predict import PREDICTION_COLUMNS, score, write_predictions
from models.registry import NoModelForAliasError, mlflow_uris, promote_if_better, resolve_alias
from models.split import time_split
from models.train import TrainResult, train_and_maybe_promote

pytestmark = pytest.mark.integration

HORIZON = 30
MIN_GAIN = 0.05
SNAPSHOTS = [date(2026, 1, 5) + timedelta(weeks=i) for i in range(12)]
RUN_AS_OF = SNAPSHOTS[-1] + timedelta(days=HORIZON + 5)  # every snapshot's label window has closed
ROWS_PER_SNAPSHOT = 250
MODEL_NAME = "payment_delay_test"
EXPERIMENT = "payment_delay_lifecycle"
LINEAGE = {
    "prefect.flow_run_id": "11111111-2222-3333-4444-555555555555",
    "dbt.invocation_id": "dbt-inv-0001",
    "raw.batch_ids": "b-001,b-002",
    "git.sha": "0123abcd",
}


def make_features(rng: np.random.Generator, snapshots: list[date], rows_per_snapshot: int) -> pd.DataFrame:
    n = len(snapshots) * rows_per_snapshot
    as_of = np.repeat(np.array(snapshots, dtype="datetime64[D]"), rows_per_snapshot)
    terms = rng.choice([30, 45, 60], size=n)
    age = rng.integers(0, 120, size=n)
    issue = as_of - age.astype("timedelta64[D]")
    due = issue + terms.astype("timedelta64[D]")
    amount = np.round(rng.lognormal(7, 1, size=n), 2)
    open_share = rng.choice([1.0, 0.5, 0.25], size=n, p=[0.8, 0.15, 0.05])
    settled = rng.integers(0, 40, size=n).astype(float)
    late_share = rng.beta(2, 3, size=n)
    late_share[settled == 0] = np.nan  # new customers: no history
    df = pd.DataFrame(
        {
            "invoice_id": [f"INV-{i:06d}" for i in range(n)],
            "customer_id": [f"C{c:04d}" for c in rng.integers(0, 300, size=n)],
            "as_of_date": as_of,
            "currency": "EUR",
            "issue_date": issue,
            "due_date": due,
            "open_amount_ccy": amount * open_share,
            "amount": amount,
            "open_amount": amount * open_share,
            "open_share": open_share,
            "payment_terms_days": terms,
            "is_end_of_month_terms": rng.integers(0, 2, size=n),
            "days_to_due": (due - as_of).astype(int),
            "invoice_age_days": age,
            "issue_month": pd.DatetimeIndex(issue).month,
            "is_disputed": (rng.random(n) < 0.08).astype(int),
            "cust_settled_invoice_count": settled,
            "cust_late_share": late_share,
            "cust_mean_days_late": rng.gamma(2, 5, size=n),
            "cust_median_days_late_365d": rng.gamma(2, 4, size=n),
            "cust_days_since_last_payment": rng.integers(0, 200, size=n).astype(float),
            "cust_open_amount": rng.lognormal(9, 1, size=n),
            "cust_open_invoice_count": rng.integers(1, 20, size=n),
            "cust_credit_limit_usage": rng.random(n) * 1.5,
            "cust_partial_payment_share": rng.random(n),
            "cust_tenure_days": rng.integers(30, 3000, size=n),
            "reminder_count": rng.integers(0, 4, size=n),
            "days_since_last_reminder": rng.integers(0, 60, size=n).astype(float),
            "promise_count": rng.integers(0, 3, size=n),
            "broken_promise_count": rng.integers(0, 2, size=n),
            "customer_type": rng.choice(["company", "public_body", "sole_trader"], size=n),
            "sector_section": rng.choice(list("CFGJMN"), size=n),
            "size_band": rng.choice(["micro", "small", "medium", "large", None], size=n),
        }
    )
    # the remaining contract features carry no signal here: random values, random levels
    for name in NUMERIC_FEATURES:
        if name not in df:
            df[name] = rng.random(n)
    for name in CATEGORICAL_FEATURES:
        if name not in df:
            df[name] = rng.choice(["a", "b", "c"], size=n)
    df = df[[*KEY_COLUMNS, *CONTEXT_COLUMNS, *FEATURE_COLUMNS]]
    return df


def make_labels(rng: np.random.Generator, feats: pd.DataFrame, *, noise_only: bool) -> pd.DataFrame:
    n = len(feats)
    if noise_only:
        y = (rng.random(n) < 0.35).astype(int)
    else:
        late = feats["cust_late_share"].fillna(0.4).to_numpy()
        logit = -0.6 + 3.0 * (late - 0.4) - 0.06 * feats["days_to_due"].to_numpy() + 1.5 * feats["is_disputed"]
        logit = logit + rng.normal(0, 0.5, size=n)
        y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    as_of = pd.to_datetime(feats["as_of_date"])
    observed = np.maximum(as_of, pd.to_datetime(feats["due_date"])) + pd.Timedelta(days=HORIZON)
    known = (observed <= pd.Timestamp(RUN_AS_OF)).to_numpy(copy=True)
    known[feats.index % 40 == 7] = False  # a few rows whose outcome dbt marks unknown: must never train
    return pd.DataFrame(
        {
            "invoice_id": feats["invoice_id"],
            "as_of_date": feats["as_of_date"],
            "target_name": "unpaid_30d_after_due",
            TARGET: np.where(known, y, -1),
            "days_late": np.where(y == 1, 45.0, 3.0),
            "settled_date": feats["due_date"],
            "days_to_settle": np.where(y == 1, 60.0, 10.0),
            "is_paid_within_horizon": 1 - y,
            "amount_paid_within_horizon": np.where(y == 1, 0.0, feats["open_amount_ccy"]),
            "open_amount_at_as_of": feats["open_amount_ccy"],
            "label_observed_date": observed.dt.date,
            "is_label_known": known,
        }
    )


def write_tables(con: duckdb.DuckDBPyConnection, feats: pd.DataFrame, labels: pd.DataFrame) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS ml")
    con.register("feats_df", feats)
    con.register("labels_df", labels)
    con.execute(
        "CREATE OR REPLACE TABLE ml.ml_invoice_features AS SELECT * REPLACE ("
        "CAST(as_of_date AS DATE) AS as_of_date, CAST(issue_date AS DATE) AS issue_date, "
        "CAST(due_date AS DATE) AS due_date, CAST(size_band AS VARCHAR) AS size_band) FROM feats_df"
    )
    con.execute(
        "CREATE OR REPLACE TABLE ml.ml_invoice_labels AS SELECT * REPLACE ("
        "CAST(as_of_date AS DATE) AS as_of_date, CAST(settled_date AS DATE) AS settled_date, "
        f"CASE WHEN is_label_known THEN {TARGET} END AS {TARGET}) FROM labels_df"
    )
    con.unregister("feats_df")
    con.unregister("labels_df")


@dataclass
class Scenario:
    con: duckdb.DuckDBPyConnection
    tracking_uri: str
    artifact_root: Path
    first: TrainResult
    second: TrainResult
    champion_after_first: str
    signal_labels: pd.DataFrame
    feats: pd.DataFrame


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    tmp = tmp_path_factory.mktemp("lifecycle")
    rng = np.random.default_rng(7)
    train_feats = make_features(rng, SNAPSHOTS, ROWS_PER_SNAPSHOT)
    score_feats = make_features(rng, [RUN_AS_OF], 120)
    score_feats["invoice_id"] = [f"NEW-{i:05d}" for i in range(len(score_feats))]
    score_feats.loc[:4, "customer_type"] = "never_seen_type"  # unseen level at scoring time
    feats = pd.concat([train_feats, score_feats], ignore_index=True)
    signal = make_labels(rng, feats, noise_only=False)
    noise = make_labels(rng, feats, noise_only=True)

    con = duckdb.connect(str(tmp / "warehouse.duckdb"))
    write_tables(con, feats, signal)
    tracking_uri = f"sqlite:///{tmp / 'mlflow.db'}"
    common = dict(
        tracking_uri=tracking_uri,
        artifact_root=tmp / "artifacts",
        experiment_name=EXPERIMENT,
        model_name=MODEL_NAME,
        horizon_days=HORIZON,
        min_gain=MIN_GAIN,
        lineage=LINEAGE,
    )
    first = train_and_maybe_promote(con, RUN_AS_OF, **common)
    champion_after_first = resolve_alias(tracking_uri, MODEL_NAME, "champion").version
    write_tables(con, feats, noise)
    second = train_and_maybe_promote(con, RUN_AS_OF, **common)
    write_tables(con, feats, signal)  # later tests read the real labels again
    yield Scenario(con, tracking_uri, tmp / "artifacts", first, second, champion_after_first, signal, feats)
    con.close()


def test_training_frame_reads_only_known_past_labels_and_no_outcome_columns(scenario: Scenario) -> None:
    df = load_training_frame(scenario.con, RUN_AS_OF, horizon_days=HORIZON)
    lab = scenario.signal_labels
    expected = lab[lab["is_label_known"] & (pd.to_datetime(lab["as_of_date"]) < pd.Timestamp(RUN_AS_OF))]
    assert len(df) == len(expected)
    assert set(df["invoice_id"]) == set(expected["invoice_id"])
    assert df["as_of_date"].max() < pd.Timestamp(RUN_AS_OF)
    labels = {TARGET, "days_late", "target_name", "label_observed_date", "settled_date"}
    assert set(df.columns) == {*KEY_COLUMNS, *CONTEXT_COLUMNS, *FEATURE_COLUMNS, *labels}
    assert "is_label_known" not in df.columns
    assert not labels & set(FEATURE_COLUMNS)  # labels ride along for the split, never as features
    # the regression label is known only once settled, on or before the run's date
    assert df.loc[df["settled_date"] > pd.Timestamp(RUN_AS_OF), "days_late"].isna().all()
    assert df.loc[df["settled_date"] <= pd.Timestamp(RUN_AS_OF), "days_late"].notna().all()
    assert set(df["target_name"]) == {"unpaid_30d_after_due"}
    assert set(df[TARGET].unique()) == {0, 1}
    # an earlier run date sees fewer rows: nothing from on/after it, nothing whose window is still open
    early = load_training_frame(scenario.con, SNAPSHOTS[6], horizon_days=HORIZON)
    assert (early["as_of_date"] + pd.Timedelta(days=HORIZON) <= pd.Timestamp(SNAPSHOTS[6])).all()
    # deterministic load -> stable hash; a changed value changes it
    again = load_training_frame(scenario.con, RUN_AS_OF, horizon_days=HORIZON)
    assert dataset_hash(df) == dataset_hash(again)
    again.loc[again.index[0], "amount"] += 1
    assert dataset_hash(df) != dataset_hash(again)


def test_first_run_is_fully_logged(scenario: Scenario) -> None:
    first = scenario.first
    client = MlflowClient(tracking_uri=scenario.tracking_uri, registry_uri=scenario.tracking_uri)
    run = client.get_run(first.run_id)
    m = run.data.metrics
    for metric in ("auc", "log_loss", "brier", "pr_auc", "base_rate"):
        assert f"test_{metric}" in m
        assert f"baseline_constant_test_{metric}" in m
        assert f"baseline_cust_late_share_test_{metric}" in m
    # calibration, days-late quantiles, weighted metrics and customer-bootstrap intervals, under stable names
    for metric in (
        "calibration_error",
        "mae_days_late",
        "pinball_p50",
        "coverage_p10_p90",
        "auc_snapshot_weighted",
        "auc_amount_weighted",
        "auc_ci_low",
        "auc_ci_high",
    ):
        assert f"test_{metric}" in m, metric
    assert m["test_auc_ci_low"] <= m["test_auc"] <= m["test_auc_ci_high"]
    artifacts = {a.path for a in client.list_artifacts(first.run_id, "plots")}
    assert {"plots/roc_calibration.png", "plots/calibration.png", "plots/shap_summary.png"} <= artifacts
    assert {"segment_table.json", "backtest_table.json"} <= {a.path for a in client.list_artifacts(first.run_id)}
    assert run.data.tags["relance.target_name"] == "unpaid_30d_after_due"
    assert run.data.tags["relance.refit_on_all"] == "true"
    assert m["baseline_constant_test_auc"] == pytest.approx(0.5)
    assert m["test_auc"] == pytest.approx(first.metrics["auc"])
    for key, value in LINEAGE.items():
        assert run.data.tags[key] == value
    assert run.data.tags["relance.as_of_date"] == str(RUN_AS_OF)
    assert run.data.tags["dataset.hash"] == first.dataset_hash
    p = run.data.params
    assert p["cutoff_date"] == first.window["cutoff_date"]
    assert p["train_end"] < p["test_start"]
    assert int(p["n_train"]) + int(p["n_test"]) < len(scenario.feats)
    assert p["lgbm_num_threads"] == "2"
    artifacts = {a.path for a in client.list_artifacts(first.run_id)}
    assert {"plots", "data_window.json", "feature_importance.json"} <= artifacts
    assert "plots/roc_calibration.png" in [a.path for a in client.list_artifacts(first.run_id, "plots")]
    assert {i.dataset.name for i in run.inputs.dataset_inputs} == {
        "ml_invoice_features_training",
        "ml_invoice_features_testing",
    }
    # registered, with a signature and an input example; stored under the experiment's artifact root
    mv = client.get_model_version(MODEL_NAME, first.model_version)
    assert mv.run_id == first.run_id
    assert mv.tags["dataset.hash"] == first.dataset_hash
    with mlflow_uris(scenario.tracking_uri):
        info = mlflow.models.get_model_info(f"models:/{MODEL_NAME}/{first.model_version}")
    assert info.signature.inputs.input_names() == list(FEATURE_COLUMNS)
    assert info.signature.outputs.input_names() == list(OUTPUT_COLUMNS)  # probability, quantiles, reasons
    assert info.saved_input_example_info is not None
    exp = client.get_experiment(first.experiment_id)
    assert exp.name == f"{EXPERIMENT}-unpaid_30d_after_due"  # one experiment per target
    assert exp.artifact_location.startswith((scenario.artifact_root / EXPERIMENT).resolve().as_uri())


def test_signal_candidate_becomes_champion(scenario: Scenario) -> None:
    first = scenario.first
    best_baseline_auc = max(b["auc"] for b in first.baseline_metrics.values())
    assert first.metrics["auc"] > best_baseline_auc + MIN_GAIN
    assert first.champion_metrics is None  # nothing to compare with the first time
    assert first.promoted, first.reason
    assert scenario.champion_after_first == first.model_version
    client = MlflowClient(tracking_uri=scenario.tracking_uri, registry_uri=scenario.tracking_uri)
    mv = client.get_model_version(MODEL_NAME, first.model_version)
    assert mv.tags["promotion.promoted"] == "true"
    assert client.get_run(first.run_id).data.tags["promotion.promoted"] == "true"


def test_noise_candidate_is_not_promoted_and_champion_stays(scenario: Scenario) -> None:
    first, second = scenario.first, scenario.second
    assert second.model_version != first.model_version
    assert not second.promoted
    assert "baseline" in second.reason
    assert second.metrics["auc"] < 0.6
    assert second.champion_version == first.model_version
    assert second.champion_metrics is not None  # the champion was scored on the noise test rows too
    client = MlflowClient(tracking_uri=scenario.tracking_uri, registry_uri=scenario.tracking_uri)
    assert client.get_model_version_by_alias(MODEL_NAME, "champion").version == int(first.model_version)
    assert client.get_model_version_by_alias(MODEL_NAME, "challenger").version == int(second.model_version)
    run = client.get_run(second.run_id)
    assert run.data.tags["promotion.promoted"] == "false"
    assert "champion_test_auc" in run.data.metrics
    assert client.get_model_version(MODEL_NAME, second.model_version).current_stage == "None"  # no stages


def test_training_and_serving_paths_give_identical_predictions(scenario: Scenario) -> None:
    frame = load_training_frame(scenario.con, RUN_AS_OF, horizon_days=HORIZON)
    split = time_split(frame, horizon_days=HORIZON)
    scoring = load_scoring_frame(scenario.con, RUN_AS_OF)
    assert (scoring["customer_type"] == "never_seen_type").sum() == 5
    assert scenario.first.model is not None
    for rows in (split.test, scoring):
        in_memory = scenario.first.model.predict_proba(rows)
        with mlflow_uris(scenario.tracking_uri):
            served = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")
        loaded = served.predict(rows[list(FEATURE_COLUMNS)])[PREDICTION].to_numpy()
        assert np.isfinite(loaded).all() and ((loaded > 0) & (loaded < 1)).all()
        np.testing.assert_allclose(loaded, in_memory, rtol=0, atol=1e-12)
    # logged as code: the served class comes from the file stored with the model, not from this checkout,
    # and that file imports no project code, so the model loads wherever mlflow+lightgbm are installed
    assert type(served.unwrap_python_model()).__module__ != "models.pyfunc"
    tree = ast.parse(Path(models.pyfunc.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not {m for m in imported if m.split(".")[0] in {"models", "relance"}}
    scored = score(scoring, tracking_uri=scenario.tracking_uri, model_name=MODEL_NAME)
    np.testing.assert_allclose(
        scored[PREDICTION].to_numpy(), scenario.first.model.predict_proba(scoring), rtol=0, atol=1e-12
    )
    # the in-memory candidate metrics were computed by that same in-memory model
    assert scenario.first.metrics["auc"] > 0.7


def test_score_and_write_predictions_idempotently(scenario: Scenario) -> None:
    scoring = load_scoring_frame(scenario.con, RUN_AS_OF)
    preds = score(scoring, tracking_uri=scenario.tracking_uri, model_name=MODEL_NAME)
    assert list(preds.columns) == list(PREDICTION_COLUMNS)
    assert len(preds) == len(scoring) == 120
    # the champion is a refitted LightGBM: quantiles in order and reason codes in words on every row
    q10, q50, q90 = (preds[c].to_numpy() for c in QUANTILE_COLUMNS)
    assert np.isfinite(q50).all() and (q10 <= q50).all() and (q50 <= q90).all()
    assert preds["reason_1"].map(lambda r: isinstance(r, str) and len(r) > 5).all()
    assert (preds["model_version"] == scenario.first.model_version).all()
    assert (preds["model_run_id"] == scenario.first.run_id).all()
    con = scenario.con
    t1 = datetime(2026, 4, 1, 6, 0, tzinfo=UTC)
    assert write_predictions(con, preds, dbt_invocation_id="inv-1", flow_run_id="fr-1", scored_at=t1) == 120
    rescored = preds.assign(**{PREDICTION: preds[PREDICTION] / 2})
    write_predictions(con, rescored, dbt_invocation_id="inv-2", flow_run_id="fr-2", scored_at=t1 + timedelta(hours=1))
    stored = con.execute(
        "SELECT invoice_id, p_late, dbt_invocation_id, flow_run_id, scored_at FROM ops.predictions "
        "WHERE as_of_date = ? ORDER BY invoice_id",
        [RUN_AS_OF],
    ).df()
    assert len(stored) == 120 and stored["invoice_id"].is_unique
    np.testing.assert_allclose(stored[PREDICTION].to_numpy(), rescored.sort_values("invoice_id")[PREDICTION])
    assert set(stored["dbt_invocation_id"]) == {"inv-2"} and set(stored["flow_run_id"]) == {"fr-2"}
    assert set(stored["scored_at"]) == {pd.Timestamp("2026-04-01 07:00:00")}
    with pytest.raises(ValueError, match="duplicate"):
        write_predictions(
            con, pd.concat([preds, preds.head(1)]), dbt_invocation_id=None, flow_run_id=None, scored_at=t1
        )
    assert con.execute("SELECT count(*) FROM ops.predictions").fetchone()[0] == 120


def test_gate_promotes_only_beyond_noise_and_records_why(tmp_path: Path) -> None:
    """promote_if_better on predictions for the same test rows (300 customers x 10 snapshots), both directions:
    promoted over no champion, refused when worse, refused for a tie (the champion's own predictions), refused
    under the baseline's min_gain, promoted when better beyond noise; each decision's words and numbers on the
    version and its run."""
    rng = np.random.default_rng(0)
    groups = np.repeat([f"C{c:03d}" for c in range(300)], 10)
    logit = rng.normal(0, 1.2, 300).repeat(10) + rng.normal(0, 1.0, 3000) - 0.5
    y = (rng.random(3000) < 1 / (1 + np.exp(-logit))).astype(int)

    def model(noise: float) -> np.ndarray:  # the true score seen through noise: less noise, a better model
        return 1 / (1 + np.exp(-(logit + rng.normal(0, noise, 3000))))

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment_id = client.create_experiment("gate", artifact_location=(tmp_path / "runs").as_uri())
    name = "gate_only"
    client.create_registered_model(name)

    def candidate() -> tuple[str, str]:
        run_id = client.create_run(experiment_id).info.run_id
        return str(client.create_model_version(name, source=str(tmp_path / "m"), run_id=run_id).version), run_id

    baseline, v1_p = model(3.0), model(1.0)
    gate = dict(y=y, p_best_baseline=baseline, groups=groups, min_gain=0.02, n_boot=400, seed=0)
    v1, run1 = candidate()
    d1 = promote_if_better(client, name, v1, p_candidate=v1_p, p_champion=None, **gate)
    assert d1.promoted and "no champion yet" in d1.reason and d1.vs_champion is None
    assert d1.vs_baseline is not None and d1.vs_baseline.auc.lo > 0 and d1.vs_baseline.n_groups == 300
    metrics = client.get_run(run1).data.metrics
    assert metrics["gate_promoted"] == 1.0 and metrics["gate_auc_diff_vs_baseline_lo"] > 0
    assert metrics["gate_auc_diff_vs_baseline"] == pytest.approx(d1.vs_baseline.auc.diff)
    assert "gate_auc_diff_vs_champion" not in metrics

    v2, run2 = candidate()
    d2 = promote_if_better(client, name, v2, p_candidate=model(1.6), p_champion=v1_p, **gate)
    assert not d2.promoted and "worse than the champion beyond noise" in d2.reason and d2.champion_version == v1
    assert client.get_model_version_by_alias(name, "champion").version == int(v1)
    tags = client.get_model_version(name, v2).tags
    assert tags["promotion.previous_champion_version"] == v1 and tags["promotion.promoted"] == "false"
    assert tags["promotion.reason"] == d2.reason and tags["promotion.n_boot"] == "400"
    assert float(tags["promotion.auc_diff_vs_champion"]) < 0 and tags["promotion.baseline_auc"]
    run_metrics, run_tags = client.get_run(run2).data.metrics, client.get_run(run2).data.tags
    assert run_metrics["gate_auc_diff_vs_champion_hi"] < 0 and run_metrics["gate_promoted"] == 0.0
    assert run_metrics["gate_auc_win_share_vs_champion"] < 0.05 and "gate_brier_diff_vs_champion_lo" in run_metrics
    assert run_tags["promotion.reason"] == d2.reason  # the run answers "why not?" too

    v3, _ = candidate()
    d3 = promote_if_better(client, name, v3, p_candidate=v1_p.copy(), p_champion=v1_p, **gate)
    assert not d3.promoted and "not better than the champion beyond noise" in d3.reason  # a tie is not a win
    d4 = promote_if_better(client, name, v3, p_candidate=baseline + 1e-3, p_champion=v1_p, **gate)
    assert not d4.promoted and "baseline" in d4.reason

    v5, run5 = candidate()
    d5 = promote_if_better(client, name, v5, p_candidate=model(0.3), p_champion=v1_p, **gate)
    assert d5.promoted and "better than the champion beyond noise" in d5.reason
    assert client.get_model_version_by_alias(name, "champion").version == int(v5)
    assert client.get_model_version(name, v5).tags["promotion.previous_champion_version"] == v1
    assert client.get_run(run5).data.metrics["gate_auc_diff_vs_champion_lo"] > 0
    with pytest.raises(ValueError, match="no champion predictions"):
        promote_if_better(client, name, v3, p_candidate=model(0.3), p_champion=None, **gate)


def test_clear_errors_without_data_or_champion(scenario: Scenario, tmp_path: Path, caplog) -> None:
    empty = duckdb.connect(str(tmp_path / "empty.duckdb"))
    with pytest.raises(FeatureDataError, match="dbt build"):
        load_training_frame(empty, RUN_AS_OF)
    with pytest.raises(FeatureDataError, match="dbt build"):
        load_scoring_frame(empty, RUN_AS_OF)
    with pytest.raises(FeatureDataError, match="no rows"):
        load_scoring_frame(scenario.con, RUN_AS_OF + timedelta(days=1))
    empty.close()
    scoring = load_scoring_frame(scenario.con, RUN_AS_OF)
    with caplog.at_level(logging.INFO), pytest.raises(NoModelForAliasError, match="champion"):
        score(scoring, tracking_uri=scenario.tracking_uri, model_name="no_such_model")


def test_rerun_on_identical_data_keeps_the_champion_and_registers_nothing(scenario: Scenario) -> None:
    client = mlflow.MlflowClient(tracking_uri=scenario.tracking_uri, registry_uri=scenario.tracking_uri)
    versions_before = len(client.search_model_versions(f"name = '{MODEL_NAME}'"))
    again = train_and_maybe_promote(
        scenario.con,
        RUN_AS_OF,
        tracking_uri=scenario.tracking_uri,
        artifact_root=scenario.artifact_root,
        experiment_name=EXPERIMENT,
        model_name=MODEL_NAME,
        horizon_days=HORIZON,
        min_gain=MIN_GAIN,
        lineage={"prefect.flow_run_id": "rerun"},
    )
    assert again.model_version == scenario.champion_after_first and not again.promoted
    assert "exact dataset" in again.reason
    assert again.metrics["auc"] == pytest.approx(scenario.first.metrics["auc"])
    assert len(client.search_model_versions(f"name = '{MODEL_NAME}'")) == versions_before
