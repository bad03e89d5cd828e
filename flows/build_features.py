"""Run dbt through prefect-dbt: staging -> marts -> as-of ML features, or the post-scoring serving models."""

from __future__ import annotations

from datetime import date
from typing import Literal

from prefect import flow, get_run_logger
from prefect_dbt import PrefectDbtRunner, PrefectDbtSettings

from models.features import features_rebuild_reason
from relance import dbt
from relance.settings import Settings
from relance.warehouse import connection


def _prefect_invoke(settings: Settings) -> dbt.Invoke:
    """prefect-dbt's runner (every dbt node a Prefect task), on the paths relance.dbt derives from settings."""
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
    run = dbt.run_dbt(settings, args, invoke=_prefect_invoke(settings))
    if docs:
        dbt.run_dbt(settings, dbt.docs_args(settings, as_of_date), invoke=_prefect_invoke(settings))
        logger.info("dbt docs at %s", settings.dbt_target_dir / "index.html")
    logger.info("dbt %s build done (invocation %s)", stage, run.invocation_id)
    assert run.invocation_id is not None  # a successful build always writes its run results
    return run.invocation_id
