"""Validate freshly loaded raw batches with the Great Expectations suites; stop the run on critical failures."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_link_artifact, create_markdown_artifact

from expectations.runner import CriticalValidationError, ValidationSummary, validate_batches
from flows._common import current_flow_run_id
from relance.settings import Settings
from relance.warehouse import connection


@flow(name="validate-receivables")
def validate_receivables(settings: Settings, batch_ids: list[str]) -> ValidationSummary:
    logger = get_run_logger()
    with connection(settings.warehouse) as con:
        # data docs on: the run's link artifact below points at them
        summary = validate_batches(
            con, batch_ids, gx_dir=settings.gx_dir, flow_run_id=current_flow_run_id(), data_docs=True
        )
    if summary.data_docs_index:
        create_link_artifact(
            key="gx-data-docs",
            link=summary.data_docs_index.as_uri(),
            link_text="Great Expectations data docs",
            description="Validation results of this run",
        )
    create_markdown_artifact(
        key="validation-summary",
        markdown=(
            f"**Validation** {'passed' if summary.success else 'FAILED'}  \n"
            f"critical failures: {len(summary.critical_failures)}  \n"
            f"warnings: {len(summary.warning_failures)}, rows quarantined: {summary.quarantined_rows}\n\n"
            + "\n".join(f"- {m}" for m in summary.critical_failures + summary.warning_failures)
        ),
    )
    if not summary.success:
        raise CriticalValidationError(
            "critical data-contract failures; nothing downstream runs:\n- " + "\n- ".join(summary.critical_failures)
        )
    logger.info("validation passed, %d rows quarantined", summary.quarantined_rows)
    return summary
