"""Untrainable data never crashes the daily training step: keep the champion, or serve the best baseline.

Real DuckDB file and real MLflow (SQLite) registry; the tiny warehouse is the lifecycle test's synthetic
feature/label tables (``make_features``/``make_labels``/``write_tables``), made untrainable the way real ledgers
are: every label 0 (the IBM sample with a 30-day target), or a run date with a single labelled snapshot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import duckdb
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from flows.train_model import comparison_rows, describe
from models.contract import FEATURE_COLUMNS, PREDICTION, TARGET
from models.features import load_scoring_frame, load_training_frame
from models.predict import score
from models.registry import mlflow_uris, resolve_alias
from models.split import SplitError, UntrainableData, time_split
from models.train import (
    FALLBACK_BASELINE,
    FALLBACK_KEPT_CHAMPION,
    MIN_TRAIN_CLASS_ROWS,
    MIN_TRAIN_ROWS,
    check_trainable,
    train_and_maybe_promote,
)
from tests.integration.test_models_lifecycle import (
    HORIZON,
    RUN_AS_OF,
    SNAPSHOTS,
    make_features,
    make_labels,
    write_tables,
)

pytestmark = pytest.mark.integration

ROWS_PER_SNAPSHOT = 120
LINEAGE = {"prefect.flow_run_id": "untrainable-run", "git.sha": "0123abcd"}
# the first snapshot's label window has closed, the second's has not: one labelled snapshot, no time split
SHORT_HISTORY_AS_OF = SNAPSHOTS[0] + timedelta(days=HORIZON + 2)


@dataclass
class World:
    con: duckdb.DuckDBPyConnection
    tmp: Path
    tracking_uri: str
    feats: pd.DataFrame
    signal: pd.DataFrame
    single_class: pd.DataFrame

    def train(self, model_name: str, as_of=RUN_AS_OF):
        return train_and_maybe_promote(
            self.con,
            as_of,
            tracking_uri=self.tracking_uri,
            artifact_root=self.tmp / "artifacts",
            experiment_name="untrainable",
            model_name=model_name,
            horizon_days=HORIZON,
            min_gain=0.05,
            lineage=LINEAGE,
        )

    def versions(self, model_name: str) -> int:
        client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return len(client.search_model_versions(f"name = '{model_name}'"))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    tmp = tmp_path_factory.mktemp("untrainable")
    rng = np.random.default_rng(11)
    score_feats = make_features(rng, [RUN_AS_OF], 60)
    score_feats["invoice_id"] = [f"NEW-{i:05d}" for i in range(len(score_feats))]
    feats = pd.concat([make_features(rng, SNAPSHOTS, ROWS_PER_SNAPSHOT), score_feats], ignore_index=True)
    signal = make_labels(rng, feats, noise_only=False)
    single_class = signal.assign(**{TARGET: np.where(signal[TARGET] == -1, -1, 0)})  # nobody late: one class
    con = duckdb.connect(str(tmp / "warehouse.duckdb"))
    world = World(con, tmp, f"sqlite:///{tmp / 'mlflow.db'}", feats, signal, single_class)
    yield world
    con.close()


def test_single_class_with_a_champion_keeps_it(world: World, caplog: pytest.LogCaptureFixture) -> None:
    name = "kept_champion"
    write_tables(world.con, world.feats, world.signal)
    first = world.train(name)
    assert first.promoted, first.reason
    write_tables(world.con, world.feats, world.single_class)
    versions = world.versions(name)
    with caplog.at_level(logging.WARNING, logger="models.train"):
        kept = world.train(name)
    assert first.trained and first.fallback is None
    assert not kept.trained and kept.fallback == FALLBACK_KEPT_CHAMPION and not kept.promoted
    assert kept.model_version == kept.champion_version == first.model_version
    assert "single is_late class [0]" in kept.reason and f"champion v{first.model_version} kept" in kept.reason
    assert resolve_alias(world.tracking_uri, name, "champion").version == first.model_version
    assert world.versions(name) == versions  # nothing registered
    assert any(r.levelno == logging.WARNING and "champion" in r.getMessage() for r in caplog.records)


def test_single_class_without_a_champion_serves_the_best_baseline(world: World, caplog) -> None:
    name = "baseline_champion"
    write_tables(world.con, world.feats, world.single_class)
    with caplog.at_level(logging.WARNING, logger="models.train"):
        result = world.train(name)
    assert not result.trained and result.fallback == FALLBACK_BASELINE
    assert "single is_late class [0]" in result.reason and "baseline cust_late_share" in result.reason
    assert any(r.levelno == logging.WARNING and "baseline" in r.getMessage() for r in caplog.records)
    ref = resolve_alias(world.tracking_uri, name, "champion")
    assert ref.version == result.model_version and ref.run_id == result.run_id
    client = MlflowClient(tracking_uri=world.tracking_uri, registry_uri=world.tracking_uri)
    tags = client.get_model_version(name, ref.version).tags
    assert tags["relance.kind"] == "baseline" and tags["relance.fallback_reason"] == result.reason
    assert client.get_run(ref.run_id).data.tags["relance.kind"] == "baseline"

    # scoring goes on with it: the customer's as-of late share, the training base rate (0) without history
    scoring = load_scoring_frame(world.con, RUN_AS_OF)
    preds = score(scoring, tracking_uri=world.tracking_uri, model_name=name)
    assert len(preds) == len(scoring) == 60 and (preds["model_version"] == ref.version).all()
    expected = pd.to_numeric(scoring["cust_late_share"]).astype("float64").fillna(0.0).to_numpy()
    np.testing.assert_allclose(preds[PREDICTION].to_numpy(), expected, rtol=0, atol=1e-12)
    with mlflow_uris(world.tracking_uri):
        served = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert type(served.unwrap_python_model()).__module__ != "models.pyfunc"  # logged as code, like a booster
    p = served.predict(scoring[list(FEATURE_COLUMNS)])[PREDICTION].to_numpy()
    np.testing.assert_allclose(p, expected, rtol=0, atol=1e-12)

    # the next untrainable day keeps that baseline champion and registers nothing more
    again = world.train(name)
    assert again.fallback == FALLBACK_KEPT_CHAMPION and again.model_version == ref.version
    assert world.versions(name) == 1


def test_too_little_history_without_a_champion_serves_a_baseline(world: World) -> None:
    name = "short_history"
    write_tables(world.con, world.feats, world.signal)
    frame = load_training_frame(world.con, SHORT_HISTORY_AS_OF, horizon_days=HORIZON)
    assert frame["as_of_date"].nunique() == 1 and frame[TARGET].nunique() == 2  # two classes, one snapshot
    with pytest.raises(SplitError) as raised:  # still a SplitError for callers that split by hand
        time_split(frame, horizon_days=HORIZON)
    assert isinstance(raised.value, UntrainableData)
    result = world.train(name, as_of=SHORT_HISTORY_AS_OF)
    assert not result.trained and result.fallback == FALLBACK_BASELINE and result.baseline_metrics == {}
    assert "at least 2 as-of snapshots" in result.reason
    assert resolve_alias(world.tracking_uri, name, "champion").version == result.model_version
    scoring = load_scoring_frame(world.con, RUN_AS_OF)
    preds = score(scoring, tracking_uri=world.tracking_uri, model_name=name)
    base_rate = float(frame[TARGET].mean())
    expected = pd.to_numeric(scoring["cust_late_share"]).astype("float64").fillna(base_rate).to_numpy()
    np.testing.assert_allclose(preds[PREDICTION].to_numpy(), expected, rtol=0, atol=1e-12)


def test_bad_arguments_are_still_bugs() -> None:
    frame = pd.DataFrame({"as_of_date": pd.to_datetime(["2026-01-05", "2026-02-05"]), TARGET: [0, 1]})
    with pytest.raises(SplitError) as raised:
        time_split(frame, test_fraction=1.5)
    assert not isinstance(raised.value, UntrainableData)


def test_too_few_rows_of_a_class_is_untrainable_and_the_artifact_says_so(world: World) -> None:
    write_tables(world.con, world.feats, world.signal)
    split = time_split(load_training_frame(world.con, RUN_AS_OF, horizon_days=HORIZON), horizon_days=HORIZON)
    check_trainable(split)  # the real labels are trainable
    late = split.train.index[split.train[TARGET] == 1]
    train = split.train.copy()
    train.loc[late[MIN_TRAIN_CLASS_ROWS - 1 :], TARGET] = 0  # one late row short of the minimum
    few = replace(split, train=train)
    with pytest.raises(UntrainableData, match=f"need at least {MIN_TRAIN_CLASS_ROWS} of each"):
        check_trainable(few)
    with pytest.raises(UntrainableData, match=f"need at least {MIN_TRAIN_ROWS}"):
        check_trainable(replace(split, train=split.train.head(MIN_TRAIN_ROWS - 1)))

    result = world.train("kept_champion")  # trained earlier in this module; the real labels again
    kept = replace(result, trained=False, fallback=FALLBACK_KEPT_CHAMPION, reason="not trained: x; champion v1 kept")
    rows = comparison_rows(kept)
    assert rows[0] == {"model": f"champion v{kept.model_version} (kept)", "note": kept.reason}
    assert "Nothing trained" in describe(kept) and kept.reason in describe(kept)
    assert result.trained and comparison_rows(result)[0]["model"] == "candidate"
