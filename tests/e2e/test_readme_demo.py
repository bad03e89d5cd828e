"""The README demo, as a newcomer runs it: the `relance` CLI on an ephemeral Prefect API, in subprocesses.

Smaller than the real demo so the suite stays fast; `make demo` runs the full size. Then `relance ui` must show
the demo's flow runs (Prefect API) and the registered model with its champion alias (MLflow API).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
AS_OF = "2026-10-31"


def _relance(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "relance"
    return subprocess.run([str(exe), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=900)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(url: str, body: dict | None = None) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, json.loads(resp.read() or b"null")


def _get_text(url: str, deadline: float) -> str:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return resp.read().decode("utf-8", "replace")
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _wait_for(url: str, deadline: float) -> None:
    """Poll a health endpoint until the server answers (start-up readiness, not synchronisation by sleep)."""
    _get_text(url, deadline)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, repo_root: Path):
    tmp = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RELANCE_", "MLFLOW_"))}
    env |= {"RELANCE_DATA_DIR": str(tmp / "data"), "RELANCE_PROJECT_ROOT": str(repo_root), "COLUMNS": "200"}
    # a 4-weekly training grid instead of the weekly default keeps the suite short; the grid itself is tested in
    # tests/integration/test_dbt_project.py
    env["RELANCE_SNAPSHOT_INTERVAL_DAYS"] = "28"
    first = _relance(["demo", "--customers", "200", "--invoices", "5000"], env, repo_root)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-5000:]
    emails = sorted((tmp / "data" / "outbox" / "email").glob("*.json"))
    return {"env": env, "data": tmp / "data", "first": first, "emails": emails}


def test_demo_runs_and_says_where_to_look(demo) -> None:
    assert "Demo done" in demo["first"].stdout
    assert demo["emails"], "the demo must send emails into the outbox"
    assert (demo["data"] / "prefect" / "prefect.db").exists(), "runs are kept for `relance ui`"
    assert (demo["data"] / "dbt" / "target" / "index.html").exists(), "dbt docs are generated"
    assert list((demo["data"] / "gx").rglob("index.html")), "GX data docs are built"


def test_rerun_for_the_same_date_sends_nothing_new(demo, repo_root: Path) -> None:
    again = _relance(["run", "daily", "--as-of", AS_OF], demo["env"], repo_root)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-5000:]
    rows = [ln.replace("│", " ").split() for ln in again.stdout.splitlines()]
    assert ["reminders_sent", "0"] in rows
    assert sorted((demo["data"] / "outbox" / "email").glob("*.json")) == demo["emails"]


def test_ui_shows_the_demo_flow_runs_and_the_registered_model(demo, repo_root: Path) -> None:
    ports = {"prefect": _free_port(), "mlflow": _free_port(), "docs": _free_port()}
    exe = Path(sys.executable).parent / "relance"
    proc = subprocess.Popen(
        [
            str(exe),
            "ui",
            "--prefect-port",
            str(ports["prefect"]),
            "--mlflow-port",
            str(ports["mlflow"]),
            "--docs-port",
            str(ports["docs"]),
        ],
        env=demo["env"],
        cwd=repo_root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        prefect = f"http://127.0.0.1:{ports['prefect']}/api"
        mlflow = f"http://127.0.0.1:{ports['mlflow']}"
        _wait_for(f"{prefect}/health", deadline)
        _wait_for(f"{mlflow}/health", deadline)
        _, flows = _http(f"{prefect}/flows/filter", {"flows": {"name": {"any_": ["daily-collections"]}}})
        assert flows, "the daily-collections flow is registered in the UI's database"
        _, runs = _http(f"{prefect}/flow_runs/filter", {"flows": {"id": {"any_": [flows[0]["id"]]}}})
        assert runs and all(r["state_type"] == "COMPLETED" for r in runs)
        _, model = _http(f"{mlflow}/api/2.0/mlflow/registered-models/get?name=payment_delay")
        aliases = {a["alias"] for a in model["registered_model"].get("aliases", [])}
        assert "champion" in aliases
        page = _get_text(f"http://127.0.0.1:{ports['docs']}/index.html", deadline)
        assert "dbt" in page[:5000].lower()
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
