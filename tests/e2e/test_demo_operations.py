"""Operations on the README demo: `relance ui` (started by tests/e2e/conftest.py on the demo's data) lists every
deployment of infra/prefect.yaml with its schedule, paused since nothing serves them; `relance status` from the
installed wheel (which carries the schedules as relance/infra/prefect.yaml) reads the demo's runs, freshness,
champion and open work. Reads the shared demo run only."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request

import pytest

from tests.e2e.conftest import DemoRun, Ui

pytestmark = pytest.mark.e2e

SCHEDULES = {
    "daily": "0 6 * * 1-5",
    "weekly-finance-report": "0 7 * * 1",
    "weekly-retraining": "0 3 * * 0",
    "hourly-risk-watch": "0 * * * *",
}


def _deployments(api: str) -> list[dict]:
    request = urllib.request.Request(
        f"{api}/deployments/filter", data=b"{}", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _registered(api: str, timeout: float = 300) -> list[dict]:
    """`relance ui` registers them once its server answers (importing the flows takes a while): wait for them."""
    deadline = time.monotonic() + timeout
    while True:
        found = _deployments(api)
        if {d["name"] for d in found} >= set(SCHEDULES) or time.monotonic() > deadline:
            return found
        time.sleep(2)


def test_the_ui_lists_every_deployment_with_its_schedule_paused(ui: Ui) -> None:
    found = {d["name"]: d for d in _registered(ui.prefect)}
    assert set(found) == set(SCHEDULES), f"deployments in the UI: {sorted(found)}"
    for name, cron in SCHEDULES.items():
        schedules = [(s["schedule"]["cron"], s["schedule"]["timezone"]) for s in found[name]["schedules"]]
        assert schedules == [(cron, "Europe/Paris")], name
        assert found[name]["paused"], f"{name}: nothing serves it, so no run may pile up as Late"


def test_status_from_the_installed_wheel(demo_run: DemoRun, ui: Ui) -> None:
    _registered(ui.prefect)
    done = subprocess.run(
        [str(demo_run.wheel_bin / "relance"), "status", "--json"],
        env=demo_run.env | {"PREFECT_API_URL": ui.prefect},
        cwd=demo_run.rerun_cwd,  # outside the checkout: the schedules come from the installed package
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode in (0, 1), done.stdout[-2000:] + done.stderr[-3000:]
    status = json.loads(done.stdout)
    assert done.returncode == (1 if status["problems"] else 0)
    deployments = {d["name"]: d for d in status["deployments"]}
    assert {n: d["schedule"] for n, d in deployments.items()} == {
        n: f"{c} (Europe/Paris)" for n, c in SCHEDULES.items()
    }
    assert all(d["registered"] and d["paused"] for d in deployments.values())
    assert deployments["daily"]["last_run"]["state_type"] == "COMPLETED"  # the demo's own daily run, or its rerun
    assert status["model"]["version"] is not None
    assert [s["source"] for s in status["warehouse"]["sources"]] == ["demo"]
    assert status["warehouse"]["claims"]["to_declare"] >= 0 and "recent" in status["warehouse"]["alerts"]
