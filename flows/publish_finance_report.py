"""The daily run's finance outputs: the day's report (aged balance, DSO, top at-risk exposure, alerts, claims,
reminders) as HTML + CSV, the daily flash to the 'flash' recipient groups, and on Mondays (or when asked) the
weekly report to the 'weekly' groups. See flows/_finance_outputs.py for the flash and the weekly report; the weekly
deployment's own flow is flows/publish_weekly_report.py."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import duckdb
import pandas as pd
from prefect import flow, get_run_logger
from prefect.artifacts import create_link_artifact, create_table_artifact

from flows._common import current_flow_run_id
from flows._finance_outputs import Published, is_weekly_day, publish_outputs, raise_if_undelivered
from flows._lineage import flow_lineage
from relance import openlineage as ol
from relance import ops
from relance.reminders.experiment import holdout_effect
from relance.reports.finance import FinanceReport, reminder_section, write_finance_report
from relance.reports.finance_pack import RELATIONS
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
    weekly: bool | None = None,
) -> FinanceReport:
    """The day's report, the flash, and the weekly report when ``weekly`` is True (None: on Mondays).

    ``model_note``: why no model was trained today (the report then opens with a banner saying so);
    ``stale_sources``: company-risk sources without a recent good answer (a banner too). Emails go to each
    recipient group once per (kind, date, group); when one could not be sent, the run fails after everything
    else is written (``FinanceDeliveryError``) and a rerun sends only that one."""
    reads = [ol.table(settings, r) for r in (*RELATIONS.values(), "serving.claim_declarations", "ops.risk_alerts")]
    with flow_lineage(
        settings, "publish-finance-report", as_of_date=as_of_date, inputs=reads, ids={"model_version": model_version}
    ) as lineage:
        report, published = _publish(settings, as_of_date, model_version, model_note, stale_sources, weekly)
        files = (report.html_path, *report.csv_paths.values(), *report.html_paths.values(), *report.xlsx_paths.values())
        lineage.add_outputs(ol.table(settings, "ops.report_runs"), *(ol.file_dataset(p) for p in files))
        if report.emails:
            lineage.add_outputs(
                ol.sqlite_dataset(settings.notification_ledger),
                ol.channel_dataset(settings, "email", outbox_dir=settings.finance_outbox),
            )
    raise_if_undelivered(published)
    return report


def _publish(
    settings: Settings,
    as_of_date: date,
    model_version: str | None,
    model_note: str | None,
    stale_sources: dict[str, str] | None,
    weekly: bool | None,
) -> tuple[FinanceReport, list[Published]]:
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

    kinds = ["flash"] + (["weekly"] if (is_weekly_day(as_of_date) if weekly is None else weekly) else [])
    published: list[Published] = []
    for kind in kinds:
        done = publish_outputs(
            settings,
            as_of_date,
            kind,
            flow_run_id=flow_run_id,
            model_version=model_version,
            model_note=model_note,
            stale_sources=stale_sources,
        )
        logger.info(
            "finance %s at %s; emails: %s",
            kind,
            done.outputs.directory,
            ", ".join(f"{d.group} {d.status}" for d in done.deliveries) or "no recipient group",
        )
        published.append(done)
    report = dataclasses.replace(
        report,
        html_paths={f"{p.kind}_{lang}": path for p in published for lang, path in p.outputs.html.items()},
        xlsx_paths={f"{p.kind}_{lang}": path for p in published for lang, path in p.outputs.xlsx.items()},
        emails={f"{p.kind}:{d.group}": d.status for p in published for d in p.deliveries},
        forecast_wape={cur: text for p in published for cur, text in p.forecast_wape().items()},
    )
    return report, published
