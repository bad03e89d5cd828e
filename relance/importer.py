"""Import receivables from any supported source: adapter -> raw loader -> data contracts.

``profile`` picks the adapter: ``fec`` (French FEC file), ``sql`` (an ERP database described by a YAML config),
or the name or path of a tabular column-mapping profile (``demo``, ``ibm_ar``, or your own YAML). Whatever the
source, the same loader guarantees apply (idempotent, nothing silently dropped, counts reconcile) and the same
Great Expectations suites run on what was loaded.

A dry run does everything, validation included, inside one transaction and rolls it back: it shows what would
load, what would be quarantined and why, and the validation summary, and writes nothing to the warehouse.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb

from expectations.runner import ValidationSummary, validate_batches
from relance.ingest import ExtractLoadReport, IngestError, load_extracts, read_watermarks
from relance.sources.base import EntityExtract, SourceError
from relance.warehouse import ensure_schemas

log = logging.getLogger(__name__)

BUILTIN_ADAPTERS = ("fec", "sql")


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


def extract(con: duckdb.DuckDBPyConnection, path: Path | str, *, profile: str) -> tuple[str, list[EntityExtract]]:
    """Run the adapter ``profile`` names on ``path``; return the source name and its extracts."""
    path = Path(path)
    if profile == "fec":
        from relance.sources.fec import read_fec

        return "fec", read_fec(path)
    if profile == "sql":
        from relance.sources.sql import load_sql_config, load_sql_source

        config = load_sql_config(path)
        return config.name, load_sql_source(config, watermarks=read_watermarks(con, config.name))
    from relance.sources.tabular import load_profile, read_tabular

    prof = load_profile(profile)
    return prof.name, read_tabular(path, prof)


def load_source(
    con: duckdb.DuckDBPyConnection, path: Path | str, *, profile: str, flow_run_id: str | None
) -> ExtractLoadReport:
    """Extract and load one source (committed); validation is the caller's next step (the daily flow's)."""
    ensure_schemas(con)
    source_name, extracts = extract(con, path, profile=profile)
    if not extracts:
        raise SourceError(f"{path}: profile {profile!r} found nothing to import")
    return load_extracts(con, extracts, source_name=source_name, flow_run_id=flow_run_id)


def load_landing(
    con: duckdb.DuckDBPyConnection, landing_dir: Path | str, *, flow_run_id: str | None
) -> ExtractLoadReport:
    """Load a directory in the demo export format (one ``<entity>.csv|.parquet`` per raw entity)."""
    return load_source(con, landing_dir, profile="demo", flow_run_id=flow_run_id)


def import_source(
    con: duckdb.DuckDBPyConnection,
    path: Path | str,
    *,
    profile: str,
    gx_dir: Path | None,
    flow_run_id: str | None,
    dry_run: bool = False,
) -> ImportReport:
    """Import one source into the raw tables and validate what it loaded.

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
            with tempfile.TemporaryDirectory(prefix="relance-gx-") as scratch:
                docs_root = Path(scratch) if dry_run or gx_dir is None else gx_dir
                validation = validate_batches(
                    con, loaded, gx_dir=docs_root, flow_run_id=flow_run_id, in_transaction=True
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


__all__ = [
    "BUILTIN_ADAPTERS",
    "ImportReport",
    "IngestError",
    "SourceError",
    "extract",
    "import_source",
    "load_landing",
    "load_source",
]
