"""The weekly finance report as a deployment of its own (infra/prefect.yaml: Mondays 07:00 Europe/Paris).

Only JSON parameters (a deployment run starts from an API call): the settings are built here from the RELANCE_*
environment. It reports on figures the daily run has built for the same date (the serving relations hold the last
daily run's date): run after Monday's daily run, it finds them; when they are not there (the daily run failed or
is late) it fails with :class:`~flows._finance_outputs.ReportNotReadyError`, and its retries give a late daily run
the time to finish. It holds the data directory's run lock while it reads, so it never reads a warehouse a daily
run is rebuilding. Emails already sent for the date (by a Monday daily run, or a first attempt) are not sent again.
"""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger

from flows._common import current_flow_run_id
from flows._finance_outputs import publish_outputs, raise_if_undelivered, require_figures
from flows._notify_failure import notify_failure
from relance.freshness import today_in
from relance.runs import daily_run_lock
from relance.settings import Settings, parse_as_of


@flow(
    name="publish-weekly-report",
    retries=2,
    retry_delay_seconds=900,
    on_failure=[notify_failure],
    on_crashed=[notify_failure],
)
def publish_weekly_report(as_of_date: date | None = None) -> dict[str, str]:
    """Write and send the weekly finance report of ``as_of_date`` (default: today in ``RELANCE_TIMEZONE``).

    Returns its files by name (``html_fr``, ``xlsx_en``, ``chart_dso_fr``...) and each recipient group's email
    status (``email:<group>``)."""
    logger = get_run_logger()
    settings = Settings()
    settings.ensure_dirs()
    as_of = parse_as_of(as_of_date, today_in(settings.timezone))
    with daily_run_lock(settings.data, as_of_date=as_of, what="publish-weekly-report flow"):
        require_figures(settings, as_of)
        published = publish_outputs(settings, as_of, "weekly", flow_run_id=current_flow_run_id())
    logger.info(
        "weekly finance report as of %s in %s; emails: %s",
        as_of,
        published.outputs.directory,
        ", ".join(f"{d.group} {d.status}" for d in published.deliveries) or "no recipient group",
    )
    raise_if_undelivered([published])
    return published.outputs.paths() | {f"email:{d.group}": d.status for d in published.deliveries}
