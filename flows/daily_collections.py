"""The daily collections pipeline: ingest -> validate -> dbt features -> train -> score -> remind -> report."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows._common import current_flow_run_id
from flows._lineage import flow_lineage
from flows._notify_failure import notify_failure
from flows.build_features import build_features
from flows.import_call_outcomes import import_call_outcomes_flow
from flows.ingest_receivables import ingest_receivables
from flows.publish_finance_report import publish_finance_report
from flows.raise_risk_alerts import AlertsResult, raise_risk_alerts
from flows.refresh_company_risk import RiskRefresh, refresh_company_risk
from flows.score_invoices import score_invoices
from flows.send_reminders import send_reminders
from flows.train_model import train_model
from flows.validate_receivables import validate_receivables
from relance import openlineage as ol
from relance.freshness import send_verdict, today_in
from relance.lineage import git_sha, package_version
from relance.runs import DailyResult, daily_run_lock
from relance.settings import Settings, parse_as_of
from relance.warehouse import connection
from relance.webhooks.load import drain as drain_provider_events

T = TypeVar("T")


@flow(name="daily-collections", log_prints=False, on_failure=[notify_failure], on_crashed=[notify_failure])
def daily_collections(
    as_of_date: date | None = None,
    settings: Settings | None = None,
    full_refresh_features: bool = False,
    send_backfill: bool = False,
    allow_stale_sources: bool = False,
    weekly_report: bool | None = None,
) -> DailyResult:
    """One day of collections. Re-running a date is safe: loads are idempotent and sends exactly-once; two runs on
    one data directory at the same time are not (the second refuses at once, see ``relance.runs``).

    ``full_refresh_features`` rebuilds every training snapshot from raw instead of only the new ones. Reminders go
    out only when the as-of date is today and every source is fresh (``relance.freshness``); ``send_backfill``
    and ``allow_stale_sources`` lift one check each. ``weekly_report``: write and email the weekly finance report
    too (None: on Mondays; the flash goes out every day).
    """
    settings = settings or Settings()
    settings.ensure_dirs()
    as_of = parse_as_of(as_of_date, today_in(settings.timezone))  # the freshness guard's "today"
    with daily_run_lock(settings.data, as_of_date=as_of, what="daily-collections flow"):
        # the daily run is the root of every OpenLineage run below it (its subflows find it as their parent)
        with flow_lineage(settings, "daily-collections", as_of_date=as_of) as lineage:
            result = _daily(settings, as_of, full_refresh_features, send_backfill, allow_stale_sources, weekly_report)
            lineage.set_ids(
                dbt_invocation_id=result.dbt_invocation_id, model_version=result.champion_version, git_sha=git_sha()
            )
            lineage.count(
                batches_loaded=result.batches_loaded, scored=result.scored, reminders_sent=result.reminders_sent
            )
        return result


def _daily(
    settings: Settings,
    as_of: date,
    full_refresh_features: bool,
    send_backfill: bool,
    allow_stale_sources: bool,
    weekly_report: bool | None,
) -> DailyResult:
    logger = get_run_logger()
    logger.info("daily collections as of %s, data in %s", as_of, settings.data)

    loads = ingest_receivables(settings)
    batch_ids = [b.batch_id for b in loads if b.status == "loaded"]
    if (run := ol.current()) is not None:
        run.set_ids(raw_batch_ids=batch_ids)
    # the gate: every batch not validated yet is validated now, and any batch that failed its contract (in this
    # run or an earlier one) stops the run here
    validation = validate_receivables(settings)
    # company-risk data before dbt: today's notices reach today's features, stops and claims. Never fails the day.
    risk: RiskRefresh | None = _never_fails(
        logger, "company-risk refresh", lambda: refresh_company_risk(settings, as_of)
    )

    # collectors' call outcomes dropped in <landing>/calls: today's promises and disputes pause tomorrow's plan
    _never_fails(logger, "call outcomes import", lambda: import_call_outcomes_flow(settings))
    # provider events the webhook service kept while the warehouse was busy (bounces, opt-outs, deliveries)
    _never_fails(logger, "provider events", lambda: drain_provider_events(settings))

    dbt_invocation = build_features(settings, as_of, stage="features", full_refresh=full_refresh_features)
    lineage = {
        "prefect.flow_run_id": current_flow_run_id() or "",
        "dbt.invocation_id": dbt_invocation,
        "git.sha": git_sha(),
        "relance.version": package_version(),
        "as_of_date": as_of.isoformat(),
        "raw.batch_ids": ",".join(batch_ids),
    }
    trained = train_model(settings, as_of, lineage)
    scoring = score_invoices(settings, as_of, dbt_invocation)
    build_features(settings, as_of, stage="serving", docs=True)
    # alerts and claim tasks whatever the sending verdict: an insolvency is news even on a day nothing is sent
    alerts: AlertsResult | None = _never_fails(logger, "risk alerts", lambda: raise_risk_alerts(settings, as_of))
    lineage |= {
        "model.version": scoring.model_version,
        "model.run_id": scoring.model_run_id,
        "model.target_name": scoring.target_name or "",  # what the score that chose each reminder means
    }
    with connection(settings.warehouse) as con:
        verdict = send_verdict(
            con,
            as_of=as_of,
            source_names=[b.source_name for b in loads],
            timezone=settings.timezone,
            max_source_age_hours=settings.max_source_age_hours,
            send_backfill=send_backfill,
            allow_stale_sources=allow_stale_sources,
        )
    for reason in verdict.overridden:
        logger.warning("sending although %s", reason)
    if verdict.allowed:
        delivery = send_reminders(settings, as_of, lineage)
        sent, already, failed = delivery.sent, delivery.skipped_already_sent, delivery.failed
        blocked = delivery.blocked
    else:
        sent = already = failed = blocked = 0
        for reason in verdict.reasons:
            logger.warning("nothing sent: %s", reason)
        create_markdown_artifact(
            key="sending-held",
            markdown="**Nothing was sent** (features, scores and reports were computed):\n\n"
            + "\n".join(f"- {r}" for r in verdict.reasons),
        )
    report = publish_finance_report(
        settings,
        as_of,
        scoring.model_version,
        model_note=None if trained.trained else trained.reason,
        stale_sources=risk.stale if risk else None,
        weekly=weekly_report,
    )

    return DailyResult(
        as_of_date=as_of,
        flow_run_id=current_flow_run_id(),
        batches_loaded=len(batch_ids),
        rows_quarantined=validation.quarantined_rows if validation else 0,
        dbt_invocation_id=dbt_invocation,
        candidate_version=trained.model_version,
        promoted=trained.promoted,
        champion_version=scoring.model_version,
        scored=scoring.scored,
        reminders_sent=sent,
        reminders_already_sent=already,
        reminders_failed=failed,
        report_html=report.html_path,
        sending_held=tuple(verdict.reasons),
        model_trained=trained.trained,
        model_note="" if trained.trained else trained.reason,
        risk_events_read=risk.events_read if risk else 0,
        risk_stale_sources=tuple(sorted(risk.stale)) if risk else (),
        reminders_blocked=blocked,
        alerts_new=alerts.new_alerts if alerts else 0,
        claims_to_declare=alerts.claims_open if alerts else 0,
        forecast_wape="; ".join(f"{cur} {text}" for cur, text in report.forecast_wape.items()),
    )


def _never_fails(logger: Any, what: str, step: Callable[[], T]) -> T | None:
    """Run a step whose failure must not stop the daily run (risk data is an input to caution, not a gate):
    the error is logged and shown as an artifact, and the day goes on without it."""
    try:
        return step()
    except Exception as exc:
        logger.exception("%s failed; the run goes on without it", what)
        create_markdown_artifact(
            key=f"failed-{what.replace(' ', '-').lower()}",
            markdown=f"**{what} failed**; the run went on without it: `{type(exc).__name__}: {exc}`",
        )
        return None
