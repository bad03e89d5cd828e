"""`relance serve` against a real Prefect server: the four deployments are registered with their schedules, the
server's scheduler turns the schedules into runs, a run of a served deployment executes in the serving process's
subprocess and completes, and stopping the process pauses the schedules (nothing piles up while nobody serves).

A real `prefect server start` (the test harness's ephemeral API runs no scheduler), on an empty data directory:
the hourly risk watch has nothing to load and no serving model to read, and says so without failing.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

pytestmark = pytest.mark.integration

SERVE = """
import typer
from relance import operator_cli
app = typer.Typer()
app.command("serve")(operator_cli.serve)
app.command("status")(operator_cli.status)
app()
"""
DEPLOYMENTS = {
    "daily-collections/daily",
    "publish-weekly-report/weekly-finance-report",
    "retrain-model/weekly-retraining",
    "watch-company-risk/hourly-risk-watch",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _until(what: str, check: Callable[[], Any], timeout: float = 240.0) -> Any:
    """Poll ``check`` until it returns something truthy (a condition, not a sleep standing in for one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(1)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def _env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RELANCE_", "MLFLOW_", "DBT_"))}
    return base | {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"} | extra


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("prefect")), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=_env(PREFECT_HOME=str(tmp_path / "prefect-server")),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    api = f"http://127.0.0.1:{port}/api"

    def healthy() -> bool:
        try:
            return httpx.get(f"{api}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return proc.poll() is not None and pytest.fail((tmp_path / "server.log").read_text()[-3000:])

    try:
        _until("the Prefect server answers", healthy)
        yield api
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()


def test_serve_registers_schedules_runs_a_deployment_and_pauses_on_exit(tmp_path: Path, prefect_server: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_API_URL, temporary_settings

    data = tmp_path / "data"
    log = (tmp_path / "serve.log").open("w")
    serve = subprocess.Popen(
        [sys.executable, "-c", SERVE, "serve"],
        env=_env(RELANCE_DATA_DIR=str(data), PREFECT_API_URL=prefect_server, COLUMNS="200"),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        with temporary_settings(updates={PREFECT_API_URL: prefect_server}), get_client(sync_client=True) as client:

            def registered() -> dict[str, Any]:
                assert serve.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
                found = {f"{client.read_flow(d.flow_id).name}/{d.name}": d for d in client.read_deployments()}
                return found if set(found) == DEPLOYMENTS else {}

            deployments = _until("the four deployments are registered", registered)
            daily = deployments["daily-collections/daily"]
            assert not daily.paused
            assert [(s.schedule.cron, s.schedule.timezone) for s in daily.schedules] == [
                ("0 6 * * 1-5", "Europe/Paris")
            ]
            assert daily.entrypoint == "flows.daily_collections.daily_collections"

            def scheduled() -> list[Any]:
                return client.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[daily.id])),
                    flow_run_filter=FlowRunFilter(
                        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
                    ),
                )

            upcoming = _until("the server's scheduler creates the daily deployment's next runs", scheduled)
            for when in (r.expected_start_time.astimezone(ZoneInfo("Europe/Paris")) for r in upcoming):
                assert (when.weekday() < 5, when.hour, when.minute) == (True, 6, 0), when

            watch = deployments["watch-company-risk/hourly-risk-watch"]
            run = client.create_flow_run_from_deployment(watch.id)

            def finished() -> Any:
                state = client.read_flow_run(run.id).state
                return state if state is not None and state.is_final() else None

            state = _until("the served process runs the risk watch", finished)
            assert state.is_completed(), (state, (tmp_path / "serve.log").read_text()[-3000:])

            serve.send_signal(signal.SIGTERM)  # what a service manager sends; Ctrl-C takes the same path
            serve.wait(timeout=120)
            paused = client.read_deployments(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[d.id for d in deployments.values()]))
            )
            assert all(d.paused for d in paused), [(d.name, d.paused) for d in paused]
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()
        log.close()


def test_the_ui_registers_the_deployments_paused_and_leaves_served_ones_alone(prefect_server: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows._deployments import apply_all

    assert set(apply_all(prefect_server)) == DEPLOYMENTS
    with temporary_settings(updates={PREFECT_API_URL: prefect_server}), get_client(sync_client=True) as client:
        deployments = {f"{client.read_flow(d.flow_id).name}/{d.name}": d for d in client.read_deployments()}
        assert set(deployments) == DEPLOYMENTS
        assert all(d.paused for d in deployments.values())  # nobody serves them: no run piles up as Late
        watch = deployments["watch-company-risk/hourly-risk-watch"]
        assert [(s.schedule.cron, s.schedule.timezone) for s in watch.schedules] == [("0 * * * *", "Europe/Paris")]
        client.resume_deployment(watch.id)  # as `relance serve` leaves a deployment it serves
        apply_all(prefect_server)  # `relance ui` started again meanwhile
        assert not client.read_deployment(watch.id).paused
        assert client.read_deployment(deployments["daily-collections/daily"].id).paused


def test_prefect_deploy_all_registers_the_file_for_the_relance_work_pool(prefect_server: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    root = Path(__file__).resolve().parents[2]
    prefect = str(Path(sys.executable).with_name("prefect"))
    env = _env(PREFECT_API_URL=prefect_server, RELANCE_PROJECT_ROOT=str(root))
    for args in (["work-pool", "create", "relance", "--type", "process"],
                 ["--no-prompt", "deploy", "--all", "--prefect-file", "infra/prefect.yaml"]):  # fmt: skip
        done = subprocess.run([prefect, *args], cwd=root, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with temporary_settings(updates={PREFECT_API_URL: prefect_server}), get_client(sync_client=True) as client:
        deployments = {f"{client.read_flow(d.flow_id).name}/{d.name}": d for d in client.read_deployments()}
    assert set(deployments) == DEPLOYMENTS
    for deployment in deployments.values():
        assert deployment.work_pool_name == "relance"
        assert deployment.entrypoint.startswith("flows/") and deployment.entrypoint.count(":") == 1
        assert deployment.pull_steps == [{"prefect.deployments.steps.set_working_directory": {"directory": str(root)}}]
        assert [s.schedule.timezone for s in deployment.schedules] == ["Europe/Paris"]
