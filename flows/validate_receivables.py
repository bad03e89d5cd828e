"""The validation gate: validate every batch not validated yet, then stop the run while any batch blocks.

Whatever happened before this run (a crash between load and validation, a ``relance import`` whose contract
failed, an SQL source whose watermark already moved), every ``pending`` batch is validated here, and a batch that
failed a critical expectation keeps stopping dbt, scoring and sending, run after run, until a later delivery of
the same source and entity passes (it is then ``superseded``) or an operator excludes it
(``relance batches quarantine BATCH_ID``). See ``expectations.runner.validate_pending``.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_link_artifact, create_markdown_artifact

from expectations.runner import ValidationSummary, blocking_message, validate_pending
from flows._common import current_flow_run_id
from flows._lineage import flow_lineage
from relance import openlineage as ol
from relance import ops
from relance.settings import Settings
from relance.warehouse import connection


@flow(name="validate-receivables")
def validate_receivables(settings: Settings) -> ValidationSummary | None:
    """Validate the pending batches; raise ``CriticalValidationError`` if any batch blocks the run.

    Returns the summary of this run's validation (``None`` when no batch was pending).
    """
    logger = get_run_logger()
    with flow_lineage(settings, "validate-receivables") as lineage:
        summary = _validate(settings, lineage, logger)
    return summary


def _validate(settings: Settings, lineage: ol.LineageRun, logger: Any) -> ValidationSummary | None:
    with connection(settings.warehouse) as con:
        # data docs on: the run's link artifact below points at them
        gate = validate_pending(con, gx_dir=settings.gx_dir, flow_run_id=current_flow_run_id(), data_docs=True)
        record_lineage(lineage, settings, gate.summary, ops.batch_records(con, gate.validated))
    summary = gate.summary
    if summary is not None and summary.data_docs_index:
        create_link_artifact(
            key="gx-data-docs",
            link=summary.data_docs_index.as_uri(),
            link_text="Great Expectations data docs",
            description="Validation results of this run",
        )
    if summary is not None or gate.blocking:
        create_markdown_artifact(
            key="validation-summary",
            markdown=(
                (
                    f"**Validation** {'passed' if summary.success else 'FAILED'}  \n"
                    f"critical failures: {len(summary.critical_failures)}  \n"
                    f"warnings: {len(summary.warning_failures)}, rows quarantined: {summary.quarantined_rows}\n\n"
                    + "\n".join(f"- {m}" for m in summary.critical_failures + summary.warning_failures)
                    if summary is not None
                    else "**Validation**: no new batch\n"
                )
                + ("\n\n**Blocked**: " + blocking_message(gate.blocking) if gate.blocking else "")
            ),
        )
    gate.raise_if_blocked()
    logger.info(
        "validation gate open: %d batch(es) validated now, %d rows quarantined",
        len(gate.validated),
        summary.quarantined_rows if summary else 0,
    )
    return summary


def record_lineage(
    lineage: ol.LineageRun, settings: Settings, summary: ValidationSummary | None, batches: list[ops.BatchRecord]
) -> None:
    """The raw tables of the batches validated -> the validation record, the batches' states, the contract's
    quarantine and the data docs; the batch ids and the validation result."""
    lineage.add_inputs(*(ol.table(settings, f"raw.{b.entity}") for b in batches))
    lineage.set_ids(raw_batch_ids=[b.batch_id for b in batches])
    if summary is None:
        return
    lineage.add_outputs(
        ol.table(settings, "ops.validation_runs", rows=1),
        ol.table(settings, "ops.ingest_batches"),
        ol.table(settings, "ops.quarantine", rows=summary.quarantined_rows),
    )
    lineage.set_ids(validation_id=summary.validation_id)
    if summary.data_docs_index is not None:
        lineage.add_outputs(ol.file_dataset(summary.data_docs_index.parent))
    lineage.count(
        batches_validated=len(batches),
        validation_success=int(summary.success),
        critical_failures=len(summary.critical_failures),
        warning_failures=len(summary.warning_failures),
        rows_quarantined=summary.quarantined_rows,
    )
