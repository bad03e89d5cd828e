"""Load every configured receivables source into the append-only raw tables (idempotent per file and row)."""

from __future__ import annotations

from prefect import flow, get_run_logger, task

from flows._common import current_flow_run_id
from relance.importer import load_source
from relance.ingest import BatchResult
from relance.settings import Settings, SourceSpec
from relance.warehouse import connection


@task(retries=2, retry_delay_seconds=5, task_run_name="load {source.profile}: {source.path.name}")
def load(settings: Settings, source: SourceSpec, flow_run_id: str | None) -> list[BatchResult]:
    with connection(settings.warehouse) as con:
        return load_source(con, source.path, profile=source.profile, flow_run_id=flow_run_id).batches


@flow(name="ingest-receivables")
def ingest_receivables(settings: Settings) -> list[BatchResult]:
    logger = get_run_logger()
    batches: list[BatchResult] = []
    for source in settings.daily_sources:
        batches += load(settings, source, current_flow_run_id())
    for b in batches:
        logger.info(
            "%s/%s: %s, %d read, %d loaded, %d unchanged, %d quarantined (batch %s)",
            b.source_name,
            b.entity,
            b.status,
            b.rows_read,
            b.rows_loaded,
            b.rows_unchanged,
            b.rows_quarantined,
            b.batch_id,
        )
    return batches
