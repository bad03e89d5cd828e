"""Load the receivables exports in the landing directory into the append-only raw tables."""

from __future__ import annotations

from prefect import flow, get_run_logger, task

from flows._common import current_flow_run_id
from relance.ingest import LoadReport, load_landing
from relance.settings import Settings
from relance.warehouse import connection


@task(retries=2, retry_delay_seconds=5)
def load(settings: Settings, flow_run_id: str | None) -> LoadReport:
    with connection(settings.warehouse) as con:
        return load_landing(con, settings.landing, flow_run_id=flow_run_id)


@flow(name="ingest-receivables")
def ingest_receivables(settings: Settings) -> LoadReport:
    logger = get_run_logger()
    report = load(settings, current_flow_run_id())
    for b in report.batches:
        logger.info(
            "%s: %s, %d read, %d loaded, %d unchanged (batch %s)",
            b.entity,
            b.status,
            b.rows_read,
            b.rows_loaded,
            b.rows_unchanged,
            b.batch_id,
        )
    return report
