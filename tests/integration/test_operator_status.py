"""`relance status` and `relance backfill` as an operator runs them, in their own process, on a real data directory.

The data directory: the session's demo export loaded into a real DuckDB warehouse (raw tables and load batches,
not validated yet: they block the next daily run), a send ledger holding a call task nobody has answered, a risk
alert, an MLflow registry whose ``@champion`` is version 1, and a Prefect database (under the data directory, as
every run on embedded defaults keeps it) in which a daily run completed and a retraining failed. The status reads
all of it with no server running and says, in JSON, what needs a person; its exit code is 1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

from relance import ops
from relance.send_ledger import SendLedger
from relance.warehouse import connection
from tests.conftest import copy_warehouse

pytestmark = pytest.mark.integration

#: The operator commands as `relance` registers them (relance.cli), in a process of their own.
COMMANDS = """
import sys, typer
from relance import operator_cli
app = typer.Typer()
app.command("status")(operator_cli.status)
app.command("backfill")(operator_cli.backfill)
app()
"""

#: Two flow runs recorded in the Prefect database of PREFECT_HOME (an ephemeral API, as a run by hand uses).
RUNS = """
from prefect import flow

@flow(name="daily-collections")
def daily():
    return 1

@flow(name="retrain-model")
def retrain():
    raise RuntimeError("no labelled rows before 2026-11-29")

daily()
try:
    retrain()
except RuntimeError:
    pass
"""


def _env(data: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RELANCE_", "MLFLOW_", "DBT_"))}
    return base | {"RELANCE_DATA_DIR": str(data), "COLUMNS": "200"} | extra


def _operator(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", COMMANDS, *args], env=_env(data), capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def data_dir(demo_raw_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlflow.tracking import MlflowClient

    data = tmp_path_factory.mktemp("status") / "data"
    copy_warehouse(demo_raw_warehouse, data)
    now = datetime.now(UTC).replace(tzinfo=None)
    with connection(data / "warehouse.duckdb") as con:
        alert = {c: None for c in ops.ALERT_COLUMNS} | {
            "alert_key": "a1", "alert_type": "insolvency_notice", "customer_id": "C1", "title": "Redressement",
            "detail": "jugement", "as_of_date": date(2026, 10, 31), "created_at": now,
        }  # fmt: skip
        assert ops.record_alerts(con, pd.DataFrame([alert])) == 1
    with SendLedger(data / "ledger" / "sends.sqlite") as ledger:
        ledger.claim("call-task-1", "call", customer_id="C9", step="call", at=now)
        ledger.sent("call-task-1", provider_message_id=None, outbox_path="calls/x.csv", attempts=1, at=now)
    (data / "mlflow").mkdir(exist_ok=True)
    uri = f"sqlite:///{data / 'mlflow' / 'mlflow.db'}"
    # both URIs: a registry URI another test of the session set globally must not be the one written to
    registry = MlflowClient(tracking_uri=uri, registry_uri=uri)
    registry.create_registered_model("payment_delay")
    registry.create_model_version("payment_delay", str(data / "mlflow"), tags={"relance.kind": "lightgbm"})
    registry.set_registered_model_alias("payment_delay", "champion", "1")
    subprocess.run(
        [sys.executable, "-c", RUNS],
        env=_env(data, PREFECT_HOME=str(data / "prefect"), PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180"),
        check=True,
        capture_output=True,
        timeout=600,
    )
    return data


def test_status_reads_runs_freshness_model_and_open_work(data_dir: Path) -> None:
    done = _operator(data_dir, "status", "--json")
    assert done.returncode == 1, done.stdout + done.stderr  # something needs a person
    status = json.loads(done.stdout)

    deployments = {d["name"]: d for d in status["deployments"]}
    assert set(deployments) == {"daily", "weekly-finance-report", "weekly-retraining", "hourly-risk-watch"}
    assert deployments["daily"]["schedule"] == "0 6 * * 1-5 (Europe/Paris)"
    assert deployments["daily"]["last_run"]["state_type"] == "COMPLETED"
    assert deployments["daily"]["last_run"]["deployment"] is None  # by hand
    assert deployments["weekly-retraining"]["last_run"]["state_type"] == "FAILED"
    assert deployments["hourly-risk-watch"]["last_run"] is None
    assert datetime.fromisoformat(deployments["hourly-risk-watch"]["next_at"]).minute == 0
    assert [r["flow"] for r in status["runs"]] == ["retrain-model", "daily-collections"]
    failed = status["runs"][0]
    assert failed["link"] == f"http://127.0.0.1:4200/runs/flow-run/{failed['flow_run_id']}"

    warehouse = status["warehouse"]
    (demo,) = warehouse["sources"]
    assert demo["source"] == "demo" and demo["fresh"] is True and "invoices" in demo["entities"]
    assert len(warehouse["blocking_batches"]) == len(demo["entities"])  # loaded, never validated
    assert warehouse["alerts"]["recent"] == 1 and warehouse["alerts"]["by_type"] == {"insolvency_notice": 1}
    assert warehouse["calls"]["pending"] == 1 and warehouse["calls"]["tasks"][0]["reminder_key"] == "call-task-1"
    assert warehouse["claims"]["to_declare"] == 0  # no serving build yet: nothing to declare, no error
    model = status["model"]
    assert (model["version"], model["kind"]) == ("1", "lightgbm") and model["age_days"] < 1

    problems = status["problems"]
    assert any(p.startswith("the last weekly-retraining run failed") for p in problems)
    assert any("blocks daily runs" in p for p in problems)

    shown = _operator(data_dir, "status")  # the same, for a person
    assert shown.returncode == 1
    for text in ("weekly-retraining", "Failed", "demo", "1 call task(s)", "payment_delay v1", "needs attention"):
        assert text in shown.stdout, text


def test_backfill_refuses_what_it_cannot_run(data_dir: Path, tmp_path: Path) -> None:
    reversed_range = _operator(data_dir, "backfill", "--from", "2026-10-03", "--to", "2026-10-01")
    assert reversed_range.returncode == 2 and "before --from" in reversed_range.stdout + reversed_range.stderr
    empty = tmp_path / "empty"
    no_sources = _operator(empty, "backfill", "--from", "2026-10-01", "--to", "2026-10-02")
    assert no_sources.returncode == 2 and "nothing to import" in no_sources.stdout
    assert not (empty / "backfill.json").exists()
