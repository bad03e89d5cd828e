"""The deployments of ``infra/prefect.yaml`` as Prefect objects: served by ``relance serve``, registered (paused)
for the UI by ``relance ui``, and read back for ``relance status``.

``relance.operations.load_deployments`` reads and checks the file (no Prefect); this module turns each entry into
a ``RunnerDeployment`` (``flow.to_deployment``) with its cron schedules in their time zones, its parameters and its
concurrency limit. The flow is loaded by import path (``flows.daily_collections``), so the same deployments work
from a checkout and from an installed wheel, from any directory.

Served vs registered: ``serve_all`` keeps a process that runs the deployments' scheduled runs, and pauses their
schedules when it stops (Prefect's ``pause_on_shutdown``). ``apply_all`` only registers them, paused when new, so
the UI lists every deployment with its schedule without piling up runs nobody picks up ("Late"); a deployment a
``relance serve`` process already registered keeps its state.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import importlib
import importlib.util
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from prefect import Flow, serve
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.types.entrypoint import EntrypointType

from relance.operations import DeploymentSpec, load_deployments


def load_flow(spec: DeploymentSpec) -> Flow:
    """The flow object of a deployment, imported by module path."""
    flow = getattr(importlib.import_module(spec.module), spec.function)
    if not isinstance(flow, Flow):
        raise TypeError(f"{spec.entrypoint} is not a Prefect flow")
    return flow


def flow_name(spec: DeploymentSpec) -> str:
    """The Prefect flow name of a deployment's function, read from its ``@flow(name=...)`` without importing the
    module (``relance status`` reads runs by flow name and should not import dbt and MLflow for that)."""
    found = importlib.util.find_spec(spec.module)
    if found is None or found.origin is None:
        raise ModuleNotFoundError(spec.module)
    with open(found.origin, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), filename=found.origin)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == spec.function:
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Call) and getattr(decorator.func, "id", None) == "flow":
                    for keyword in decorator.keywords:
                        if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                            return str(keyword.value.value)
    return spec.function.replace("_", "-")  # Prefect's default name


def runner_deployment(spec: DeploymentSpec, *, paused: bool | None = None) -> RunnerDeployment:
    """One deployment of the file as a ``RunnerDeployment`` (schedules in their time zones, parameters checked
    against the flow's signature by Prefect's parameter schema)."""
    flow = load_flow(spec)
    return flow.to_deployment(
        name=spec.name,
        schedules=[Cron(s.cron, timezone=s.timezone) for s in spec.schedules],
        parameters=dict(spec.parameters),
        description=spec.description or None,
        tags=list(spec.tags),
        concurrency_limit=spec.concurrency_limit,
        paused=paused,
        entrypoint_type=EntrypointType.MODULE_PATH,
    )


def runner_deployments(
    specs: Sequence[DeploymentSpec] | None = None, *, paused: bool | None = None
) -> list[RunnerDeployment]:
    return [runner_deployment(s, paused=paused) for s in (specs if specs is not None else load_deployments())]


@contextlib.contextmanager
def _api(api_url: str | None) -> Iterator[None]:
    if api_url is None:
        yield
        return
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        yield


def wait_for_api(api_url: str, timeout: float = 120.0) -> None:
    """Wait until the Prefect API at ``api_url`` answers its health check, or raise ``TimeoutError``."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{api_url.rstrip('/')}/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.5)
    raise TimeoutError(f"the Prefect API at {api_url} did not answer within {timeout:.0f} s ({last})")


def serve_all(
    specs: Sequence[DeploymentSpec] | None = None,
    *,
    api_url: str | None = None,
    limit: int | None = None,
    deployments: Sequence[RunnerDeployment] | None = None,
) -> None:
    """Serve every deployment (or the ``deployments`` built already) until Ctrl-C or SIGTERM: the process polls the
    API for scheduled runs and runs each in a subprocess. Needs a Prefect server whose scheduler runs (the
    ephemeral API schedules nothing)."""
    deployments = list(deployments) if deployments is not None else runner_deployments(specs, paused=False)
    with _api(api_url):
        try:
            serve(*deployments, limit=limit, print_starting_message=False)
        finally:
            # Prefect pauses them on the way out too, but its SIGTERM handler exits mid-way (the pause requests
            # are cancelled after the first): nothing may stay scheduled once nobody serves it
            pause(deployments)


def pause(deployments: Sequence[RunnerDeployment]) -> list[str]:
    """Pause the schedules of ``deployments`` (by name) on the current API; returns the names paused."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    paused = []
    with get_client(sync_client=True) as client:
        for deployment in deployments:
            with contextlib.suppress(ObjectNotFound):
                client.pause_deployment(client.read_deployment_by_name(deployment.full_name).id)
                paused.append(deployment.full_name)
    return paused


def apply_all(api_url: str, specs: Sequence[DeploymentSpec] | None = None, *, wait_seconds: float = 120.0) -> list[str]:
    """Register every deployment with the server at ``api_url`` so its UI lists them with their schedules: new ones
    paused (nothing serves them), existing ones keep their paused state (a ``relance serve`` may be serving them).
    Returns the deployments' full names."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    wait_for_api(api_url, wait_seconds)
    specs = list(specs if specs is not None else load_deployments())
    names = []
    with _api(api_url), get_client(sync_client=True) as client:
        for spec in specs:
            try:  # an update sends `paused` too: it must be the state the deployment is in
                paused = bool(client.read_deployment_by_name(f"{flow_name(spec)}/{spec.name}").paused)
            except ObjectNotFound:
                paused = True
            deployment = runner_deployment(spec, paused=paused)
            deployment.apply()
            names.append(deployment.full_name)
    return names


# --- reading runs back (relance status) ------------------------------------------------------------------------


def _run_row(run: Any, flows: dict[Any, str], deployments: dict[Any, str], ui_url: str) -> dict[str, Any]:
    state = run.state
    return {
        "flow": flows.get(run.flow_id, str(run.flow_id)),
        "run_name": run.name,
        "flow_run_id": str(run.id),
        "deployment": deployments.get(run.deployment_id) if run.deployment_id else None,
        "state_type": state.type.value if state else None,
        "state_name": state.name if state else None,
        "message": (state.message or "")[:300] if state else "",
        "started_at": run.start_time,
        "ended_at": run.end_time,
        "duration_s": round(run.total_run_time.total_seconds(), 1) if run.total_run_time else None,
        "link": f"{ui_url.rstrip('/')}/runs/flow-run/{run.id}",
    }


async def _overview(client: Any, specs: Sequence[DeploymentSpec], limit: int, ui_url: str) -> dict[str, Any]:
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowFilter,
        FlowFilterId,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterParentTaskRunId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.exceptions import ObjectNotFound
    from prefect.server.schemas.schedules import CronSchedule

    not_scheduled = FlowRunFilterState(type=FlowRunFilterStateType(not_any_=[StateType.SCHEDULED]))
    top_level = FlowRunFilterParentTaskRunId(is_null_=True)
    runs = await client.read_flow_runs(
        flow_run_filter=FlowRunFilter(parent_task_run_id=top_level, state=not_scheduled),
        sort=FlowRunSort.EXPECTED_START_TIME_DESC,
        limit=limit,
    )
    names = {s.name: flow_name(s) for s in specs}
    known = await client.read_flows(flow_filter=FlowFilter(name=FlowFilterName(any_=sorted(set(names.values())))))
    flow_ids = {f.name: f.id for f in known}
    all_flow_ids = {r.flow_id for r in runs} - {f.id for f in known}
    extra = (
        await client.read_flows(flow_filter=FlowFilter(id=FlowFilterId(any_=list(all_flow_ids))))
        if all_flow_ids
        else []
    )
    flows = {f.id: f.name for f in [*known, *extra]}
    deployment_ids = {r.deployment_id for r in runs if r.deployment_id}
    deployments = (
        {
            d.id: d.name
            for d in await client.read_deployments(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=list(deployment_ids)))
            )
        }
        if deployment_ids
        else {}
    )
    now = datetime.now(UTC)
    rows = []
    for spec in specs:
        fname = names[spec.name]
        upcoming = []
        for s in spec.schedules:
            upcoming += await CronSchedule(cron=s.cron, timezone=s.timezone).get_dates(n=1, start=now)
        row: dict[str, Any] = {
            "name": spec.name,
            "flow": fname,
            "schedule": spec.schedule_text(),
            "next_at": min(upcoming) if upcoming else None,
            "registered": False,
            "paused": None,
            "last_run": None,
        }
        try:
            deployment = await client.read_deployment_by_name(f"{fname}/{spec.name}")
            row["registered"], row["paused"] = True, bool(deployment.paused)
        except ObjectNotFound:
            pass
        if fname in flow_ids:
            last = await client.read_flow_runs(
                flow_filter=FlowFilter(id=FlowFilterId(any_=[flow_ids[fname]])),
                flow_run_filter=FlowRunFilter(parent_task_run_id=top_level, state=not_scheduled),
                sort=FlowRunSort.EXPECTED_START_TIME_DESC,
                limit=1,
            )
            if last:
                more = {}
                if last[0].deployment_id and last[0].deployment_id not in deployments:
                    with contextlib.suppress(ObjectNotFound):
                        more = {last[0].deployment_id: (await client.read_deployment(last[0].deployment_id)).name}
                row["last_run"] = _run_row(last[0], flows, deployments | more, ui_url)
        rows.append(row)
    return {"deployments": rows, "runs": [_run_row(r, flows, deployments, ui_url) for r in runs]}


def run_overview(
    specs: Sequence[DeploymentSpec] | None = None,
    *,
    api_url: str | None = None,
    ui_url: str = "http://127.0.0.1:4200",
    limit: int = 10,
) -> dict[str, Any]:
    """The deployments (schedule, next fire time, registered/paused, last run of their flow, by hand or not) and
    the last ``limit`` top-level flow runs, from the API at ``api_url``, or else in process from the database of
    the configured ``PREFECT_HOME`` (no server, no port: what an ephemeral run would use)."""
    from prefect.client.orchestration import PrefectClient, get_client

    specs = list(specs if specs is not None else load_deployments())

    async def main() -> dict[str, Any]:
        if api_url is not None:
            with _api(api_url):
                async with get_client() as client:
                    return await _overview(client, specs, limit, ui_url)
        from prefect.server.api.server import create_app

        async with PrefectClient(api=create_app(ephemeral=True)) as client:
            return await _overview(client, specs, limit, ui_url)

    return asyncio.run(main())
