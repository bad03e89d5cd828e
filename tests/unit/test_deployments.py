"""Definitions load: every deployment of infra/prefect.yaml is the flow it names, runs on the schedule it should, in
its time zone, with parameters its flow accepts; flows._deployments builds the same deployments for `relance serve`.
"""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from relance.operations import DeploymentFileError, deployments_file, load_deployments

ROOT = Path(__file__).resolve().parents[2]
PREFECT_YAML = ROOT / "infra" / "prefect.yaml"
SPECS = load_deployments(PREFECT_YAML)

#: What the issue asks for, written out once more on purpose: a change to a schedule is a change to this test too.
EXPECTED = {
    "daily": ("flows/daily_collections.py:daily_collections", "0 6 * * 1-5"),
    "weekly-finance-report": ("flows/publish_weekly_report.py:publish_weekly_report", "0 7 * * 1"),
    "weekly-retraining": ("flows/retrain_model.py:retrain_model", "0 3 * * 0"),
    "hourly-risk-watch": ("flows/watch_company_risk.py:watch_company_risk", "0 * * * *"),
}


def test_the_file_lists_every_scheduled_flow_in_paris_time() -> None:
    assert {s.name: (s.entrypoint, s.schedules[0].cron) for s in SPECS} == EXPECTED
    for spec in SPECS:
        assert [s.timezone for s in spec.schedules] == ["Europe/Paris"], spec.name
        assert spec.work_pool == "relance", spec.name  # what `prefect deploy --all` targets
        assert spec.concurrency_limit == 1, spec.name  # a slow run delays the next one, never overlaps it


def test_the_checkout_file_is_the_one_relance_reads() -> None:
    assert deployments_file() == PREFECT_YAML


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_each_entrypoint_is_a_flow_whose_schedule_parses_and_whose_parameters_fit(
    spec, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.flows import Flow, load_flow_from_entrypoint
    from prefect.server.schemas.schedules import CronSchedule
    from prefect.utilities.callables import parameter_schema
    from prefect.utilities.schema_tools import validate

    from flows._deployments import flow_name

    monkeypatch.chdir(ROOT)  # `prefect deploy --all` runs from the repository root, with file entry points
    flow = load_flow_from_entrypoint(spec.entrypoint, use_placeholder_flow=False)
    assert isinstance(flow, Flow)
    assert flow_name(spec) == flow.name  # what `relance status` reads runs by, without importing the flow
    for schedule in spec.schedules:
        parsed = CronSchedule(cron=schedule.cron, timezone=schedule.timezone)
        assert (parsed.cron, parsed.timezone) == (schedule.cron, schedule.timezone)
        ZoneInfo(schedule.timezone)
    # the parameters a deployment run sends: no unknown name, no required one left out, each of the right type
    inspect.signature(flow.fn).bind(**spec.parameters)
    validate(spec.parameters, parameter_schema(flow).model_dump_for_openapi(), raise_on_error=True)
    flow.validate_parameters(spec.parameters)
    # and a scheduled run needs nothing else: every parameter without a default is given
    required = [p.name for p in inspect.signature(flow.fn).parameters.values() if p.default is inspect.Parameter.empty]
    assert not set(required) - set(spec.parameters), f"{spec.name} leaves required parameters out: {required}"


def test_parameter_validation_can_fail() -> None:
    from prefect.utilities.callables import parameter_schema
    from prefect.utilities.schema_tools import ValidationError, validate

    from flows.retrain_model import retrain_model

    schema = parameter_schema(retrain_model).model_dump_for_openapi()
    validate({"full_refresh_features": True, "as_of_date": "2026-11-30"}, schema, raise_on_error=True)
    with pytest.raises(ValidationError):
        validate({"full_refresh_features": "every other week"}, schema, raise_on_error=True)
    with pytest.raises(TypeError):
        inspect.signature(retrain_model.fn).bind(rebuild=True)


def test_flows_build_a_runner_deployment_for_each() -> None:
    from prefect.deployments.runner import RunnerDeployment

    from flows._deployments import runner_deployments

    built = runner_deployments(SPECS, paused=True)
    assert all(isinstance(d, RunnerDeployment) for d in built)
    by_name = {d.name: d for d in built}
    assert set(by_name) == set(EXPECTED)
    for spec in SPECS:
        deployment = by_name[spec.name]
        # by module path: the same deployment runs from a checkout or from the installed wheel, from any directory
        assert deployment.entrypoint == f"{spec.module}.{spec.function}"
        assert [(s.schedule.cron, s.schedule.timezone) for s in deployment.schedules] == [
            (spec.schedules[0].cron, "Europe/Paris")
        ]
        assert deployment.parameters == spec.parameters
        assert deployment.paused is True
        assert deployment.concurrency_limit == 1
        assert deployment.work_pool_name is None  # served: no work pool
    assert by_name["weekly-retraining"].parameters == {"full_refresh_features": True}


def test_the_daily_deployment_fires_on_weekdays_at_six_in_paris_summer_and_winter() -> None:
    import asyncio

    from prefect.server.schemas.schedules import CronSchedule

    daily = next(s for s in SPECS if s.name == "daily").schedules[0]
    schedule = CronSchedule(cron=daily.cron, timezone=daily.timezone)
    for start in (datetime(2026, 7, 3, 12, tzinfo=UTC), datetime(2026, 12, 4, 12, tzinfo=UTC)):  # Fridays
        fires = asyncio.run(schedule.get_dates(n=3, start=start))
        local = [f.astimezone(ZoneInfo("Europe/Paris")) for f in fires]
        assert [(d.weekday(), d.hour, d.minute) for d in local] == [(0, 6, 0), (1, 6, 0), (2, 6, 0)]
    # 06:00 in Paris is 04:00 UTC in summer, 05:00 UTC in winter
    summer = asyncio.run(schedule.get_dates(n=1, start=datetime(2026, 7, 6, tzinfo=UTC)))[0]
    winter = asyncio.run(schedule.get_dates(n=1, start=datetime(2026, 12, 7, tzinfo=UTC)))[0]
    assert (summer.astimezone(UTC).hour, winter.astimezone(UTC).hour) == (4, 5)


# --- the loader refuses what a deployment cannot be ---------------------------------------------------------------


def _write(tmp_path: Path, **changes: object) -> Path:
    document = yaml.safe_load(PREFECT_YAML.read_text())
    first = document["deployments"][0]
    for key, value in changes.items():
        if value is None:
            first.pop(key, None)
        else:
            first[key] = value
    path = tmp_path / "prefect.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"schedules": [{"cron": "0 6 * * 1-5", "timezone": "Europe/Pariss"}]}, "not an IANA time zone"),
        ({"schedules": [{"cron": "0 6 * * 1-5"}]}, "names its time zone"),
        ({"schedules": [{"cron": "0 6 * *", "timezone": "Europe/Paris"}]}, "5 fields"),
        ({"schedules": None}, "no schedule"),
        ({"entrypoint": "daily_collections.py:daily_collections"}, "flows/<file>.py:<function>"),
        ({"name": "Daily Run"}, "lower-case"),
        ({"parameters": ["as_of_date"]}, "must be a mapping"),
        ({"name": "hourly-risk-watch"}, "used twice"),
    ],
)
def test_the_loader_says_what_is_wrong(tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(DeploymentFileError, match=message):
        load_deployments(_write(tmp_path, **changes))


def test_the_file_keeps_what_prefect_deploy_needs() -> None:
    document = yaml.safe_load(PREFECT_YAML.read_text())
    assert document["prefect-version"].startswith("3.")
    (pull,) = document["pull"]
    assert pull["prefect.deployments.steps.set_working_directory"]["directory"] == "{{ $RELANCE_PROJECT_ROOT }}"
    for deployment in document["deployments"]:
        assert deployment["work_pool"]["name"] == "relance"
