"""Promotion by the gate and `relance model rollback` against a real MLflow registry (SQLite) in a temporary data dir.

Four versions of the model, gated in turn on constructed predictions for the same test rows: v1 (no champion yet),
v2 and v3 each better than the champion beyond noise (promoted), v4 worse (not promoted). Rolling back walks the
chain of previous champions v3 -> v2 -> v1 and refuses at its start; --to restores only a former champion; a
deleted version is refused; the CLI does the same as the library, as a user runs it (a subprocess of the installed
`relance` with RELANCE_DATA_DIR set).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from models.registry import CHAMPION, RollbackRefused, list_versions, promote_if_better, rollback

pytestmark = pytest.mark.integration

MODEL = "payment_delay"  # Settings.model_name's default: the CLI finds it without configuration
RELANCE = Path(sys.executable).parent / "relance"


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class World:
    """Test rows of 300 customers: labels from a true score; a model is that score seen through noise."""

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.groups = np.repeat([f"C{c:03d}" for c in range(300)], 10)
        self.logit = rng.normal(0, 1.2, 300).repeat(10) + rng.normal(0, 1.0, 3000) - 0.5
        self.y = (rng.random(3000) < sigmoid(self.logit)).astype(int)

    def model(self, noise: float, seed: int) -> np.ndarray:
        return sigmoid(self.logit + np.random.default_rng(seed).normal(0, noise, len(self.y)))


def register(client: MlflowClient, experiment_id: str, tmp: Path, test_auc: float) -> str:
    run = client.create_run(experiment_id)
    client.log_metric(run.info.run_id, "test_auc", test_auc)
    client.set_tag(run.info.run_id, "relance.target_name", "unpaid_30d_after_due")
    client.set_terminated(run.info.run_id)
    return str(client.create_model_version(MODEL, source=str(tmp / "artifacts"), run_id=run.info.run_id).version)


@pytest.fixture(scope="module")
def gated_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir whose MLflow store holds v1..v4 of MODEL after four gate decisions; champion v3. Built once."""
    root = tmp_path_factory.mktemp("gated")
    data = root / "data"
    (data / "mlflow").mkdir(parents=True)
    uri = f"sqlite:///{data / 'mlflow' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment_id = client.create_experiment("payment_delay", artifact_location=(root / "runs").as_uri())
    client.create_registered_model(MODEL)
    w = World()
    baseline = w.model(4.0, 1)
    champion: np.ndarray | None = None
    for noise, seed in ((1.5, 2), (0.8, 3), (0.3, 4), (1.2, 5)):  # v1, v2, v3 better each time; v4 worse
        p = w.model(noise, seed)
        version = register(client, experiment_id, root, test_auc=0.5 + 0.1 / noise)
        decision = promote_if_better(
            client,
            MODEL,
            version,
            y=w.y,
            p_candidate=p,
            p_best_baseline=baseline,
            p_champion=champion,
            groups=w.groups,
            min_gain=0.02,
            n_boot=300,
            seed=0,
        )
        assert decision.promoted == (version != "4"), decision.reason
        if decision.promoted:
            champion = p
    assert client.get_model_version_by_alias(MODEL, CHAMPION).version == 3
    return data


@pytest.fixture
def registry(gated_registry: Path, tmp_path: Path) -> tuple[str, Path]:
    """A fresh copy of the gated registry's data dir for each test: (tracking URI, data dir)."""
    data = tmp_path / "data"
    shutil.copytree(gated_registry, data)
    return f"sqlite:///{data / 'mlflow' / 'mlflow.db'}", data


def champion_of(uri: str) -> str:
    return str(MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version_by_alias(MODEL, CHAMPION).version)


def test_promotion_records_the_chain_of_previous_champions(registry) -> None:
    uri, _ = registry
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    previous = {v: client.get_model_version(MODEL, v).tags["promotion.previous_champion_version"] for v in "1234"}
    assert previous == {"1": "", "2": "1", "3": "2", "4": "3"}
    v4 = client.get_model_version(MODEL, "4").tags
    assert v4["promotion.promoted"] == "false" and "worse than the champion" in v4["promotion.reason"]


def test_rollback_walks_the_chain_back_and_refuses_at_its_start(registry) -> None:
    uri, _ = registry
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    first = rollback(uri, MODEL, reason="v3 flags every new customer", user="alice")
    assert (first.from_version, first.to_version, first.user) == ("3", "2", "alice")
    assert champion_of(uri) == "2"
    for version, role in (("3", "rolled back"), ("2", "restored")):
        tags = client.get_model_version(MODEL, version).tags
        assert tags["rollback.role"] == role
        assert (tags["rollback.from_version"], tags["rollback.to_version"]) == ("3", "2")
        assert tags["rollback.reason"] == "v3 flags every new customer" and tags["rollback.user"] == "alice"
        assert tags["rollback.at"] == first.at and first.at.endswith("+00:00")

    second = rollback(uri, MODEL, user="bob")
    assert (second.from_version, second.to_version, second.reason) == ("2", "1", "(no reason given)")
    assert champion_of(uri) == "1"
    with pytest.raises(RollbackRefused, match="no previous champion to roll back to"):
        rollback(uri, MODEL)
    assert champion_of(uri) == "1"

    with pytest.raises(RollbackRefused, match="never held @champion"):  # v4 failed the gate
        rollback(uri, MODEL, to_version=4)
    with pytest.raises(RollbackRefused, match="no longer exists"):
        rollback(uri, MODEL, to_version=99)
    with pytest.raises(RollbackRefused, match="already holds"):
        rollback(uri, MODEL, to_version="1")
    restored = rollback(uri, MODEL, to_version=3, reason="fixed upstream", user="alice")  # a former champion
    assert (restored.from_version, restored.to_version) == ("1", "3") and champion_of(uri) == "3"


def test_rollback_refuses_a_deleted_previous_champion_and_an_empty_registry(registry) -> None:
    uri, _ = registry
    MlflowClient(tracking_uri=uri, registry_uri=uri).delete_model_version(MODEL, "2")
    with pytest.raises(RollbackRefused, match=r"previous champion of v3, v2 .* no longer exists"):
        rollback(uri, MODEL)
    assert champion_of(uri) == "3"
    with pytest.raises(RollbackRefused, match="no registered model 'other'"):
        rollback(uri, "other")
    MlflowClient(tracking_uri=uri, registry_uri=uri).create_registered_model("other")
    with pytest.raises(RollbackRefused, match="no version of 'other' holds @champion"):
        rollback(uri, "other")


def test_list_versions_says_what_each_version_is(registry) -> None:
    uri, _ = registry
    rollback(uri, MODEL, reason="drift", user="alice")
    versions = {v.version: v for v in list_versions(uri, MODEL)}
    assert list(versions) == ["4", "3", "2", "1"]
    assert versions["2"].aliases == ("champion",) and versions["3"].aliases == ()
    assert versions["1"].test_auc == pytest.approx(0.5 + 0.1 / 1.5)
    assert versions["1"].target == "unpaid_30d_after_due" and versions["1"].kind == "-"
    assert versions["4"].promoted is False and "worse than the champion" in versions["4"].reason
    assert versions["4"].decision == "not promoted: worse than the champion beyond noise, champion v3 kept"
    assert "95% interval" in versions["4"].reason and "95%" not in versions["4"].decision
    assert versions["3"].rollback.startswith("rolled back (v3 -> v2) by alice") and "drift" in versions["3"].rollback
    assert versions["2"].rollback.startswith("restored (v3 -> v2)") and versions["1"].rollback is None
    assert list_versions(uri, "no_such_model") == []


def run_cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RELANCE_", "MLFLOW_", "DBT_"))}
    env |= {"RELANCE_DATA_DIR": str(data), "USER": "carol", "COLUMNS": "250", "MLFLOW_DISABLE_TELEMETRY": "true"}
    return subprocess.run([str(RELANCE), *args], env=env, capture_output=True, text=True, timeout=300, check=False)


def test_cli_rollback_and_list(registry) -> None:
    uri, data = registry
    done = run_cli(data, "model", "rollback", "--reason", "late payers missed")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "v3 -> v2" in done.stdout and "carol" in done.stdout
    assert champion_of(uri) == "2"
    tags = MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version(MODEL, "2").tags
    assert tags["rollback.user"] == "carol" and tags["rollback.reason"] == "late payers missed"

    refused = run_cli(data, "model", "rollback", "--to", "4")
    assert refused.returncode == 2 and "never held @champion" in refused.stdout
    assert champion_of(uri) == "2"

    listed = run_cli(data, "model", "list")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    lines = {line.split("│")[1].strip(): line for line in listed.stdout.splitlines() if line.count("│") > 3}
    assert "@champion" in lines["2"] and "@champion" not in lines["3"]
    assert "unpaid_30d_after_due" in lines["1"] and "worse than the champion" in lines["4"]
    assert "why v2 is the champion: promoted: better than the champion beyond noise" in listed.stdout
