"""Hourly risk watch: new company-risk notices loaded and turned into alerts within the hour, not the next morning.

Refreshes the company-risk data (``flows.refresh_company_risk``: notice files or the live registries) and raises the
alerts that hold today (``flows.raise_risk_alerts``: an insolvency notice emailed to finance once, claim tasks). The
insolvency check reads current-state views, so a notice loaded now is an alert now; what depends on the day's dbt
build (claims, payer degradation) is read for today once the daily run has built it. While a daily run (or any
holder of the data directory's lock) is busy the watch does nothing and says so: the next hour catches up, and the
daily run refreshes the same data itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from prefect import flow, get_run_logger

from flows._notify_failure import notify_failure
from flows.raise_risk_alerts import raise_risk_alerts
from flows.refresh_company_risk import refresh_company_risk
from relance.freshness import today_in
from relance.runs import RunInProgressError, daily_run_lock
from relance.settings import Settings, parse_as_of
from relance.warehouse import connection, relation_exists

#: What raise_risk_alerts reads: built by the daily run's serving stage (a warehouse before its first daily run
#: has none of them, and the watch then only loads the data).
ALERT_RELATIONS: tuple[str, ...] = (
    "serving.customer_risk_status",
    "serving.customer_risk_events",
    "serving.claim_declarations",
    "serving.claim_declaration_invoices",
    "serving.payer_degradation",
    "marts.customers",
)


@dataclass(frozen=True)
class RiskWatchResult:
    as_of_date: date
    skipped: str | None = None  # why nothing was done (the lock was held)
    events_read: int = 0
    stale_sources: tuple[str, ...] = ()
    alerts_raised: bool = False
    new_alerts: int = 0
    emailed: int = 0


@flow(name="watch-company-risk", on_failure=[notify_failure], on_crashed=[notify_failure])
def watch_company_risk(as_of_date: date | None = None) -> RiskWatchResult:
    """Refresh the risk data and raise today's alerts (``as_of_date``: default today in the configured time zone)."""
    logger = get_run_logger()
    settings = Settings()
    settings.ensure_dirs()
    as_of = parse_as_of(as_of_date, today_in(settings.timezone))
    try:
        with daily_run_lock(settings.data, as_of_date=as_of, what="watch-company-risk flow"):
            risk = refresh_company_risk(settings, as_of)
            with connection(settings.warehouse) as con:
                missing = [r for r in ALERT_RELATIONS if not relation_exists(con, r)]
            if missing:
                logger.warning("no alerts: %s not built yet (the first daily run builds them)", ", ".join(missing))
                return RiskWatchResult(as_of, events_read=risk.events_read, stale_sources=tuple(sorted(risk.stale)))
            alerts = raise_risk_alerts(settings, as_of)
    except RunInProgressError as exc:
        logger.info("risk watch skipped: %s", exc)
        return RiskWatchResult(as_of, skipped=str(exc))
    return RiskWatchResult(
        as_of,
        events_read=risk.events_read,
        stale_sources=tuple(sorted(risk.stale)),
        alerts_raised=True,
        new_alerts=alerts.new_alerts,
        emailed=alerts.emailed,
    )
