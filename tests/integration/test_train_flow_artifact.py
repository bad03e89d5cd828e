"""When the data cannot train a model, the train flow says so in a Prefect artifact of its own.

The real ``train-model`` flow under Prefect's test harness (a temporary API and database), on a real DuckDB
warehouse whose labels hold a single class (nobody late: the IBM ledger with a 30-day target) and a real MLflow
registry with no champion yet: the best baseline becomes champion, and the ``model-not-trained`` markdown
artifact, read back from the Prefect API, names the reason and what scores instead.
"""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

from flows.train_model import fallback_markdown, train_model
from models.contract import TARGET
from models.train import FALLBACK_BASELINE, FALLBACK_KEPT_CHAMPION, TrainResult
from relance.settings import Settings
from tests.integration.test_models_lifecycle import RUN_AS_OF, SNAPSHOTS, make_features, make_labels, write_tables

pytestmark = pytest.mark.integration


def _result(**kw: object) -> TrainResult:
    base: dict = {
        "run_id": "r",
        "experiment_id": "e",
        "model_name": "payment_delay",
        "model_version": "3",
        "model_uri": "models:/payment_delay/3",
        "metrics": {},
        "baseline_metrics": {},
        "window": {},
        "dataset_hash": "h",
    }
    return TrainResult(**(base | kw))


def test_the_notice_says_what_scores_instead_and_why() -> None:
    as_of = date(2013, 12, 31)
    assert fallback_markdown(_result(reason="beats the champion"), as_of) is None  # trained: no notice
    kept = fallback_markdown(
        _result(trained=False, fallback=FALLBACK_KEPT_CHAMPION, reason="single class [0]; champion v3 kept"), as_of
    )
    assert kept is not None and kept.startswith("## No model was trained on 2013-12-31")
    assert "**Why:** single class [0]; champion v3 kept" in kept and "version 3, was kept" in kept
    baseline = fallback_markdown(
        _result(trained=False, fallback=FALLBACK_BASELINE, model_version="1", reason="too few rows"), as_of
    )
    assert baseline is not None and "best baseline was registered as version 1" in baseline
    assert "`@champion`" in baseline and "too few rows" in baseline


def test_the_train_flow_publishes_the_notice_as_an_artifact(tmp_path: Path, prefect_api: None) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    settings.ensure_dirs()
    rng = np.random.default_rng(5)
    feats = make_features(rng, SNAPSHOTS, 60)
    labels = make_labels(rng, feats, noise_only=False)
    labels[TARGET] = np.where(labels[TARGET] == -1, -1, 0)  # nobody late: a single class
    with duckdb.connect(str(settings.warehouse)) as con:
        write_tables(con, feats, labels)

    # under the session's test API (prefect_api), which other tests' flows share: read this run's artifacts only
    state = train_model(settings, RUN_AS_OF, {"git.sha": "abc"}, return_state=True)
    result = state.result()
    run_id = state.state_details.flow_run_id
    artifacts = asyncio.run(_artifacts("model-not-trained", run_id))
    tables = asyncio.run(_artifacts("model-comparison", run_id))

    assert not result.trained and result.fallback == FALLBACK_BASELINE
    (artifact,) = artifacts
    assert artifact.type == "markdown"
    assert artifact.data == fallback_markdown(result, RUN_AS_OF)
    assert result.reason in artifact.data and f"version {result.model_version}" in artifact.data
    assert len(tables) == 1 and "Nothing trained" in (tables[0].description or "")


async def _artifacts(key: str, flow_run_id) -> list:
    async with get_client() as client:
        return await client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[key]), flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])
            )
        )
