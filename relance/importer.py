"""Read receivables from any supported source and load them: adapter -> raw loader.

``profile`` picks the adapter: ``fec`` (French FEC file), ``sql`` (an ERP database described by a YAML config),
or the name or path of a tabular column-mapping profile (``demo``, ``ibm_ar``, or your own YAML). Whatever the
source, the same loader guarantees apply (idempotent, nothing silently dropped, counts reconcile). Validating what
was loaded is the caller's next step: ``flows/import_receivables.py`` composes both for ``relance import``, the
daily flow runs ``flows/validate_receivables.py``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb

from relance.ingest import ExtractLoadReport, IngestError, load_extracts, read_watermarks
from relance.sources.base import EntityExtract, SourceError
from relance.warehouse import ensure_schemas

log = logging.getLogger(__name__)

BUILTIN_ADAPTERS = ("fec", "sql")


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


__all__ = ["BUILTIN_ADAPTERS", "IngestError", "SourceError", "extract", "load_landing", "load_source"]
