"""Definitions load: every deployment in infra/prefect.yaml imports as a Prefect flow and its schedule parses."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENTS = yaml.safe_load((ROOT / "infra" / "prefect.yaml").read_text())["deployments"]


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_deployment_entrypoint_is_a_flow_and_its_schedules_parse(
    deployment: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.flows import Flow, load_flow_from_entrypoint

    monkeypatch.chdir(ROOT)  # `prefect deploy --all` runs from the repository root
    flow = load_flow_from_entrypoint(deployment["entrypoint"], use_placeholder_flow=False)
    assert isinstance(flow, Flow)
    # the deployment's parameters bind to the flow's signature: none unknown, none required left out
    inspect.signature(flow.fn).bind(**(deployment.get("parameters") or {}))
    schedules = deployment.get("schedules") or []
    assert schedules, f"deployment {deployment['name']} has no schedule"
    for schedule in schedules:
        parsed = CronSchedule(cron=schedule["cron"], timezone=schedule.get("timezone"))
        assert parsed.cron == schedule["cron"]
