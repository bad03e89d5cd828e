"""Load every configured receivables source into the append-only raw tables (idempotent per file and row)."""

from __future__ import annotations

from prefect import flow, get_run_logger, task

from flows._common import current_flow_run_id
from flows._lineage import flow_lineage
from relance import openlineage as ol
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
    with flow_lineage(settings, "ingest-receivables") as lineage:
        for source in settings.daily_sources:
            batches += load(settings, source, current_flow_run_id())
        record_lineage(lineage, settings, batches)
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


def record_lineage(lineage: ol.LineageRun, settings: Settings, batches: list[BatchResult]) -> None:
    """Files (with their sha256) -> the raw tables they appended to, and the batch ledger; the batch ids."""
    for b in batches:
        lineage.add_inputs(ol.source_dataset(b.source_file, sha256=b.file_hash))
        if b.status == "loaded":
            lineage.add_outputs(ol.table(settings, f"raw.{b.entity}", rows=b.rows_loaded))
    if batches:
        lineage.add_outputs(ol.table(settings, "ops.ingest_batches", rows=len(batches)))
        if any(b.rows_quarantined for b in batches):
            lineage.add_outputs(ol.table(settings, "ops.quarantine"))
    lineage.set_ids(raw_batch_ids=[b.batch_id for b in batches if b.status == "loaded"])
    lineage.count(
        batches_loaded=sum(b.status == "loaded" for b in batches),
        rows_loaded=sum(b.rows_loaded for b in batches),
        rows_quarantined=sum(b.rows_quarantined for b in batches),
    )
