"""Import one receivables source and validate what it loaded: adapter -> raw loader -> data contracts.

This composition of ``relance`` (read, load) and ``expectations`` (validate) sits above both, so neither library
imports the other's caller. ``relance import`` calls :func:`import_source` directly (no Prefect server for a
one-off import); the :func:`import_receivables` flow runs the same function where a deployment schedules it.

A dry run does everything, validation included, inside one transaction and rolls it back: it shows what would
load, what would be quarantined and why, and the validation summary, and writes nothing to the warehouse, nor any
data docs (its GX context lives in a temporary directory).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
from prefect import flow, get_run_logger

from flows._common import current_flow_run_id
from relance.importer import extract
from relance.ingest import ExtractLoadReport, IngestError, load_extracts
from relance.settings import Settings
from relance.sources.base import SourceError
from relance.warehouse import connection, ensure_schemas

if TYPE_CHECKING:
    from expectations.runner import ValidationSummary


@dataclass(frozen=True)
class ImportReport:
    source_name: str
    load: ExtractLoadReport
    validation: ValidationSummary | None
    dry_run: bool

    @property
    def success(self) -> bool:
        return self.validation is None or self.validation.success

    def reconciles(self) -> bool:
        """rows read = rows loaded + rows unchanged + rows quarantined, for every batch."""
        return all(b.rows_read == b.rows_loaded + b.rows_unchanged + b.rows_quarantined for b in self.load.batches)


def import_source(
    con: duckdb.DuckDBPyConnection,
    path: Path | str,
    *,
    profile: str,
    gx_dir: Path | None,
    flow_run_id: str | None,
    dry_run: bool = False,
    data_docs: bool = True,
) -> ImportReport:
    """Import one source into the raw tables and validate what it loaded, in one transaction.

    ``gx_dir`` is the GX context that keeps the suites and data docs; ``None`` validates in a temporary one and
    renders no data docs, as does a dry run. ``data_docs=False`` skips rendering them (``validation.data_docs_index``
    is then ``None``).

    Raises:
        SourceError: the source cannot be read (specific message: file, row, column, expected).
        IngestError: extracted rows cannot be loaded (e.g. a raw column is missing). Nothing is loaded.
    """
    ensure_schemas(con)
    source_name, extracts = extract(con, path, profile=profile)
    if not extracts:
        raise SourceError(f"{path}: profile {profile!r} found nothing to import")
    con.begin()
    try:
        load = load_extracts(
            con, extracts, source_name=source_name, flow_run_id=flow_run_id, dry_run=dry_run, in_transaction=True
        )
        loaded = [b.batch_id for b in load.batches if b.status == "loaded" and b.rows_loaded > 0]
        validation = None
        if loaded:
            # imported here: Great Expectations takes seconds to import, and a file that cannot be read or
            # loads nothing new should fail or finish at once
            from expectations.runner import validate_batches

            keep = gx_dir is not None and not dry_run  # else nothing of the GX context outlives the call
            with tempfile.TemporaryDirectory(prefix="relance-gx-") as scratch:
                validation = validate_batches(
                    con,
                    loaded,
                    gx_dir=gx_dir if keep else Path(scratch),
                    flow_run_id=flow_run_id,
                    in_transaction=True,
                    data_docs=data_docs and keep,
                )
        if dry_run:
            con.rollback()
        else:
            con.commit()
    except BaseException:
        con.rollback()
        raise
    report = ImportReport(source_name, load, validation, dry_run)
    if not report.reconciles():
        raise IngestError(f"{source_name}: row counts do not reconcile: {load.batches}")
    return report


@flow(name="import-receivables")
def import_receivables(settings: Settings, path: Path, profile: str = "demo", dry_run: bool = False) -> ImportReport:
    """One source, loaded and validated (``relance import`` as a deployable flow)."""
    logger = get_run_logger()
    with connection(settings.warehouse) as con:
        report = import_source(
            con, path, profile=profile, gx_dir=settings.gx_dir, flow_run_id=current_flow_run_id(), dry_run=dry_run
        )
    logger.info(
        "%s: %d batch(es), %d row(s) loaded, validation %s",
        report.source_name,
        len(report.load.batches),
        report.load.rows_loaded,
        "skipped" if report.validation is None else ("passed" if report.validation.success else "FAILED"),
    )
    return report
