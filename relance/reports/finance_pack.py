"""Everything the weekly finance report and the daily flash show, read once from the warehouse into plain frames.

:func:`load_finance_pack` reads the dbt serving relations of one as-of date (every figure is computed in SQL; the
builders in :mod:`relance.reports.finance_tables` only group, format and lay out) and a few ops tables through
their owner, :mod:`relance.ops`. A relation that a warehouse built by an earlier version lacks is ``None`` in the
pack and listed in :attr:`FinancePack.missing`: its section then says "not available" instead of failing the
report.

The cash-in forecast is computed by ``models.cashflow.cash_forecast`` (the ML layer, which this library may not
import): the flow passes its result in, or anything with the same attributes (``weeks``, ``backtest``, ``wape``,
``baselines``, ``notes``). No forecast (``None``) is a section that says so.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Protocol

import pandas as pd

from relance.warehouse import read_for_date, relation_exists

log = logging.getLogger(__name__)

#: The serving relations of the report, by the pack's field name.
RELATIONS: dict[str, str] = {
    "aged_by_customer": "serving.report_aged_balance_by_customer",
    "aged_balance": "serving.report_aged_balance",
    "dso": "serving.report_dso",
    "dso_trend": "serving.report_dso_trend",
    "cei": "serving.report_cei",
    "reminder_performance": "serving.report_reminder_performance",
    "late_payment_cost": "serving.report_late_payment_cost",
    "at_risk": "serving.report_at_risk_exposure",
    "experiment_outcomes": "serving.reminder_experiment_outcomes",
}
_ORDER: dict[str, str] = {
    "aged_by_customer": "currency, customer_id",  # the builders rank by balance
    "aged_balance": "currency, bucket_order",
    "dso": "currency",
    "dso_trend": "currency, week_end_date",
    "cei": "currency, period_start, period_end",
    "reminder_performance": "currency, scenario, channel, tone",
    "late_payment_cost": "currency",
    "at_risk": "currency, risk_rank",
    "experiment_outcomes": "scenario, customer_id",
}

#: The columns each builder reads (extra columns are kept and ignored).
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "aged_by_customer": (
        "currency",
        "customer_id",
        "customer_name",
        "customer_type",
        "size_band",
        "sector_section",
        "not_due",
        "d1_30",
        "d31_60",
        "d61_90",
        "d90_plus",
        "total_open",
        "invoice_count",
        "overdue_amount",
    ),
    "aged_balance": ("currency", "aging_bucket", "invoice_count", "open_amount"),
    "dso": ("currency", "receivables", "sales_90d", "dso_days"),
    "dso_trend": ("currency", "week_end_date", "receivables", "dso_countback_days", "dso_simple_days"),
    "cei": (
        "currency",
        "period",
        "period_start",
        "period_end",
        "beginning_receivables",
        "sales",
        "ending_receivables",
        "ending_current_receivables",
        "cei_pct",
    ),
    "reminder_performance": (
        "currency",
        "scenario",
        "channel",
        "tone",
        "messages",
        "customers",
        "amount_covered",
        "paid_14d_messages",
        "paid_14d_amount",
        "paid_14d_rate",
        "median_days_to_pay",
    ),
    "late_payment_cost": (
        "currency",
        "overdue_amount",
        "amount_days_overdue",
        "annual_rate",
        "cost_to_date",
        "cost_last_13_weeks",
    ),
    "at_risk": (
        "invoice_id",
        "customer_id",
        "customer_name",
        "currency",
        "open_amount",
        "days_overdue",
        "p_late",
        "risk_grade",
        "predicted_payment_date",
        "reason_1",
        "expected_at_risk",
        "risk_rank",
    ),
    "experiment_outcomes": ("scenario", "arm", "first_channel", "is_paid"),
    "forecast_weeks": ("currency", "week_start", "week_end", "expected", "p10", "p50", "p90", "invoice_count"),
    "forecast_backtest": ("currency", "week_start", "week_end", "forecast", "actual", "abs_error"),
}

#: The report lists the risk alerts raised in this many days up to its date (the flash: those of the day).
ALERT_DAYS = 7


class ForecastLike(Protocol):
    """What the report reads of ``models.cashflow.CashForecast``."""

    weeks: pd.DataFrame
    backtest: pd.DataFrame
    wape: dict[str, float]
    baselines: dict[str, dict[str, float]]
    notes: list[str]


@dataclass(frozen=True)
class FinancePack:
    """The inputs of the finance outputs for one as-of date: one frame per relation, ``None`` when unavailable.

    ``missing`` maps a field to the relation that was not there (the section says so); ``forecast_weeks`` and
    ``forecast_backtest`` are the forecast's frames, ``wape`` and ``baselines`` its scores per currency.
    """

    as_of_date: date
    aged_by_customer: pd.DataFrame | None = None
    aged_balance: pd.DataFrame | None = None
    dso: pd.DataFrame | None = None
    dso_trend: pd.DataFrame | None = None
    cei: pd.DataFrame | None = None
    reminder_performance: pd.DataFrame | None = None
    late_payment_cost: pd.DataFrame | None = None
    at_risk: pd.DataFrame | None = None
    experiment_outcomes: pd.DataFrame | None = None
    alerts: pd.DataFrame | None = None
    reminders_today: pd.DataFrame | None = None
    forecast_weeks: pd.DataFrame | None = None
    forecast_backtest: pd.DataFrame | None = None
    wape: dict[str, float] = field(default_factory=dict)
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)
    forecast_notes: tuple[str, ...] = ()
    missing: dict[str, str] = field(default_factory=dict)
    model_version: str | None = None
    model_note: str | None = None
    stale_sources: dict[str, str] = field(default_factory=dict)
    flow_run_id: str | None = None
    late_payment_cost_rate: float | None = None
    top_n: int = 20
    forecast_weeks_count: int = 13

    def __post_init__(self) -> None:
        for name, columns in REQUIRED_COLUMNS.items():
            frame = getattr(self, name)
            if frame is None:
                continue
            lacking = [c for c in columns if c not in frame.columns]
            if lacking:
                raise ValueError(
                    f"{RELATIONS.get(name, name)} is missing columns {lacking} (has {list(frame.columns)})"
                )

    def currencies(self) -> list[str]:
        """Every currency any section has rows for, sorted."""
        found: set[str] = set()
        for name in ("aged_by_customer", "aged_balance", "dso", "dso_trend", "cei", "late_payment_cost"):
            frame = getattr(self, name)
            if frame is not None and not frame.empty:
                found |= {str(c) for c in frame["currency"].dropna()}
        if self.forecast_weeks is not None and not self.forecast_weeks.empty:
            found |= {str(c) for c in self.forecast_weeks["currency"].dropna()}
        return sorted(found)


def forecast_fields(forecast: ForecastLike | None) -> dict[str, Any]:
    """The pack's forecast fields from a ``CashForecast`` (or ``None``: the section says no forecast)."""
    if forecast is None:
        return {}
    return {
        "forecast_weeks": forecast.weeks,
        "forecast_backtest": forecast.backtest,
        "wape": {str(k): _float(v) for k, v in (forecast.wape or {}).items()},
        "baselines": {
            str(name): {str(k): _float(v) for k, v in scores.items()}
            for name, scores in (forecast.baselines or {}).items()
        },
        "forecast_notes": tuple(str(n) for n in (forecast.notes or ())),
    }


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def load_finance_pack(
    con: Any,
    as_of_date: date,
    *,
    forecast: ForecastLike | None = None,
    **options: Any,
) -> FinancePack:
    """Read the report's relations for ``as_of_date`` (see :data:`RELATIONS`), the risk alerts of the last
    :data:`ALERT_DAYS` days and the day's planned reminders. ``options`` are the pack's other fields
    (``model_version``, ``model_note``, ``stale_sources``, ``flow_run_id``, ``late_payment_cost_rate``,
    ``top_n``, ``forecast_weeks_count``)."""
    from relance import ops

    frames: dict[str, Any] = {}
    missing: dict[str, str] = {}
    for name, relation in RELATIONS.items():
        if relation_exists(con, relation):
            frames[name] = read_for_date(con, relation, as_of_date, order_by=_ORDER[name])
        else:
            log.warning("%s is not in this warehouse: its section of the finance report is left out", relation)
            frames[name] = None
            missing[name] = relation
    alerts = ops.read_alerts(con)
    if not alerts.empty:
        raised = pd.to_datetime(alerts["as_of_date"]).dt.date
        alerts = alerts[(raised <= as_of_date) & (raised > as_of_date - timedelta(days=ALERT_DAYS))]
    _decisions, planned, _blocks = ops.reminder_day(con, as_of_date)
    return FinancePack(
        as_of_date=as_of_date,
        **frames,
        alerts=alerts.reset_index(drop=True),
        reminders_today=planned,
        missing=missing,
        **forecast_fields(forecast),
        **options,
    )
