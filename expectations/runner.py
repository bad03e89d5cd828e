"""Validate raw load batches with the GX suites, quarantine warning rows, record the run.

:func:`validate_batches` is the orchestration: for each batch it reads the rows
(:mod:`expectations.batch_frame`), sets the volume check's bounds (:mod:`expectations.volume`), runs the entity's
checkpoint in the GX file context rooted at ``gx_dir`` (:mod:`expectations.context`) and sorts the failures
(:mod:`expectations.failures`); then it writes the quarantine rows and the run record through :mod:`relance.ops`,
and, when ``data_docs`` is on, renders the data docs site once for the whole call.

* warning failures: every failing row goes to ``ops.quarantine`` (one row per row x expectation) and
  ``ops.ingest_batches.rows_flagged`` is set to the number of distinct quarantined rows of the batch (rows that
  were loaded into raw and are excluded downstream; ``rows_quarantined`` counts the rows rejected at load).
  Re-validating a batch replaces its quarantine rows, so nothing is duplicated.
* volume anomaly (batch-level warning, see :mod:`expectations.suites`): the batch's ``rows_read`` is compared
  with the median of the previous loads of the same (source, entity); an anomaly is a warning failure
  (``warning_failures``, ``ops.validation_runs.warning_failures``) and quarantines no row.
* critical failures: ``success`` is ``False`` and ``critical_failures`` lists entity, expectation and example
  values. The caller raises :class:`CriticalValidationError`
  (:meth:`ValidationSummary.raise_for_critical`) and runs nothing downstream.
* each validated batch's ``ops.ingest_batches.validation_state`` becomes ``failed`` (a critical failure) or
  ``passed`` (which supersedes earlier failed batches of its source and entity), in the same transaction as its
  quarantine rows: a failed batch keeps blocking later runs (``relance.ops.blocking_batches``) until then.

Batches with nothing new to validate (status ``unchanged``, or a new file whose rows were all already in raw)
are skipped.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from expectations.batch_frame import MAX_BATCH_FRAME_ROWS, BatchTooLarge, checkpoint_frame, read_batch
from expectations.context import DATA_DOCS_INDEX, entity_checkpoint, file_context, render_data_docs
from expectations.failures import BatchFailures, batch_failures
from expectations.suites import VOLUME_HISTORY
from expectations.volume import volume_parameters
from relance import ops
from relance.runs import StopRun
from relance.warehouse import ensure_schemas

log = logging.getLogger(__name__)

__all__ = ["CriticalValidationError", "GateResult", "ValidationSummary", "validate_batches", "validate_pending"]


class CriticalValidationError(StopRun):
    """A batch failed a critical expectation: nothing downstream may run.

    Built from a :class:`ValidationSummary` (the message lists every critical failure) or from a plain
    message; ``summary`` is ``None`` in the latter case.
    """

    def __init__(self, summary_or_message: ValidationSummary | str) -> None:
        if isinstance(summary_or_message, str):
            self.summary: ValidationSummary | None = None
            super().__init__(summary_or_message)
            return
        summary = summary_or_message
        self.summary = summary
        lines = "\n  - ".join(summary.critical_failures)
        docs = f"\nData docs: {summary.data_docs_index}" if summary.data_docs_index else ""
        super().__init__(
            f"validation {summary.validation_id} failed {len(summary.critical_failures)} critical "
            f"expectation(s):\n  - {lines}{docs}"
        )


@dataclass(frozen=True)
class ValidationSummary:
    """Outcome of one :func:`validate_batches` call."""

    success: bool
    critical_failures: list[str]
    warning_failures: list[str]
    quarantined_rows: int
    data_docs_index: Path | None
    validation_id: str
    batch_ids: list[str] = field(default_factory=list)

    def raise_for_critical(self) -> None:
        """Raise :class:`CriticalValidationError` if any critical expectation failed."""
        if not self.success:
            raise CriticalValidationError(self)


def validate_batches(
    con: duckdb.DuckDBPyConnection,
    batch_ids: list[str],
    *,
    gx_dir: Path,
    flow_run_id: str | None,
    in_transaction: bool = False,
    data_docs: bool = True,
    max_batch_rows: int = MAX_BATCH_FRAME_ROWS,
) -> ValidationSummary:
    """Validate raw load batches, quarantine warning rows and record the run in ``ops.validation_runs``.

    Args:
        con: DuckDB connection to the warehouse (no transaction in progress, unless ``in_transaction``: then
            the caller's transaction is used and the caller commits or rolls back, e.g. for a dry run).
        batch_ids: ids from :class:`relance.ingest.LoadReport`; unknown ids raise ``ValueError``.
        gx_dir: root of the GX file context (``great_expectations.yml``, suites, data docs).
        flow_run_id: orchestrator run id stored with quarantine rows and the run record.
        data_docs: render the data docs site (``uncommitted/data_docs/local_site`` under ``gx_dir``) once, after
            every checkpoint, with this call's validation results. Off: nothing is rendered and
            ``data_docs_index`` is ``None``.
        max_batch_rows: a batch with more rows than this is not read: it fails critically with the reason
            (memory stays bounded; split the source file).

    Returns:
        A :class:`ValidationSummary`; ``success`` is ``False`` when any critical expectation failed.
    """
    ensure_schemas(con)
    gx_dir = Path(gx_dir).resolve()
    validation_id = uuid.uuid4().hex
    infos = ops.batch_records(con, list(batch_ids))
    now = datetime.now(UTC).replace(tzinfo=None)
    todo = [i for i in infos if i.status == "loaded" and not (i.rows_loaded == 0 and i.rows_read > 0)]
    for skipped in (i for i in infos if i not in todo):
        log.info("batch %s (%s): nothing new to validate, skipped", skipped.batch_id, skipped.entity)

    outcomes: list[BatchFailures] = []
    data_docs_index: Path | None = None
    if todo:
        ctx = file_context(gx_dir)
        checkpoints: dict[str, Any] = {}
        results: list[Any] = []
        for info in todo:
            if info.entity not in checkpoints:
                checkpoints[info.entity] = entity_checkpoint(ctx, info.entity)
            try:
                df = read_batch(con, info, max_rows=max_batch_rows)
            except BatchTooLarge as exc:  # not validated is not passed: the batch fails, with the reason
                outcomes.append(BatchFailures(critical=[f"{info.entity} [batch {info.batch_id}]: {exc}"]))
                log.error("batch %s not validated: %s", info.batch_id, exc)
                continue
            bounds, parameters = volume_parameters(info, ops.previous_volumes(con, info, VOLUME_HISTORY))
            result = checkpoints[info.entity].run(
                batch_parameters={"dataframe": checkpoint_frame(info, df)}, expectation_parameters=parameters
            )
            results.append(result)
            outcomes.append(batch_failures(result, info, df, bounds, now=now, flow_run_id=flow_run_id))
            log.info("validated batch %s (%s): %d rows", info.batch_id, info.entity, len(df))
        if data_docs:
            data_docs_index = render_data_docs(ctx, gx_dir, results)
    elif data_docs and (gx_dir / DATA_DOCS_INDEX).is_file():
        data_docs_index = gx_dir / DATA_DOCS_INDEX  # nothing new: the site as the last validation left it

    critical = [m for o in outcomes for m in o.critical]
    warning = [m for o in outcomes for m in [*o.warning, *o.batch_warning]]
    rows = [q for o in outcomes for q in o.quarantine]
    validated_ids = [i.batch_id for i in todo]

    if not in_transaction:
        con.begin()
    try:
        ops.replace_contract_quarantine(con, validated_ids, rows)
        ops.set_validation_states(
            con,
            {i.batch_id: ("failed" if o.critical else "passed") for i, o in zip(todo, outcomes, strict=True)},
            at=now,
            note=f"validation {validation_id}",
        )
        ops.record_validation_run(
            con,
            validation_id=validation_id,
            batch_ids=[i.batch_id for i in infos],
            success=not critical,
            critical_failures=len(critical),
            warning_failures=len(warning),
            data_docs_path=str(data_docs_index) if data_docs_index else None,
            validated_at=now,
            flow_run_id=flow_run_id,
        )
        if not in_transaction:
            con.commit()
    except BaseException:
        if not in_transaction:
            con.rollback()
        raise

    quarantined = len({(r.batch_id, r.row_number) for r in rows})
    for msg in critical:
        log.error("critical: %s", msg)
    for o in outcomes:
        for msg in o.warning:
            log.warning("quarantined: %s", msg)
        for msg in o.batch_warning:
            log.warning("volume anomaly: %s", msg)
    return ValidationSummary(
        success=not critical,
        critical_failures=critical,
        warning_failures=warning,
        quarantined_rows=quarantined,
        data_docs_index=data_docs_index,
        validation_id=validation_id,
        batch_ids=[i.batch_id for i in infos],
    )


# --- the gate every run passes before dbt ------------------------------------------------------------------------


def blocking_message(blocking: list[ops.BatchState]) -> str:
    """What blocks the run and how to unblock it, one line per batch."""
    lines = [
        f"batch {b.batch_id} ({b.source_name or '-'}/{b.entity}, {b.source_file}"
        + (f", loaded {b.loaded_at:%Y-%m-%d %H:%M} UTC" if b.loaded_at else "")
        + f"): {b.state}"
        + (f", {b.state_note}" if b.state_note else "")
        for b in blocking
    ]
    return (
        "batch(es) failed their data contract; nothing downstream runs until a corrected file of the same source "
        "passes or the batch is excluded with `relance batches quarantine BATCH_ID --reason TEXT`:\n- "
        + "\n- ".join(lines)
    )


@dataclass(frozen=True)
class GateResult:
    """The validation gate's outcome: this call's validation (``None`` if nothing was pending) and the batches
    that still block (failed, not superseded nor quarantined)."""

    summary: ValidationSummary | None
    blocking: list[ops.BatchState]
    validated: list[str]

    def raise_if_blocked(self) -> None:
        """Raise :class:`CriticalValidationError` naming this call's critical failures and every blocking batch."""
        if not self.blocking and (self.summary is None or self.summary.success):
            return
        head = ""
        if self.summary is not None and not self.summary.success:
            head = "critical data-contract failures:\n- " + "\n- ".join(self.summary.critical_failures) + "\n"
        raise CriticalValidationError(head + blocking_message(self.blocking))


def validate_pending(
    con: duckdb.DuckDBPyConnection, *, gx_dir: Path, flow_run_id: str | None, data_docs: bool = True
) -> GateResult:
    """Validate every batch not validated yet (``ops.pending_batch_ids``: whatever happened before, a crash
    between load and validation included), then list the batches that block the run. The caller raises with
    :meth:`GateResult.raise_if_blocked` before anything downstream."""
    ensure_schemas(con)
    pending = ops.pending_batch_ids(con)
    summary = (
        validate_batches(con, pending, gx_dir=gx_dir, flow_run_id=flow_run_id, data_docs=data_docs) if pending else None
    )
    return GateResult(summary=summary, blocking=ops.blocking_batches(con), validated=pending)
