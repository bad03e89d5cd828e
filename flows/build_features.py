"""Run dbt through prefect-dbt: staging -> marts -> as-of ML features, or the post-scoring serving models."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Literal

from prefect import flow, get_run_logger
from prefect_dbt import PrefectDbtRunner, PrefectDbtSettings

from models.features import features_rebuild_reason
from relance.lineage import archive_dbt_invocation
from relance.settings import Settings
from relance.warehouse import connection


def _runner(settings: Settings) -> PrefectDbtRunner:
    return PrefectDbtRunner(
        settings=PrefectDbtSettings(
            project_dir=settings.dbt_project_dir,
            profiles_dir=settings.dbt_project_dir,
            target_path=settings.dbt_target_dir,
        ),
        raise_on_failure=True,
        disable_assets=True,
    )


@contextmanager
def _warehouse_for_dbt(settings: Settings) -> Iterator[None]:
    """dbt's profile reads the warehouse path (and DuckDB's memory cap) from the environment: point it at *these*
    settings' warehouse for the duration of the build, so a flow called with explicit settings never builds
    another warehouse."""
    wanted = {
        "RELANCE_WAREHOUSE_PATH": str(settings.warehouse),
        "RELANCE_DUCKDB_MEMORY_LIMIT": settings.duckdb_memory_limit,
    }
    previous = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


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
    selector = ["--exclude", "tag:post_scoring"] if stage == "features" else ["--select", "tag:post_scoring"]
    if stage == "features" and not full_refresh:
        with connection(settings.warehouse) as con:
            reason = features_rebuild_reason(con)
        if reason:
            logger.warning("rebuilding every feature date: %s", reason)
            full_refresh = True
    if full_refresh and stage == "features":
        selector.append("--full-refresh")
    dbt_vars = json.dumps(
        {
            "as_of_date": as_of_date.isoformat(),
            "snapshot_interval_days": settings.snapshot_interval_days,
            "history_start_days": settings.history_start_days,
            "horizon_days": settings.horizon_days,
        }
    )
    runner = _runner(settings)
    with _warehouse_for_dbt(settings):
        # data tests guard every build; dbt unit tests check the SQL itself, with fixed inputs, so they run in
        # the test suite (tests/integration/test_dbt_project.py, test_dbt_postgres.py), not every day
        runner.invoke(["build", *selector, "--exclude-resource-type", "unit_test", "--vars", dbt_vars])
        invocation_id = archive_dbt_invocation(settings.dbt_target_dir, settings.dbt_runs_dir)
        if docs:
            runner.invoke(["docs", "generate", "--vars", dbt_vars])
            logger.info("dbt docs at %s", settings.dbt_target_dir / "index.html")
    logger.info("dbt %s build done (invocation %s)", stage, invocation_id)
    return invocation_id
