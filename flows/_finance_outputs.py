"""The steps of the finance outputs (the daily flash, the weekly report), shared by the daily run's report flow
(flows/publish_finance_report.py) and the weekly deployment's flow (flows/publish_weekly_report.py).

For one kind and as-of date: read the serving relations and the cash-in forecast into a pack, write the files
(``<reports_dir>/<as_of>/<kind>/``, both languages), record the run in ``ops.report_runs`` (kind
``finance-<kind>``), email each recipient group of ``settings.recipients_for(kind)`` in its language exactly once
(SendGrid with a key, else ``settings.finance_outbox``), and publish Prefect artifacts: one markdown per language
(``finance-<kind>-<lang>``) and the summary table (``finance-<kind>``).

The weekly report carries the forecast's backtest over ``settings.forecast_backtest_weeks`` past weeks (a model is
fitted per origin: it takes a while); the flash only the forecast (no backtest).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from models.cashflow import CashForecast, CashForecastError, cash_forecast
from relance import ops
from relance.channels import transport_factory
from relance.reports.finance_outputs import (
    Delivery,
    FinanceDeliveryError,
    FinanceOutputs,
    send_finance_outputs,
    write_finance_outputs,
)
from relance.reports.finance_pack import load_finance_pack
from relance.reports.finance_tables import Kind
from relance.send_ledger import SendLedger
from relance.settings import Settings
from relance.warehouse import connection, read_for_date, relation_exists

log = logging.getLogger(__name__)

#: The daily run writes and sends the weekly report too on this weekday (Monday), besides the flash; the weekly
#: deployment (Monday 07:00) then finds its emails sent and only rewrites the files.
WEEKLY_WEEKDAY = 0


class ReportNotReadyError(RuntimeError):
    """The warehouse holds no serving figures for the as-of date: the daily run of that date has not built them."""


@dataclass(frozen=True)
class Published:
    kind: Kind
    outputs: FinanceOutputs
    deliveries: list[Delivery]
    report_id: str
    forecast: CashForecast | None = None

    def forecast_wape(self) -> dict[str, str]:
        """The cash-in forecast's backtest WAPE per currency beside its baselines and the floor a perfect forecast
        would still show, as one line each for a person (empty without a backtest: the flash has none)."""
        f = self.forecast
        if f is None or not f.wape:
            return {}

        def pct(v: float | None) -> str:
            return "n/a" if v is None or v != v else f"{v:.1%}"

        return {
            cur: f"{pct(w)} over {len(f.backtest[f.backtest['currency'] == cur])} week(s) "
            f"(due date {pct(f.baselines.get('due_date', {}).get(cur))}, customer mean "
            f"{pct(f.baselines.get('customer_mean', {}).get(cur))}, floor {pct(f.noise_wape.get(cur))})"
            for cur, w in sorted(f.wape.items())
        }


def is_weekly_day(as_of_date: date) -> bool:
    return as_of_date.weekday() == WEEKLY_WEEKDAY


def require_figures(settings: Settings, as_of_date: date) -> None:
    """Raise :class:`ReportNotReadyError` unless the serving relations were built for ``as_of_date`` (they hold
    the last daily run's date only): a report on another day's figures would be wrong, not late."""
    with connection(settings.warehouse) as con:  # read-write, like every other: one configuration per process
        built = (
            relation_exists(con, "serving.report_aged_balance")
            and not read_for_date(con, "serving.report_aged_balance", as_of_date).empty
        )
    if not built:
        raise ReportNotReadyError(
            f"no serving figures for {as_of_date} in {settings.warehouse}: the daily run of that date has not built "
            f"them (relance run daily --as-of {as_of_date})"
        )


def _forecast(con: Any, settings: Settings, as_of_date: date, kind: Kind) -> CashForecast | None:
    try:
        return cash_forecast(
            con,
            as_of_date,
            weeks=settings.forecast_weeks,
            backtest_weeks=settings.forecast_backtest_weeks if kind == "weekly" else 0,
            refit_every=settings.forecast_refit_every_weeks,
        )
    except CashForecastError as exc:  # a warehouse built before the forecast's input relation
        log.warning("no cash-in forecast in the finance %s: %s", kind, exc)
        return None


def publish_outputs(
    settings: Settings,
    as_of_date: date,
    kind: Kind,
    *,
    flow_run_id: str | None,
    model_version: str | None = None,
    model_note: str | None = None,
    stale_sources: dict[str, str] | None = None,
) -> Published:
    """Write, record, email and publish the ``kind`` outputs of ``as_of_date`` (see the module docstring)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    with connection(settings.warehouse) as con:
        forecast = _forecast(con, settings, as_of_date, kind)
        pack = load_finance_pack(
            con,
            as_of_date,
            forecast=forecast,
            model_version=model_version,
            model_note=model_note,
            stale_sources=dict(stale_sources or {}),
            flow_run_id=flow_run_id,
            late_payment_cost_rate=settings.late_payment_cost_rate,
            top_n=settings.report_top_n,
            forecast_weeks_count=settings.forecast_weeks,
        )
        outputs = write_finance_outputs(pack, kind, settings.reports_dir)
        primary = "fr" if "fr" in outputs.html else next(iter(outputs.html))
        report_id = ops.record_report_run(
            con,
            kind=f"finance-{kind}",
            as_of_date=as_of_date,
            html_path=str(outputs.html[primary]),
            csv_paths=outputs.paths(),
            model_version=model_version,
            created_at=now,
            flow_run_id=flow_run_id,
        )
    # relance's own emails to finance: their ledger and outbox, apart from the customers' reminders
    transport = transport_factory(settings, as_of_date, outbox_dir=settings.finance_outbox)("email")
    with SendLedger(settings.notification_ledger) as ledger:
        deliveries = send_finance_outputs(
            outputs,
            settings.recipients_for(kind),
            ledger=ledger,
            transport=transport,
            sender_email=settings.sender_email,
            sender_name=settings.sender_name,
            flow_run_id=flow_run_id,
            now=now,
        )
    sent = ", ".join(f"{d.group}: {d.status}" for d in deliveries) or "no recipient group"
    for language in outputs.html:
        create_markdown_artifact(
            key=f"finance-{kind}-{language}",
            markdown=outputs.markdown(language),
            description=f"Finance {kind} as of {as_of_date} ({language}); emails: {sent}",
        )
    create_table_artifact(
        key=f"finance-{kind}",
        table=outputs.summary_rows,
        description=f"Finance {kind} key figures per currency as of {as_of_date}",
    )
    return Published(kind, outputs, deliveries, report_id, forecast)


def raise_if_undelivered(published: Sequence[Published]) -> None:
    """Fail the run (after every file, record and artifact is written) when an email failed or its outcome is
    unknown: a rerun sends only what failed, never one in doubt."""
    deliveries = [d for p in published for d in p.deliveries]
    if any(d.error for d in deliveries):
        raise FinanceDeliveryError(deliveries)
