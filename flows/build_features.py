"""Run dbt through prefect-dbt: staging -> marts -> as-of ML features, or the post-scoring serving models."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect_dbt import PrefectDbtRunner, PrefectDbtSettings

from flows._lineage import flow_lineage
from models.features import features_rebuild_reason
from relance import dbt
from relance import openlineage as ol
from relance.openlineage_dbt import emit_invocation
from relance.settings import Settings
from relance.warehouse import connection


def _invoke(settings: Settings) -> dbt.Invoke | None:
    """prefect-dbt's runner (every dbt node a Prefect task) when ``dbt_node_tasks`` is on, on the paths relance.dbt
    derives from settings; otherwise relance.dbt's plain in-process dbtRunner."""
    if not settings.dbt_node_tasks:
        return None
    runner = PrefectDbtRunner(
        settings=PrefectDbtSettings(
            project_dir=settings.dbt_project_dir,
            profiles_dir=settings.dbt_profiles_dir,
            target_path=settings.dbt_target_dir,
        ),
        raise_on_failure=False,  # relance.dbt.run_dbt raises, with the failed nodes
        disable_assets=True,
    )
    return runner.invoke


def _publish(run: dbt.DbtRun, stage: str, as_of_date: date) -> None:
    """The build's node results as a Prefect artifact: failures first, then the slowest nodes."""
    rows = [{"node": f.unique_id, "status": f.status, "seconds": None, "message": f.message[:300]} for f in run.failed]
    rows += [
        {"node": n.unique_id, "status": n.status, "seconds": round(n.seconds, 2), "message": ""}
        for n in dbt.slowest_nodes(run, 15)
    ]
    create_table_artifact(
        key=f"dbt-{stage}",
        table=rows,
        description=f"dbt {stage} build as of {as_of_date}: {'succeeded' if run.success else 'FAILED'} "
        f"(invocation {run.invocation_id}); {len(run.failed)} failed node(s), then the slowest",
    )


@flow(name="build-features")
def build_features(
    settings: Settings,
    as_of_date: date,
    stage: Literal["features", "serving"] = "features",
    docs: bool = False,
    full_refresh: bool = False,
) -> str:
    """Returns the dbt invocation id of the build, stamped on every feature row it builds and every prediction.

    ``ml_invoice_features`` is incremental: a run builds the grid dates not built yet and its own scoring date.
    ``full_refresh`` rebuilds every grid date from raw (after a correction of past data, for instance); it is
    forced when the table's columns no longer match models/contract.py.
    """
    logger = get_run_logger()
    with flow_lineage(settings, "build-features", as_of_date=as_of_date) as lineage:
        invocation_id = _build(settings, as_of_date, stage, docs, full_refresh, lineage, logger)
    return invocation_id


def _build(
    settings: Settings,
    as_of_date: date,
    stage: Literal["features", "serving"],
    docs: bool,
    full_refresh: bool,
    lineage: ol.LineageRun,
    logger: Any,
) -> str:
    if stage == "features" and not full_refresh:
        with connection(settings.warehouse) as con:
            reason = features_rebuild_reason(con)
        if reason:
            logger.warning("rebuilding every feature date: %s", reason)
            full_refresh = True
    args = (
        dbt.daily_build_args(settings, as_of_date, full_refresh=full_refresh)
        if stage == "features"
        else dbt.serving_build_args(settings, as_of_date)
    )
    invoke = _invoke(settings)
    try:
        run = dbt.run_dbt(settings, args, invoke=invoke)
    except dbt.DbtError as exc:
        _publish(exc.run, stage, as_of_date)
        _model_lineage(settings, exc.run, as_of_date, lineage)
        raise
    _publish(run, stage, as_of_date)
    _model_lineage(settings, run, as_of_date, lineage)
    if docs:
        dbt.run_dbt(settings, dbt.docs_args(settings, as_of_date), invoke=invoke)
        logger.info("dbt docs at %s", settings.dbt_target_dir / "index.html")
    logger.info("dbt %s build done (invocation %s)", stage, run.invocation_id)
    assert run.invocation_id is not None  # a successful build always writes its run results
    return run.invocation_id


def _model_lineage(settings: Settings, run: dbt.DbtRun, as_of_date: date, lineage: ol.LineageRun) -> None:
    """Each model the build ran as its own OpenLineage job (child of this flow run), and the build's sources and
    relations on this flow run's own events."""
    if run.invocation_id is None:
        return
    lineage.set_ids(dbt_invocation_id=run.invocation_id)
    models = emit_invocation(
        settings,
        run.invocation_id,
        parent=lineage.ref,
        root=lineage.root_ref,
        as_of_date=as_of_date,
        flow_run_id=lineage.run_id,
    )
    if models is not None:
        lineage.add_inputs(*models.inputs).add_outputs(*models.outputs)
        lineage.count(dbt_models=models.models, dbt_models_failed=models.failed, dbt_events=len(models.events))
