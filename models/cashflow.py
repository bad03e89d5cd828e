"""The 13-week cash-in forecast from the predicted payment dates, with p10..p90 bands and an honest backtest.

What is forecast: the cash expected to come in, week by week, from the invoices open on ``as_of_date``
(``serving.forecast_open_invoices``: each with its open amount, due date and the day's prediction). Cash from
invoices not issued yet is not in it. Weeks are 7-day windows starting the day after ``as_of_date``: week k is
(as_of + 7(k-1), as_of + 7k].

One invoice's payment date (``payment_distribution``), a probability for each day after the origin:

1. The model predicts days late (settled_date - due_date) as the quantiles p10, p50, p90. Their CDF is piecewise
   linear through (p10, 0.1), (p50, 0.5), (p90, 0.9), with linear tails as long as the neighbouring interval (0 at
   p10 - (p50 - p10), 1 at p90 + (p90 - p50)); a payment on day d is any t in (d - 0.5, d + 0.5].
2. The invoice is open at the origin, so it is paid after it: the CDF is conditioned on t > the origin's day (the
   model already floors its quantiles at the day after; an overdue invoice whose distribution lies wholly in the
   past is paid the day after, before step 3).
3. The quantile models learn from settled invoices only: they describe an invoice that gets paid. The classifier
   says how likely it is still unpaid at its target's date T (``unpaid_30d_after_due``: 30 days after the later of
   due date and origin; ``target_horizon_days``). When the quantiles expect more than 1 - p_late by T, the mass
   before T is scaled down to 1 - p_late and the difference spread evenly over the ``LATE_SPREAD_DAYS`` days after
   T (a late payer pays later, not never; nothing here says when, so evenly).
4. A customer that pays on fixed days of the month (``serving.forecast_customer_payment_days``, from its own
   payments known at the origin: half the demo's cash comes in on payment runs on the 10th and the 25th) has each
   day's probability moved to the nearest of those days (the later on a tie) after the origin. (A split nearer
   the later run day did better on the backtest's own 13 weeks of the demo but worse on the 13 weeks before them,
   on both demo sizes: the midpoint stays.)

Invoices without the three quantiles (not scored, or a model without them) are paid on their due date, or the day
after the origin when it is past; the notes say how many.

Weekly figures per currency: ``expected`` = sum of open amount x P(paid in the week); p10/p50/p90 of the weekly
total by Monte-Carlo (``SIMULATIONS`` seeded draws; in each every invoice is paid in one week or in none,
independently of the others: a payment run that slips or a large customer that fails moves many invoices together,
so the bands understate that risk, and the notes say so); ``invoice_count``: invoices whose median payment date
(the day their probability reaches one half) falls in the week.

The backtest (``backtest``): for each of the last ``backtest_weeks`` weeks, the origin is the day before it
(as_of - 7k). The forecast is the one that could have been made then: the invoices open on the latest snapshot of
``ml.ml_invoice_features`` on or before the origin (a date of the training grid, every ``snapshot_interval_days``:
the rows ``models.backtest.load_backtest_frame`` reads, with their labels) with their features and open amount as
known then; a model fitted on ``models.backtest.training_rows`` of that snapshot (grid rows as of an earlier date
whose label was observed before it; days late only where settled before it; ``models.train.fit_payment_model`` as
``models.backtest.fit_relance`` calls it: the first snapshot's model in full, each later one refitted ``like`` it,
with its number of boosting rounds and its calibration, both chosen on data before the first snapshot; every
``refit_every`` origins, the ones between using the last fit); the customers' payment days known on the snapshot.
Actual: the payments dated in the week (``intermediate.int_payments_allocated_to_invoices``) on those same invoices.
WAPE per currency = sum |forecast - actual| / sum actual over the weeks (NaN when nothing was paid). That measures
the forecast one week ahead (plus the days between snapshot and origin on a coarser grid). The 13-week view
(``horizon``): the forecast made at the oldest origin for each of its ``backtest_weeks`` weeks, against what those
invoices paid, one row per week ahead.

Two baselines beside the model, with facts known at the origin only: ``due_date`` (every invoice paid on its due
date; overdue ones the day after the origin) and ``customer_mean`` (due date + the customer's mean days late over its
invoices settled before the snapshot, 0 when early, from ``models.backtest.load_backtest_frame``; customers without
history: the training rows' mean; never before the day after the origin).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from models.backtest import MIN_TRAIN_ROWS, WEIGHT, BacktestError, load_backtest_frame, parse_target, training_rows
from models.contract import DAYS_LATE, FEATURES_RELATION, PREDICTION, QUANTILE_COLUMNS, TARGET
from models.train import fit_payment_model
from relance.warehouse import read_for_date, relation_exists

logger = logging.getLogger(__name__)

INPUT_RELATION = "serving.forecast_open_invoices"
PAYMENT_DAYS_RELATION = "serving.forecast_customer_payment_days"
PAYMENTS_RELATION = "intermediate.int_payments_allocated_to_invoices"
WEEK_DAYS = 7
SNAP_MARGIN_DAYS = 31  # days computed past the last window, so a payment can move back to a run day inside it
SIMULATIONS = 2000  # Monte-Carlo draws of the weekly totals
SIMULATION_CHUNK = 250  # draws at a time: memory ~ chunk x invoices x weeks bytes
BAND_LEVELS: tuple[float, ...] = (0.1, 0.5, 0.9)
BAND_COLUMNS: tuple[str, ...] = ("p10", "p50", "p90")
BASELINES: tuple[str, ...] = ("due_date", "customer_mean")
MIN_PAID_PER_WEEK = 20  # fewer invoices paid a week on average: the notes say the WAPE means little
LATE_SPREAD_DAYS = 60  # the mass the classifier moves past its date T is spread over (T, T + this]
WEEK_COLUMNS: tuple[str, ...] = (
    "currency",
    "week",
    "week_start",
    "week_end",
    "expected",
    *BAND_COLUMNS,
    "invoice_count",
    "mean_abs_deviation",
)
BACKTEST_COLUMNS: tuple[str, ...] = (
    "currency",
    "week_start",
    "week_end",
    "forecast",
    "actual",
    "abs_error",
    "origin",
    "snapshot_date",
    "model_snapshot_date",
    "weeks_ahead",
    *BAND_COLUMNS,
    "mean_abs_deviation",
    *(f"forecast_{b}" for b in BASELINES),
    "invoice_count",
    "paid_invoice_count",
)

PaymentDays = Mapping[str, tuple[int, ...]]  # customer_id -> its days of the month


class CashForecastError(ValueError):
    """The forecast cannot be made on this warehouse (its input relation was never built)."""


@dataclass(frozen=True)
class CashForecast:
    as_of_date: date
    weeks: pd.DataFrame  # currency, week, week_start, week_end, expected, p10, p50, p90, invoice_count
    backtest: pd.DataFrame  # currency, week_start, week_end, forecast, actual, abs_error (+ BACKTEST_COLUMNS)
    wape: dict[str, float]  # per currency, over the backtest weeks (NaN when not computable)
    baselines: dict[str, dict[str, float]]  # baseline name -> currency -> WAPE
    notes: list[str]  # what the forecast covers / does not, in plain sentences
    horizon: pd.DataFrame = field(default_factory=pd.DataFrame)  # the oldest origin's 1..N weeks ahead
    horizon_wape: dict[str, float] = field(default_factory=dict)  # per currency, over those weeks
    noise_wape: dict[str, float] = field(default_factory=dict)  # per currency: sum mean_abs_deviation / sum actual
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step


# --- windows ----------------------------------------------------------------------------------------------------


def week_windows(origin: date, weeks: int) -> pd.DataFrame:
    """The ``weeks`` 7-day windows after ``origin``: week k (1-based) is [origin + 7(k-1) + 1, origin + 7k]."""
    if weeks < 0:
        raise ValueError(f"weeks must be >= 0, got {weeks}")
    rows = [
        {
            "week": k,
            "week_start": origin + timedelta(days=WEEK_DAYS * (k - 1) + 1),
            "week_end": origin + timedelta(days=WEEK_DAYS * k),
        }
        for k in range(1, weeks + 1)
    ]
    return pd.DataFrame(rows, columns=["week", "week_start", "week_end"])


def _day_offsets(origin: date, days: Sequence[date] | pd.Series) -> np.ndarray:
    return np.array([(pd.Timestamp(d) - pd.Timestamp(origin)).days for d in days], dtype=np.int64)


# --- one invoice's payment date -----------------------------------------------------------------------------------


def _ramp(t: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """0 before a, 1 from b on, linear between (a step at a when b == a). Broadcasts."""
    width = b - a
    with np.errstate(divide="ignore", invalid="ignore"):
        linear = np.clip((t - a) / np.where(width > 0, width, 1.0), 0.0, 1.0)
    return np.where(width > 0, linear, (t >= a).astype(np.float64))


def quantile_cdf(t: np.ndarray, q10: np.ndarray, q50: np.ndarray, q90: np.ndarray) -> np.ndarray:
    """P(days late <= t) from the three quantiles: linear through (p10, .1), (p50, .5), (p90, .9), linear tails as
    long as the neighbouring interval. ``t`` broadcasts against the quantiles (e.g. (n, k) against (n, 1))."""
    lo_tail = q10 - (q50 - q10)
    hi_tail = q90 + (q90 - q50)
    return (
        0.1 * _ramp(t, lo_tail, q10)
        + 0.4 * _ramp(t, q10, q50)
        + 0.4 * _ramp(t, q50, q90)
        + 0.1 * _ramp(t, q90, hi_tail)
    )


def target_horizon_days(target: str | None, days_overdue: np.ndarray) -> np.ndarray:
    """Per invoice, the days late T by which the classifier's p_late says "not paid yet" (P(paid by due + T) =
    1 - p_late), from its target name and the invoice's days overdue at the origin; NaN when the target says
    nothing about the time after the origin (a late_over threshold already passed, or no target)."""
    overdue = np.asarray(days_overdue, dtype=np.float64)
    if not target:
        return np.full(overdue.shape, np.nan)
    kind, n = parse_target(str(target))
    if kind == "unpaid_after_due":
        return np.maximum(overdue, 0.0) + n
    if kind == "unpaid_after":
        return overdue + n
    # late_over: late = paid more than n days after the due date, or never; already decided once that is past
    return np.where(overdue < n, float(n), np.nan)


def payment_probabilities(
    frame: pd.DataFrame, origin: date, starts: np.ndarray, ends: np.ndarray, *, late_spread_days: int = LATE_SPREAD_DAYS
) -> np.ndarray:
    """(invoices x windows) P(paid in the window | open on ``origin``), windows given as day offsets from the origin
    (``starts``..``ends`` inclusive, >= 1); rows sum to <= 1 (the rest: later, or never). Steps 1-3 of the module
    docstring; ``frame``: due_date, days_late_p10/p50/p90, p_late, target_name (one target per frame)."""
    n = len(frame)
    starts = np.asarray(starts, dtype=np.float64)
    ends = np.asarray(ends, dtype=np.float64)
    if n == 0 or len(starts) == 0:
        return np.zeros((n, len(starts)))
    due = pd.to_datetime(frame["due_date"]).to_numpy(dtype="datetime64[D]")
    overdue = (np.datetime64(pd.Timestamp(origin).date(), "D") - due).astype(np.float64)  # origin - due, days
    lo = overdue[:, None] + starts[None, :] - 0.5  # window bounds in days late, per invoice
    hi = overdue[:, None] + ends[None, :] + 0.5

    q = np.vstack([pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64) for c in QUANTILE_COLUMNS])
    has_q = np.isfinite(q).all(axis=0)
    q10, q50, q90 = (v[:, None] for v in np.sort(np.where(has_q, q, 0.0), axis=0))
    f0 = quantile_cdf(overdue[:, None] + 0.5, q10, q50, q90)  # paid on or before the origin's day: not possible
    rest = 1.0 - f0

    def conditional(t: np.ndarray) -> np.ndarray:
        raw = quantile_cdf(t, q10, q50, q90)
        with np.errstate(divide="ignore", invalid="ignore"):
            cond = np.clip((raw - f0) / rest, 0.0, 1.0)
        return np.where(rest > 1e-12, cond, (t >= overdue[:, None] + 1.0).astype(np.float64))

    probs = conditional(hi) - conditional(lo)

    p_late = pd.to_numeric(frame.get(PREDICTION, pd.Series(np.nan, frame.index)), errors="coerce")
    p_late = p_late.to_numpy(dtype=np.float64)
    targets = frame["target_name"].dropna().unique() if "target_name" in frame else []
    horizon = target_horizon_days(str(targets[0]) if len(targets) else None, overdue)
    usable = has_q & np.isfinite(p_late) & np.isfinite(horizon)
    if usable.any():
        t_end = np.where(usable, horizon, 0.0)[:, None] + 0.5
        by_t = conditional(t_end)[:, 0]
        paid_by_t = 1.0 - np.clip(p_late, 0.0, 1.0)
        over = usable & (by_t > paid_by_t)
        scale = np.where(over, paid_by_t / np.where(by_t > 0, by_t, 1.0), 1.0)
        before = conditional(np.minimum(hi, t_end)) - conditional(np.minimum(lo, t_end))
        probs = probs - before * (1.0 - scale)[:, None]
        if late_spread_days > 0:
            moved = np.where(over, by_t - paid_by_t, 0.0)
            width = float(late_spread_days)
            inside = np.clip(np.minimum(hi, t_end + width) - np.maximum(lo, t_end), 0.0, None) / width
            probs = probs + inside * moved[:, None]

    if (~has_q).any():  # no quantiles: the due date, or the day after the origin when it is past
        day = np.maximum(-overdue, 1.0)
        point = ((starts[None, :] <= day[:, None]) & (day[:, None] <= ends[None, :])).astype(np.float64)
        probs = np.where(has_q[:, None], probs, point)
    return np.clip(probs, 0.0, 1.0)


def run_days_mask(origin: date, days: int, payment_days: Sequence[int]) -> np.ndarray:
    """(days,) True on the days 1..``days`` after ``origin`` that are payment days: the day of the month is one of
    ``payment_days``, or the month's last day when a payment day is later than it (the 31st in a 30-day month)."""
    dates = pd.date_range(pd.Timestamp(origin) + pd.Timedelta(days=1), periods=days, freq="D")
    dom = dates.day.to_numpy()
    last = dates.days_in_month.to_numpy()
    wanted = np.asarray(sorted(set(payment_days)), dtype=np.int64)
    if wanted.size == 0:
        return np.zeros(days, bool)
    exact = np.isin(dom, wanted)
    clamped = (dom == last) & (wanted.max() > last)
    return exact | clamped


def nearest_run_day(is_run: np.ndarray) -> np.ndarray:
    """For each day index, the index of the nearest True day (the later one on a tie); -1 when there is none."""
    runs = np.flatnonzero(is_run)
    if runs.size == 0:
        return np.full(len(is_run), -1)
    days = np.arange(len(is_run))
    after = np.searchsorted(runs, days)  # first run day >= day
    later = runs[np.minimum(after, runs.size - 1)]
    earlier = runs[np.maximum(after - 1, 0)]
    later = np.where(after < runs.size, later, earlier)
    earlier = np.where(after > 0, earlier, later)
    return np.where(later - days <= days - earlier, later, earlier)


def snap_to_payment_days(
    daily: np.ndarray, origin: date, customer_ids: Sequence[str], payment_days: PaymentDays
) -> np.ndarray:
    """``daily`` (invoices x days 1..D after ``origin``) with each run-day payer's probabilities moved to its
    nearest payment day (step 4). Mass whose nearest payment day lies beyond D is dropped (D leaves a margin)."""
    if not payment_days or daily.size == 0:
        return daily
    n_days = daily.shape[1]
    out = daily.copy()
    ids = np.asarray(list(customer_ids), dtype=object)
    by_days: dict[tuple[int, ...], list[int]] = {}
    for i, customer in enumerate(ids):
        days = payment_days.get(customer)
        if days:
            by_days.setdefault(tuple(sorted(days)), []).append(i)
    for days, rows in by_days.items():
        target = nearest_run_day(run_days_mask(origin, n_days + SNAP_MARGIN_DAYS, days))[:n_days]
        target = np.where(target >= 0, target, np.arange(n_days))
        moved = np.zeros((len(rows), n_days + SNAP_MARGIN_DAYS))
        np.add.at(moved.T, target, daily[rows].T)  # columns summed into their target day
        out[rows] = moved[:, :n_days]
    return out


def payment_distribution(
    frame: pd.DataFrame, origin: date, days: int, payment_days: PaymentDays | None = None
) -> np.ndarray:
    """(invoices x days) P(paid on day 1..``days`` after ``origin``): steps 1-4 of the module docstring."""
    offsets = np.arange(1, days + SNAP_MARGIN_DAYS + 1)
    daily = payment_probabilities(frame, origin, offsets, offsets)
    if payment_days:
        daily = snap_to_payment_days(daily, origin, frame["customer_id"].tolist(), payment_days)
    return daily[:, :days]


def window_sums(daily: np.ndarray, origin: date, windows: pd.DataFrame) -> np.ndarray:
    """(invoices x windows) sums of ``daily`` (days 1.. after ``origin``) over each window."""
    starts = _day_offsets(origin, windows["week_start"])
    ends = _day_offsets(origin, windows["week_end"])
    cum = np.concatenate([np.zeros((daily.shape[0], 1)), np.cumsum(daily, axis=1)], axis=1)
    return cum[:, ends] - cum[:, starts - 1]


def median_windows(daily: np.ndarray, origin: date, windows: pd.DataFrame) -> np.ndarray:
    """The window (0-based) of each invoice's median payment day (cumulative probability reaches 0.5); -1 when
    that day is in no window (or never comes)."""
    if daily.size == 0:
        return np.full(daily.shape[0], -1)
    cum = np.cumsum(daily, axis=1)
    reached = cum >= 0.5 - 1e-9
    day = np.where(reached.any(axis=1), reached.argmax(axis=1) + 1, -1)  # day offset, 1-based
    starts = _day_offsets(origin, windows["week_start"])
    ends = _day_offsets(origin, windows["week_end"])
    hit = (day[:, None] >= starts[None, :]) & (day[:, None] <= ends[None, :])
    return np.where(hit.any(axis=1), hit.argmax(axis=1), -1)


def point_probabilities(pay_dates: pd.Series, windows: pd.DataFrame) -> np.ndarray:
    """(invoices x windows) 1 where the invoice's single payment date falls in the window (a baseline)."""
    days = pd.to_datetime(pay_dates).to_numpy(dtype="datetime64[D]")[:, None]
    starts = pd.to_datetime(windows["week_start"]).to_numpy(dtype="datetime64[D]")[None, :]
    ends = pd.to_datetime(windows["week_end"]).to_numpy(dtype="datetime64[D]")[None, :]
    return ((starts <= days) & (days <= ends)).astype(np.float64)


# --- weekly totals ----------------------------------------------------------------------------------------------


def simulate_totals(
    amounts: np.ndarray, probs: np.ndarray, *, simulations: int = SIMULATIONS, seed: int = 0
) -> np.ndarray:
    """(simulations x windows) window totals: in each draw every invoice is paid in one window (with its
    probabilities) or in none, independently of the others."""
    amounts = np.asarray(amounts, dtype=np.float64)
    n, w = probs.shape
    out = np.zeros((simulations, w))
    if n == 0 or w == 0:
        return out
    cum = np.cumsum(probs, axis=1)  # u <= cum[k]: paid in window k or before
    rng = np.random.default_rng(seed)
    for start in range(0, simulations, SIMULATION_CHUNK):
        size = min(SIMULATION_CHUNK, simulations - start)
        u = rng.random((size, n))
        week = (u[:, :, None] > cum[None, :, :]).sum(axis=2)  # 0..w-1: that window; w: none
        for k in range(w):
            out[start : start + size, k] = (week == k).astype(np.float64) @ amounts
    return out


def weekly_table(
    frame: pd.DataFrame,
    daily: np.ndarray,
    origin: date,
    windows: pd.DataFrame,
    *,
    simulations: int = SIMULATIONS,
    seed: int = 0,
) -> pd.DataFrame:
    """Per currency and window (``WEEK_COLUMNS``): expected cash, the p10/p50/p90 of the simulated total, the
    invoices whose median payment date falls in the window, and the mean absolute deviation of the simulated total
    from the expectation (the error a forecast whose every probability is right still makes, on average: the
    week's own randomness). Every currency of ``frame`` gets every window."""
    probs = window_sums(daily, origin, windows) if len(frame) else np.zeros((0, len(windows)))
    median = median_windows(daily, origin, windows) if len(frame) else np.empty(0, int)
    amounts = pd.to_numeric(frame["open_amount"], errors="coerce").fillna(0.0).to_numpy(dtype=np.float64)
    rows = []
    for i, currency in enumerate(sorted(frame["currency"].dropna().unique()) if len(frame) else []):
        mask = (frame["currency"] == currency).to_numpy()
        p, a = probs[mask], amounts[mask]
        expected = a @ p
        sims = simulate_totals(a, p, simulations=simulations, seed=seed + i)
        bands = np.quantile(sims, BAND_LEVELS, axis=0)
        mad = np.abs(sims - expected[None, :]).mean(axis=0)
        counts = np.bincount(median[mask][median[mask] >= 0], minlength=len(windows))
        for k, win in enumerate(windows.itertuples(index=False)):
            rows.append(
                {
                    "currency": currency,
                    "week": int(win.week),
                    "week_start": win.week_start,
                    "week_end": win.week_end,
                    "expected": float(expected[k]),
                    **{c: float(bands[j, k]) for j, c in enumerate(BAND_COLUMNS)},
                    "invoice_count": int(counts[k]),
                    "mean_abs_deviation": float(mad[k]),
                }
            )
    return pd.DataFrame(rows, columns=list(WEEK_COLUMNS))


def wape(forecast: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray) -> float:
    """sum |forecast - actual| / sum actual; NaN when nothing was paid (or no week)."""
    f = np.asarray(forecast, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    total = float(a.sum()) if len(a) else 0.0
    if total <= 0:
        return math.nan
    return float(np.abs(f - a).sum() / total)


def wape_by_currency(table: pd.DataFrame, column: str = "forecast") -> dict[str, float]:
    """WAPE of ``column`` against ``actual`` per currency, over the weeks that have a forecast."""
    out = {}
    for currency, rows in table.groupby("currency"):
        rows = rows.loc[rows[column].notna()]
        out[str(currency)] = wape(rows[column], rows["actual"])
    return out


def noise_wape_by_currency(table: pd.DataFrame) -> dict[str, float]:
    """Per currency, sum of the weeks' ``mean_abs_deviation`` / sum actual: about the WAPE the backtest would show
    if every invoice's probabilities were exactly right and invoices paid independently (a floor for this book)."""
    out = {}
    for currency, rows in table.groupby("currency"):
        rows = rows.loc[rows["mean_abs_deviation"].notna()]
        total = float(rows["actual"].sum())
        out[str(currency)] = float(rows["mean_abs_deviation"].sum()) / total if total > 0 else math.nan
    return out


# --- reading the warehouse ----------------------------------------------------------------------------------------


def load_open_invoices(con: duckdb.DuckDBPyConnection, as_of_date: date) -> pd.DataFrame:
    """``serving.forecast_open_invoices`` of ``as_of_date`` (built by the serving stage of the daily run)."""
    if not relation_exists(con, INPUT_RELATION):
        raise CashForecastError(
            f"{INPUT_RELATION} does not exist: run the daily run's serving build (relance run daily) first"
        )
    frame = read_for_date(con, INPUT_RELATION, as_of_date, order_by="invoice_id")
    frame["open_amount"] = pd.to_numeric(frame["open_amount"], errors="coerce").astype("float64")
    return frame


def load_payment_days(con: duckdb.DuckDBPyConnection, as_of_date: date) -> dict[str, tuple[int, ...]]:
    """customer_id -> its payment days known on ``as_of_date`` (empty when the relation was never built)."""
    if not relation_exists(con, PAYMENT_DAYS_RELATION):
        return {}
    rows = read_for_date(con, PAYMENT_DAYS_RELATION, as_of_date, order_by="customer_id, payment_day")
    return {str(c): tuple(int(d) for d in g["payment_day"]) for c, g in rows.groupby("customer_id")}


def actual_payments(con: duckdb.DuckDBPyConnection, start: date, end: date) -> pd.DataFrame:
    """Payments dated in [start, end] per invoice and date (``PAYMENTS_RELATION``): invoice_id, payment_date, paid."""
    paid = con.execute(
        f"SELECT invoice_id, payment_date, sum(allocated_amount) AS paid FROM {PAYMENTS_RELATION} "
        "WHERE payment_date BETWEEN ? AND ? GROUP BY invoice_id, payment_date",
        [start, end],
    ).df()
    paid["payment_date"] = pd.to_datetime(paid["payment_date"])
    paid["paid"] = pd.to_numeric(paid["paid"], errors="coerce").astype("float64")
    return paid


# --- the backtest -------------------------------------------------------------------------------------------------


def backtest_origins(as_of_date: date, weeks: int) -> list[date]:
    """The origins of the last ``weeks`` weeks, oldest first: as_of - 7k for k = weeks .. 1 (the week after each
    origin; the last one ends on ``as_of_date``)."""
    return [as_of_date - timedelta(days=WEEK_DAYS * k) for k in range(weeks, 0, -1)]


def snapshot_for(origin: date, snapshots: Sequence[pd.Timestamp]) -> pd.Timestamp | None:
    """The latest feature snapshot on or before ``origin`` (``snapshots`` sorted), or None."""
    before = [s for s in snapshots if s <= pd.Timestamp(origin)]
    return before[-1] if before else None


def origin_rows(frame: pd.DataFrame, snapshot: pd.Timestamp) -> pd.DataFrame:
    """The invoices open on ``snapshot``: its feature rows, with ``open_amount`` as known then."""
    rows = frame.loc[frame["as_of_date"] == snapshot].copy()
    rows["open_amount"] = pd.to_numeric(rows["open_amount_ccy"], errors="coerce").astype("float64")
    return rows.reset_index(drop=True)


def baseline_dates(rows: pd.DataFrame, origin: date, train: pd.DataFrame) -> dict[str, pd.Series]:
    """Each baseline's payment date per invoice, never before the day after ``origin``: ``due_date``, and
    ``customer_mean`` (due + the customer's mean days late before the row's date, 0 when early; without history
    the training rows' mean, known before the origin)."""
    floor = pd.Timestamp(origin) + pd.Timedelta(days=1)
    due = pd.to_datetime(rows["due_date"])
    known = train[DAYS_LATE].notna() if len(train) else pd.Series(dtype=bool)
    fallback = float(train.loc[known, DAYS_LATE].clip(lower=0).mean()) if len(train) and known.any() else 0.0
    mean = pd.to_numeric(rows["hist_mean_days_late"], errors="coerce").fillna(fallback)
    mean_date = due + pd.to_timedelta(np.floor(mean.to_numpy(dtype=np.float64) + 0.5), unit="D")
    return {
        "due_date": due.where(due >= floor, floor),
        "customer_mean": mean_date.where(mean_date >= floor, floor),
    }


def _fit(train: pd.DataFrame, seed: int, like: Any = None) -> Any:
    """``models.backtest.fit_relance``'s fit (weighted when the snapshot weights differ), ``like`` a first fit."""
    weighted = train[WEIGHT].nunique() > 1
    return fit_payment_model(train, seed=seed, weight_column=WEIGHT if weighted else None, like=like)


def _predicted(rows: pd.DataFrame, model: Any) -> pd.DataFrame:
    """``rows`` with the model's p_late and quantiles (the frame's own target_name stays: the labels' target)."""
    if rows.empty:
        return rows.assign(**{c: pd.Series(dtype="float64") for c in (PREDICTION, *QUANTILE_COLUMNS)})
    preds = model.predict_frame(rows, reasons=False)[[PREDICTION, *QUANTILE_COLUMNS]]
    return rows.drop(columns=[c for c in preds.columns if c in rows]).join(preds)


def scored_windows(
    rows: pd.DataFrame,
    model: Any,
    origin: date,
    windows: pd.DataFrame,
    *,
    train: pd.DataFrame,
    payment_days: PaymentDays,
    payments: pd.DataFrame,
    simulations: int,
    seed: int,
) -> pd.DataFrame:
    """One origin's forecast of ``windows`` against what ``rows``' invoices paid in them, per currency and window:
    model (NaN without ``model``), its bands, the baselines, actual, counts."""
    days = int(_day_offsets(origin, windows["week_end"]).max())
    if model is not None:
        scored = _predicted(rows, model)
        daily = payment_distribution(scored, origin, days, payment_days)
        table = weekly_table(scored, daily, origin, windows, simulations=simulations, seed=seed)
    else:
        table = weekly_table(rows.iloc[:0], np.zeros((0, days)), origin, windows)
    amounts = rows["open_amount"].to_numpy(dtype=np.float64)
    base = {name: point_probabilities(d, windows) for name, d in baseline_dates(rows, origin, train).items()}
    paid = payments.loc[payments["invoice_id"].isin(set(rows["invoice_id"]))]
    paid = paid.merge(rows[["invoice_id", "currency"]], on="invoice_id")
    out = []
    for currency, idx in rows.groupby("currency").groups.items():
        idx = np.asarray(idx)
        mine = paid.loc[paid["currency"] == currency]
        model_rows = table.loc[table["currency"] == currency].set_index("week")
        for k, win in enumerate(windows.itertuples(index=False)):
            in_week = mine.loc[
                (mine["payment_date"] >= pd.Timestamp(win.week_start))
                & (mine["payment_date"] <= pd.Timestamp(win.week_end))
            ]
            has_model = int(win.week) in model_rows.index
            forecast = float(model_rows.loc[win.week, "expected"]) if has_model else math.nan
            actual = float(in_week["paid"].sum())
            out.append(
                {
                    "currency": currency,
                    "week_start": win.week_start,
                    "week_end": win.week_end,
                    "forecast": forecast,
                    "actual": actual,
                    "abs_error": abs(forecast - actual),
                    "origin": origin,
                    "weeks_ahead": int(win.week),
                    **{
                        c: float(model_rows.loc[win.week, c]) if has_model else math.nan
                        for c in (*BAND_COLUMNS, "mean_abs_deviation")
                    },
                    **{f"forecast_{b}": float(amounts[idx] @ base[b][idx, k]) for b in BASELINES},
                    "invoice_count": len(idx),
                    "paid_invoice_count": int(in_week["invoice_id"].nunique()),
                }
            )
    return pd.DataFrame(out)


@dataclass(frozen=True)
class BacktestRun:
    table: pd.DataFrame  # BACKTEST_COLUMNS, one row per currency and week, each forecast one week ahead
    horizon: pd.DataFrame  # BACKTEST_COLUMNS, the oldest origin's forecast of each of its weeks
    skipped: dict[str, str]  # origin -> why it has no model forecast
    snapshots: list[date]  # the snapshots a model was fitted on
    payment_day_customers: int = 0  # run-day payers at the last origin
    refit_every: int = 1  # origins between two fits


def _empty_run(skipped: dict[str, str] | None = None) -> BacktestRun:
    empty = pd.DataFrame(columns=list(BACKTEST_COLUMNS))
    return BacktestRun(empty, empty.copy(), skipped or {}, [])


def backtest(
    con: duckdb.DuckDBPyConnection,
    as_of_date: date,
    *,
    weeks: int = 13,
    seed: int = 0,
    simulations: int = SIMULATIONS,
    frame: pd.DataFrame | None = None,
    refit_every: int = 1,
) -> BacktestRun:
    """The forecast of each of the last ``weeks`` weeks made at its origin, against the payments of that week (see
    the module docstring), and the oldest origin's forecast of all of them. ``frame``:
    ``load_backtest_frame(con, train_rows="all")``, read when None. ``refit_every``: a model is fitted at every
    such origin (1: every week, as the weekly retraining does); the origins between use the last one fitted, on
    an earlier snapshot (still honest, a little staler: fewer fits on a large ledger)."""
    if refit_every < 1:
        raise ValueError(f"refit_every must be >= 1, got {refit_every}")
    if weeks <= 0:
        return _empty_run()
    if frame is None:
        frame = load_backtest_frame(con, train_rows="all")
    if frame.empty:
        return _empty_run({"all": f"{FEATURES_RELATION} holds no labelled row"})
    snapshots = sorted(frame["as_of_date"].unique())
    origins = backtest_origins(as_of_date, weeks)
    payments = actual_payments(con, origins[0] + timedelta(days=1), as_of_date)
    models: dict[pd.Timestamp, Any] = {}
    first: Any = None
    model: Any = None
    fitted_on: date | None = None
    skipped: dict[str, str] = {}
    tables, horizon = [], pd.DataFrame(columns=list(BACKTEST_COLUMNS))
    n_payers = 0
    for i, origin in enumerate(origins):
        snapshot = snapshot_for(origin, snapshots)
        if snapshot is None:
            skipped[origin.isoformat()] = "no feature snapshot on or before it"
            continue
        snap = snapshot.date()
        train = training_rows(frame, snap, train_rows="all")
        if model is None or i % refit_every == 0:
            if snapshot not in models:
                enough = len(train) >= MIN_TRAIN_ROWS and train[TARGET].nunique() >= 2
                models[snapshot] = _fit(train, seed, like=first) if enough else None
                if first is None:
                    first = models[snapshot]
            model = models[snapshot]
            fitted_on = snap if model is not None else None
        if model is None:
            skipped[origin.isoformat()] = f"{len(train)} training row(s) before {snap}: too few to fit a model"
        rows = origin_rows(frame, snapshot)
        days = load_payment_days(con, snap)
        n_payers = len(days)
        common = dict(train=train, payment_days=days, payments=payments, simulations=simulations, seed=seed)
        week = scored_windows(rows, model, origin, week_windows(origin, 1), **common)
        tables.append(week.assign(snapshot_date=snap, model_snapshot_date=fitted_on))
        if origin == origins[0]:
            horizon = scored_windows(rows, model, origin, week_windows(origin, weeks), **common)
            horizon = horizon.assign(snapshot_date=snap, model_snapshot_date=fitted_on)
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=list(BACKTEST_COLUMNS))
    table = table.reindex(columns=list(BACKTEST_COLUMNS)).sort_values(["currency", "week_start"], kind="stable")
    horizon = horizon.reindex(columns=list(BACKTEST_COLUMNS)).sort_values(["currency", "week_start"], kind="stable")
    fitted = sorted(s.date() for s, m in models.items() if m is not None)
    return BacktestRun(
        table.reset_index(drop=True), horizon.reset_index(drop=True), skipped, fitted, n_payers, refit_every
    )


# --- the forecast -----------------------------------------------------------------------------------------------


def cash_forecast(
    con: duckdb.DuckDBPyConnection,
    as_of_date: date,
    *,
    weeks: int = 13,
    backtest_weeks: int = 13,
    seed: int = 0,
    simulations: int = SIMULATIONS,
    refit_every: int = 1,
) -> CashForecast:
    """The ``weeks``-week cash-in forecast of the invoices open on ``as_of_date`` and its backtest over the last
    ``backtest_weeks`` weeks (0: none; ``refit_every``: see ``backtest``). See the module docstring for every
    definition."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    open_rows = load_open_invoices(con, as_of_date)
    payment_days = load_payment_days(con, as_of_date)
    windows = week_windows(as_of_date, weeks)
    daily = payment_distribution(open_rows, as_of_date, weeks * WEEK_DAYS, payment_days)
    table = weekly_table(open_rows, daily, as_of_date, windows, simulations=simulations, seed=seed)
    timings["forecast_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    try:
        run = backtest(
            con, as_of_date, weeks=backtest_weeks, seed=seed, simulations=simulations, refit_every=refit_every
        )
    except BacktestError as exc:  # a ledger too young to fit anything: the forecast stands without its backtest
        logger.warning("cash-in backtest not computed: %s", exc)
        run = _empty_run({"all": str(exc)})
    timings["backtest_s"] = time.perf_counter() - t0
    model_wape = wape_by_currency(run.table)
    baselines = {b: wape_by_currency(run.table, f"forecast_{b}") for b in BASELINES}
    notes = forecast_notes(
        open_rows, daily, run, as_of_date=as_of_date, weeks=weeks, simulations=simulations, payment_days=payment_days
    )
    logger.info(
        "cash-in forecast %s: %d open invoice(s), %d week(s); backtest %d week(s), %d fit(s) in %.1fs; WAPE %s",
        as_of_date,
        len(open_rows),
        weeks,
        backtest_weeks,
        len(run.snapshots),
        timings["backtest_s"],
        {k: round(v, 4) for k, v in model_wape.items()},
    )
    return CashForecast(
        as_of_date=as_of_date,
        weeks=table,
        backtest=run.table,
        wape=model_wape,
        baselines=baselines,
        notes=notes,
        horizon=run.horizon,
        horizon_wape=wape_by_currency(run.horizon),
        noise_wape=noise_wape_by_currency(run.table),
        timings={k: round(v, 2) for k, v in timings.items()},
    )


def _pct(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.0%}"


def _money(value: float, currency: str) -> str:
    return f"{value:,.0f} {currency}"


def forecast_notes(
    open_rows: pd.DataFrame,
    daily: np.ndarray,
    run: BacktestRun,
    *,
    as_of_date: date,
    weeks: int,
    simulations: int,
    payment_days: PaymentDays,
) -> list[str]:
    """What the forecast covers and does not, with its figures, in plain sentences."""
    notes = []
    amounts = open_rows["open_amount"].to_numpy(dtype=np.float64)
    within = daily.sum(axis=1) if daily.size else np.zeros(len(open_rows))
    for currency in sorted(open_rows["currency"].dropna().unique()):
        mask = (open_rows["currency"] == currency).to_numpy()
        total = float(amounts[mask].sum())
        expected = float(amounts[mask] @ within[mask])
        notes.append(
            f"{currency}: {int(mask.sum())} invoice(s) open on {as_of_date} for {_money(total, currency)}; "
            f"{_money(expected, currency)} ({expected / total:.0%}) expected within {weeks} week(s), the rest "
            "later or never."
        )
    notes.append(
        "Only invoices open on the as-of date are forecast: cash from invoices issued later is not in these figures."
    )
    notes.append(
        f"Weeks are 7-day windows starting the day after {as_of_date}; week 1 ends on "
        f"{as_of_date + timedelta(days=WEEK_DAYS)}."
    )
    notes.append(
        "Each invoice's payment date comes from the model's days-late quantiles (p10, p50, p90) around its due date, "
        "never before the day after the as-of date; the model's probability of still being unpaid at its target "
        f"date caps what is expected by then, the rest being spread over the {LATE_SPREAD_DAYS} days after it."
    )
    payers = {str(c) for c in open_rows["customer_id"]} & set(payment_days)
    if payers:
        notes.append(
            f"{len(payers)} customer(s) with open invoices pay on fixed days of the month (their own payments of the "
            "last 365 days): their payments are expected on the nearest of those days."
        )
    missing = int((~open_rows[list(QUANTILE_COLUMNS)].notna().all(axis=1)).sum())
    if missing:
        notes.append(
            f"{missing} open invoice(s) had no predicted payment date for this day: counted on their due date "
            "(the day after the as-of date when overdue)."
        )
    notes.append(
        f"Bands: p10 to p90 of {simulations:,} simulated weeks in which invoices pay independently of each other; "
        "a payment run that slips or a large customer that fails moves many invoices together, so the real spread "
        "is wider than shown."
    )
    versions = sorted(open_rows["model_version"].dropna().astype(str).unique())
    if versions:
        notes.append(f"Predictions of model version {', '.join(versions)}.")
    if not run.table.empty:
        first, last = run.table["week_start"].min(), run.table["week_end"].max()
        cover = run.table.dropna(subset=["p10"])
        inside = int(((cover["actual"] >= cover["p10"]) & (cover["actual"] <= cover["p90"])).sum())
        notes.append(
            f"Backtest, {first} to {last}: each week forecast from the latest feature snapshot on or before the day "
            "before it, by a model fitted only on what was known then "
            f"({len(run.snapshots)} fit(s) on snapshots from {run.snapshots[0] if run.snapshots else '-'} to "
            f"{run.snapshots[-1] if run.snapshots else '-'}, every {run.refit_every} week(s) at most), against the "
            "payments booked that week on the invoices "
            "open at the snapshot; WAPE = sum |forecast - actual| / sum actual. That is the forecast one week ahead; "
            "the 13-week view is the forecast made at the first origin for each of the weeks since."
        )
        notes.append(f"Backtest weeks whose actual fell inside the p10-p90 band: {inside} of {len(cover)}.")
        model, noise = wape_by_currency(run.table), noise_wape_by_currency(run.table)
        base = {b: wape_by_currency(run.table, f"forecast_{b}") for b in BASELINES}
        for currency, rows in run.table.groupby("currency"):
            per_week = float(rows["paid_invoice_count"].mean())
            line = (
                f"Backtest WAPE {currency}: {_pct(model.get(currency))} (paying on the due date "
                f"{_pct(base['due_date'].get(currency))}, the customer's mean delay "
                f"{_pct(base['customer_mean'].get(currency))}); the weeks' own randomness alone, were every "
                f"probability right, would give about {_pct(noise.get(currency))}, with {per_week:.0f} invoice(s) "
                "paid a week on average."
            )
            if per_week < MIN_PAID_PER_WEEK:
                line += " Too few payments a week for this WAPE to say much."
            notes.append(line)
    if run.skipped:
        notes.append(
            "Backtest weeks without a model forecast: "
            + "; ".join(f"{origin}: {why}" for origin, why in sorted(run.skipped.items()))
            + "."
        )
    return notes
