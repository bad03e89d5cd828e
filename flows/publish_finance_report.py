"""Write the finance report (aged balance, DSO, top at-risk exposure) as HTML + CSV and a Prefect artifact."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import duckdb
import pandas as pd
from prefect import flow, get_run_logger
from prefect.artifacts import create_link_artifact, create_table_artifact

from flows._common import current_flow_run_id
from relance import ops
from relance.reminders.experiment import holdout_effect
from relance.reports.finance import FinanceReport, reminder_section, write_finance_report
from relance.settings import Settings
from relance.warehouse import connection, read_for_date

#: The report lists the alerts raised in this many days before its date.
ALERT_DAYS = 30


def _recent_alerts(con, as_of_date: date) -> pd.DataFrame:
    alerts = ops.read_alerts(con)
    if alerts.empty:
        return alerts
    raised = pd.to_datetime(alerts["as_of_date"]).dt.date
    return alerts[(raised <= as_of_date) & (raised > as_of_date - timedelta(days=ALERT_DAYS))]


def _claims(con, as_of_date: date) -> pd.DataFrame | None:
    try:
        return read_for_date(con, "serving.claim_declarations", as_of_date, order_by="deadline_date, claim_id")
    except duckdb.CatalogException:  # a warehouse whose serving models predate the risk data
        return None


def _reminders(con, as_of_date: date) -> dict | None:
    """Today's reminder decisions, messages and blocks, and the holdout effect (None on a warehouse before them)."""
    try:
        decisions, planned, blocks = ops.reminder_day(con, as_of_date)
        outcomes = read_for_date(con, "serving.reminder_experiment_outcomes", as_of_date)
    except duckdb.CatalogException:
        return None
    effect = holdout_effect(outcomes.rename(columns={"first_channel": "channel"})) if not outcomes.empty else None
    return reminder_section(decisions, planned, blocks, effect)


@flow(name="publish-finance-report")
def publish_finance_report(
    settings: Settings,
    as_of_date: date,
    model_version: str | None,
    model_note: str | None = None,
    stale_sources: dict[str, str] | None = None,
) -> FinanceReport:
    """``model_note``: why no model was trained today (the report then opens with a banner saying so);
    ``stale_sources``: company-risk sources without a recent good answer (a banner too)."""
    logger = get_run_logger()
    flow_run_id = current_flow_run_id()
    with connection(settings.warehouse) as con:
        report = write_finance_report(
            read_for_date(con, "serving.report_aged_balance", as_of_date, order_by="currency, bucket_order"),
            read_for_date(con, "serving.report_dso", as_of_date, order_by="currency"),
            # every row to the CSV; the HTML shows the top N of each currency (risk_rank is per currency)
            read_for_date(con, "serving.report_at_risk_exposure", as_of_date, order_by="currency, risk_rank"),
            as_of_date=as_of_date,
            out_dir=settings.reports_dir,
            model_version=model_version,
            flow_run_id=flow_run_id,
            top_n=settings.report_top_n,
            model_note=model_note,
            alerts=_recent_alerts(con, as_of_date),
            claims=_claims(con, as_of_date),
            stale_sources=stale_sources,
            reminders=_reminders(con, as_of_date),
        )
        ops.record_report_run(
            con,
            kind="finance",
            as_of_date=as_of_date,
            html_path=str(report.html_path),
            csv_paths={name: str(path) for name, path in report.csv_paths.items()},
            model_version=model_version,
            created_at=datetime.now(UTC).replace(tzinfo=None),
            flow_run_id=flow_run_id,
        )
    create_table_artifact(
        key="finance-report", table=report.summary_rows, description=f"Aged balance and DSO as of {as_of_date}"
    )
    create_link_artifact(key="finance-report-html", link=report.html_path.as_uri(), link_text="Finance report (HTML)")
    logger.info("finance report at %s", report.html_path)
    return report
