"""Collectors' call outcomes into the warehouse: read, check row by row, load, validate, suppress; never fail the day.

Two ways in, one function (:func:`import_call_outcomes`): ``relance calls import FILE...`` and the watched folder
``<landing>/calls`` (``*.csv`` and ``*.xlsx``), which the :func:`import_call_outcomes_flow` flow reads in the daily
run before dbt, so today's calls count in today's contact state and tomorrow's plan.

Per file: :func:`relance.reminders.calls.read_call_file` checks every row (a bad row is a reject naming the file,
the line and the field), the shared loader appends the good rows to ``raw.call_outcomes`` and writes the rejects
to ``ops.quarantine``, then the data contract (suite ``raw_call_outcomes``) validates the batch. A file is
identified by its sha256: imported again (under any name, by either way in) it is an ``unchanged`` batch and
changes nothing. Then ``wrong_contact`` / ``do_not_contact`` calls write their ``ops.contact_suppressions`` rows,
once (:func:`relance.reminders.calls.record_call_suppressions`).

The watched folder: a file that was read (loaded, unchanged, or holding only a header) is moved to
``<landing>/calls/done/`` afterwards, bad rows or not: its rejects are in ``ops.quarantine`` and in the flow's
artifact, and a corrected file dropped again loads only the rows that changed. A file that cannot be read at all
(not a table, a required column missing) stays where it is, and is reported at every run until someone replaces
it. Moving comes after the warehouse commit: a crash in between leaves the file, which the next run finds
unchanged and moves.

Contact-data batches never block the receivables gate (``relance.ops.CONTACT_DATA_ENTITIES``); batches a crash
left pending are validated here first (``ops.pending_batch_ids(con, contact_data=True)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import duckdb
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from expectations.runner import validate_batches
from flows._common import current_flow_run_id
from flows._lineage import flow_lineage
from relance import openlineage as ol
from relance import ops
from relance.ingest import IngestError
from relance.reminders.calls import (
    ENTITY,
    RowError,
    archive_call_file,
    call_files,
    known_customer_ids,
    load_call_file,
    read_call_file,
    record_call_suppressions,
)
from relance.settings import Settings
from relance.sources.base import SourceError
from relance.warehouse import connection, ensure_schemas

FileStatus = Literal["loaded", "unchanged", "empty", "unreadable"]


@dataclass(frozen=True)
class CallFileImport:
    """One file: what it held, what loaded, what was rejected and why, what the data contract said."""

    path: Path
    status: FileStatus
    rows_read: int = 0
    rows_loaded: int = 0
    rows_unchanged: int = 0
    rejected: tuple[RowError, ...] = ()
    contract_failures: tuple[str, ...] = ()  # critical: the whole batch is excluded
    contract_warnings: tuple[str, ...] = ()  # rows quarantined by the contract
    batch_id: str | None = None
    file_hash: str | None = None
    error: str | None = None  # unreadable: why
    archived_to: Path | None = None

    @property
    def rows_rejected(self) -> int:
        return len({e.line for e in self.rejected})

    @property
    def has_problems(self) -> bool:
        return bool(self.rejected or self.contract_failures or self.contract_warnings or self.error)


@dataclass
class CallImportReport:
    """All files of one import, and the suppressions it wrote."""

    files: list[CallFileImport] = field(default_factory=list)
    suppressions_written: int = 0
    leftover_failures: list[str] = field(default_factory=list)  # pending batches of earlier runs that failed

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files)

    @property
    def unreadable(self) -> list[CallFileImport]:
        return [f for f in self.files if f.status == "unreadable"]

    def as_markdown(self) -> str:
        lines = [
            f"**Call outcomes**: {len(self.files)} file(s), {self.rows_loaded} call(s) loaded, "
            f"{self.rows_rejected} row(s) quarantined, {self.suppressions_written} contact suppression(s) written.",
            "",
        ]
        for item in self.files:
            where = item.path.name
            if item.error:
                lines.append(f"- `{where}`: **unreadable**, left in place: {item.error}")
                continue
            lines.append(
                f"- `{where}`: {item.status}, {item.rows_read} row(s) read, {item.rows_loaded} loaded, "
                f"{item.rows_unchanged} unchanged, {item.rows_rejected} quarantined"
            )
            lines += [f"  - {e.describe(item.path)}" for e in item.rejected]
            lines += [f"  - contract: {m}" for m in (*item.contract_failures, *item.contract_warnings)]
        lines += [f"- earlier batch: {m}" for m in self.leftover_failures]
        return "\n".join(lines)


def _import_one(
    con: duckdb.DuckDBPyConnection, path: Path, *, settings: Settings, customers: set[str], flow_run_id: str | None
) -> CallFileImport:
    try:
        call_file = read_call_file(path, timezone=settings.timezone, known_customers=customers)
        report = load_call_file(con, call_file, flow_run_id=flow_run_id)
    except (SourceError, IngestError, OSError) as exc:
        return CallFileImport(path, "unreadable", error=str(exc))
    if report is None:
        return CallFileImport(path, "empty", file_hash=call_file.file_hash)
    batch = report.batches[0]
    summary = None
    if batch.status == "loaded" and batch.rows_loaded:
        summary = validate_batches(
            con, [batch.batch_id], gx_dir=settings.gx_dir, flow_run_id=flow_run_id, data_docs=False
        )
    return CallFileImport(
        path,
        batch.status,
        rows_read=call_file.rows_read,
        rows_loaded=batch.rows_loaded,
        rows_unchanged=batch.rows_unchanged if batch.status == "loaded" else len(call_file.rows),
        rejected=tuple(call_file.errors),
        contract_failures=tuple(summary.critical_failures) if summary else (),
        contract_warnings=tuple(summary.warning_failures) if summary else (),
        batch_id=batch.batch_id,
        file_hash=call_file.file_hash,
    )


def import_call_outcomes(
    settings: Settings, paths: list[Path], *, flow_run_id: str | None = None, archive: bool = False
) -> CallImportReport:
    """Import collectors' call files (see the module docstring); with ``archive``, move each file that was read
    to ``<landing>/calls/done/``. Never raises for a file's content: an unreadable file is reported with its
    error, a bad row with its line and field."""
    result = CallImportReport()
    with connection(settings.warehouse) as con:
        ensure_schemas(con)
        pending = ops.pending_batch_ids(con, contact_data=True)  # what a crash left between load and validation
        if pending:
            leftover = validate_batches(con, pending, gx_dir=settings.gx_dir, flow_run_id=flow_run_id, data_docs=False)
            result.leftover_failures = list(leftover.critical_failures)
        customers = known_customer_ids(con)
        for path in paths:
            result.files.append(
                _import_one(con, Path(path), settings=settings, customers=customers, flow_run_id=flow_run_id)
            )
        result.suppressions_written = record_call_suppressions(con)
    if archive:
        done = settings.landing / "calls" / "done"
        result.files = [
            item
            if item.status == "unreadable" or item.file_hash is None
            else replace(item, archived_to=archive_call_file(item.path, done, item.file_hash))
            for item in result.files
        ]
    return result


def watched_call_files(settings: Settings) -> list[Path]:
    """The files waiting in ``<landing>/calls``."""
    return call_files(settings.landing / "calls")


@flow(name="import-call-outcomes")
def import_call_outcomes_flow(settings: Settings) -> CallImportReport:
    """Import the call files of the watched folder and move them to ``done/``; never raises for a file's content."""
    logger = get_run_logger()
    paths = watched_call_files(settings)
    with flow_lineage(settings, "import-call-outcomes") as lineage:
        result = import_call_outcomes(settings, paths, flow_run_id=current_flow_run_id(), archive=True)
        record_lineage(lineage, settings, result)
    for item in result.files:
        if item.error:
            logger.warning("call file %s unreadable, left in place: %s", item.path.name, item.error)
        for err in item.rejected:
            logger.warning("call outcome quarantined: %s", err.describe(item.path))
        for message in (*item.contract_failures, *item.contract_warnings):
            logger.warning("call outcomes contract (%s): %s", item.path.name, message)
    logger.info(
        "call outcomes: %d file(s), %d call(s) loaded, %d row(s) quarantined, %d suppression(s) written",
        len(result.files),
        result.rows_loaded,
        result.rows_rejected,
        result.suppressions_written,
    )
    if paths:
        create_markdown_artifact(key="call-outcomes", markdown=result.as_markdown())
    return result


def record_lineage(lineage: ol.LineageRun, settings: Settings, result: CallImportReport) -> None:
    """Each call file read (named where it was dropped, with its sha256) -> ``raw.call_outcomes``, the batch
    ledger, the quarantine and the contact suppressions; the batch ids."""
    for item in result.files:
        lineage.add_inputs(ol.file_dataset(item.path, sha256=item.file_hash))
    loaded = [f for f in result.files if f.status == "loaded" and f.batch_id]
    if loaded:
        lineage.add_outputs(
            ol.table(settings, f"raw.{ENTITY}", rows=result.rows_loaded),
            ol.table(settings, "ops.ingest_batches"),
            ol.table(settings, "ops.validation_runs"),
        )
    if result.rows_rejected:
        lineage.add_outputs(ol.table(settings, "ops.quarantine", rows=result.rows_rejected))
    if result.suppressions_written:
        lineage.add_outputs(ol.table(settings, "ops.contact_suppressions", rows=result.suppressions_written))
    lineage.set_ids(raw_batch_ids=[f.batch_id for f in loaded if f.batch_id])
    lineage.count(files=len(result.files), calls_loaded=result.rows_loaded, rows_quarantined=result.rows_rejected)
