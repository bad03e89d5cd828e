"""A scheduled run that fails emails the 'failures' recipient groups once, through relance's email channel.

Under the session's Prefect test API: a flow with the hook is registered as a deployment, a run of that deployment
is created and executed in process (what a served or worker run does in its subprocess), and it raises. The notice
lands in the finance outbox (no SendGrid key), once per group, in each group's language, with the run's link, the
state message and no secret; a second call of the hook for the same run sends nothing, and a failed run started by
hand (no deployment) sends nothing either.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.flow_engine import run_flow

from flows._notify_failure import notify_failure
from relance.send_ledger import SendLedger
from relance.settings import Settings

pytestmark = pytest.mark.integration

SECRET = "marked-erp-password-4c1f0b9e7d2a"


@flow(name="h4-failing-on-schedule", on_failure=[notify_failure], on_crashed=[notify_failure])
def failing_on_schedule() -> None:
    raise RuntimeError(f"could not reach the ERP with password {SECRET}")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The hook builds its Settings from the environment, as a scheduled run's process does."""
    data = tmp_path / "data"
    monkeypatch.setenv("RELANCE_DATA_DIR", str(data))
    monkeypatch.setenv("ERP_PASSWORD", SECRET)  # a credential-named variable: the notice must not show it
    monkeypatch.setenv("RELANCE_PREFECT_UI_URL", "http://prefect.example:4200")
    monkeypatch.setenv(
        "RELANCE_REPORT_RECIPIENTS",
        json.dumps(
            {
                "finance": {"emails": ["daf@example.fr"], "language": "fr", "receives": ["weekly", "flash"]},
                "data": {"emails": ["data@example.com"], "language": "en", "receives": ["failures"]},
                "dsi": {
                    "emails": ["dsi@example.fr", "astreinte@example.fr"],
                    "language": "fr",
                    "receives": ["failures"],
                },
            }
        ),
    )
    return data


def test_a_failed_scheduled_run_emails_each_failures_group_once(data_dir: Path, prefect_api: None) -> None:
    deployment_id = failing_on_schedule.to_deployment(name="h4-test").apply()
    scheduled = run_deployment(deployment_id, timeout=0)  # created, not run: nothing serves it
    assert scheduled.deployment_id == deployment_id
    state = run_flow(failing_on_schedule, flow_run=scheduled, return_type="state")
    assert state.is_failed()

    outbox = Settings().finance_outbox / "email"
    files = sorted(outbox.glob("*.json"))
    run_id = str(scheduled.id)
    assert [f.name for f in files] == [f"flow-failure-{run_id}-data.json", f"flow-failure-{run_id}-dsi.json"]
    english, french = (json.loads(f.read_text()) for f in files)
    assert english["subject"] == "relance: scheduled run failed: h4-failing-on-schedule"
    assert french["subject"].startswith("relance : échec de l'exécution planifiée")
    assert [t["email"] for t in french["personalizations"][0]["to"]] == ["dsi@example.fr", "astreinte@example.fr"]
    text = english["content"][0]["value"]
    assert f"http://prefect.example:4200/runs/flow-run/{run_id}" in text
    assert "Deployment: h4-test" in text and "could not reach the ERP with password" in text
    for f in files:
        assert SECRET not in f.read_text()

    # the hook again for the same run (a retry of the hook, a crash after the failure): nothing more goes out
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(scheduled.id)
    assert notify_failure(failing_on_schedule, flow_run, flow_run.state) == []
    assert len(list(outbox.glob("*.json"))) == 2
    with SendLedger(Settings().notification_ledger) as ledger:
        rows = [r for r in ledger.records() if r.reminder_key.startswith("flow-failure-")]
    assert sorted((r.reminder_key, r.status, r.flow_run_id) for r in rows) == [
        (f"flow-failure-{run_id}-data", "sent", run_id),
        (f"flow-failure-{run_id}-dsi", "sent", run_id),
    ]

    # a run started by hand shows its failure to whoever started it: no email
    with pytest.raises(RuntimeError):
        failing_on_schedule()
    assert len(list(outbox.glob("*.json"))) == 2
