"""RELANCE_DBT_NODE_TASKS: with it on, every dbt node of a build is a Prefect task run of the flow that builds it.

The real prefect-dbt runner (``flows.build_features._invoke``, what ``build-features`` passes to ``relance.dbt``)
under the session's Prefect test API (``prefect_api``), on a real DuckDB warehouse, for a small selection of
models: each selected model and its data tests come back from the API as completed task runs of the building
flow. (The end-to-end rerun used to run the whole project this way; the daily default is plain dbt, see
bench/README.md.)
"""

from __future__ import annotations

import asyncio
import time
from datetime import date
from pathlib import Path

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect_dbt import PrefectDbtRunner

from flows._common import current_flow_run_id, drain_prefect_services
from flows.build_features import _invoke
from relance import dbt
from relance.settings import Settings
from relance.warehouse import connection, ensure_schemas

pytestmark = pytest.mark.integration

MODELS = ("stg_customers", "stg_company_events")
UNFINISHED = frozenset({"SCHEDULED", "PENDING", "RUNNING"})


def test_every_selected_dbt_node_is_a_prefect_task_of_the_building_flow(tmp_path: Path, prefect_api: None) -> None:
    assert _invoke(Settings(data_dir=tmp_path / "off")) is None  # off by default: plain dbt in process
    settings = Settings(data_dir=tmp_path / "data", dbt_node_tasks=True)
    settings.ensure_dirs()
    with connection(settings.warehouse) as con:
        ensure_schemas(con)
    invoke = _invoke(settings)
    assert isinstance(getattr(invoke, "__self__", None), PrefectDbtRunner)

    @flow(name="dbt-node-tasks-check")
    def build() -> tuple[str | None, bool]:
        args = dbt.dbt_args(
            settings,
            ["build"],
            as_of_date=date(2026, 10, 31),
            unit_tests=False,
            extra=["--select", *MODELS, "--indirect-selection", "cautious"],
        )
        run = dbt.run_dbt(settings, args, invoke=_invoke(settings))
        return current_flow_run_id(), run.success

    flow_run_id, success = build()  # under the session's test API (prefect_api)
    # prefect-dbt finishes the node tasks in its own threads, which may report after the flow returned: deliver
    # Prefect's queued services, then read the runs back until every one is final (bounded: a state never
    # reported fails the test)
    assert drain_prefect_services(120), "Prefect's queued task-run states were not delivered in 120 s"
    tasks = asyncio.run(_final_task_runs(flow_run_id, within=120))
    assert success
    names = {t.name: t for t in tasks}
    assert {f"model {m}" for m in MODELS} <= set(names), sorted(names)
    assert any(n.startswith("test ") for n in names), "data tests are tasks too"
    assert all(t.state_type.value == "COMPLETED" for t in tasks), sorted((t.name, t.state_type.value) for t in tasks)


async def _final_task_runs(flow_run_id: str | None, within: float) -> list:
    """The flow run's task runs once none is still pending or running, or as they are after ``within`` seconds."""
    deadline = time.monotonic() + within
    async with get_client() as client:
        while True:
            runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            if all(r.state_type is not None and r.state_type.value not in UNFINISHED for r in runs):
                return runs
            if time.monotonic() > deadline:
                return runs
            await asyncio.sleep(0.2)
