"""Evaluation metrics a data scientist can trust: one definition per number, weighted, by segment, with intervals.

Pure functions on arrays and frames, called by the backtest (``relance evaluate``) and by training. The metric keys
are fixed (``CLASSIFICATION_KEYS``, ``REGRESSION_KEYS``): MLflow's compare view lines runs up by name, so a key
means the same computation in every run.

Definitions
-----------
Probability of paying late (``p_late``) against the 0/1 label (``is_late``), rows without a label left out:

- ``auc``: area under the ROC curve, ties counted half (as ``sklearn.metrics.roc_auc_score``); NaN, never an
  error, when the rows hold a single class.
- ``brier``: mean of (p - y)².
- ``log_loss``: mean of -[y log p + (1 - y) log(1 - p)], p clipped to [1e-6, 1 - 1e-6] as in ``models.evaluate``
  (a calibrator that outputs exactly 0 or 1 would otherwise make one row worth 36 nats).
- ``calibration_error``: expected calibration error over ``CALIBRATION_BINS`` (10) equal-count bins of p:
  rows sorted by p are cut into bins of equal count (equal total weight when weighted), rows with the same p always
  in the same bin (so the result never depends on row order); per bin the gap |mean p - observed share|; the gaps
  averaged weighted by bin size. Equal-count bins, not equal-width ones: calibrated probabilities crowd near the
  base rate, and equal-width bins would leave most bins nearly empty and one bin holding most rows.
- ``base_rate``: observed share of late rows; ``mean_p``: mean predicted probability (calibration in the large).
- ``n``: rows the metrics were computed on (labelled, positive weight).

Days late, ``days_late`` = settled_date - due_date (negative when paid early), against the predicted quantiles
p10/p50/p90 of the same quantity; unsettled rows (NaN) are left out:

- ``mae_days_late``: mean |max(0, p50) - max(0, days_late)|. "Days late" as finance and the public IBM sample
  mean it, max(0, settled - due): an invoice paid 10 days early is not "-10 days late". The median of a clipped
  variable is the clipped median, so clipping p50 is exact, not an approximation.
- ``pinball_p10``, ``pinball_p50``, ``pinball_p90``: quantile (pinball) loss of each predicted quantile on the
  unclipped days late, mean of max(τ(y - q), (τ - 1)(y - q)); ``pinball_mean``: their mean.
- ``coverage_p10_p90``: share of actual (unclipped) days late inside [p10, p90], bounds included; nominal 0.8.
- ``interval_width``: mean p90 - p10, in days (coverage is cheap with wide intervals: read the two together).
- ``n``: settled rows the metrics were computed on (positive weight).

Weights (``snapshot_weights``, ``amount_weights``, or their product) make every metric a weighted one: weighted
means, weighted AUC (each row counts as ``weight`` rows, as sklearn's ``sample_weight``), equal-weight bins.
A row of weight 0 counts nowhere, not even in ``n``.

The classification metrics are computed here with numpy, from one sort of p, rather than by four sklearn calls:
the customer bootstrap recomputes them hundreds of times on tens of thousands of rows. The unit tests check that
they equal sklearn's (with ``sample_weight``) on random data with ties.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from models.contract import DAYS_LATE, PREDICTION, QUANTILE_COLUMNS, QUANTILES, TARGET

logger = logging.getLogger(__name__)

CLASSIFICATION_KEYS: tuple[str, ...] = ("auc", "brier", "log_loss", "calibration_error", "base_rate", "mean_p", "n")
REGRESSION_KEYS: tuple[str, ...] = (
    "mae_days_late",
    "pinball_p10",
    "pinball_p50",
    "pinball_p90",
    "pinball_mean",
    "coverage_p10_p90",
    "interval_width",
    "n",
)
CALIBRATION_BINS = 10
LOG_LOSS_EPS = 1e-6  # = models.evaluate.EPS: the same clip for the same key
NOMINAL_COVERAGE = QUANTILES[-1] - QUANTILES[0]  # 0.8 for p10..p90
MISSING_LABEL = "unknown"  # segment value of rows whose segment column is null
NOT_APPLICABLE = "–"  # pooled_table cell of a metric a method does not have

# keys measured in days: printed with 2 decimals; counts as integers; the rest (probabilities, shares) with 4
_DAY_KEYS = frozenset({"mae_days_late", "pinball_p10", "pinball_p50", "pinball_p90", "pinball_mean", "interval_width"})
_COUNT_KEYS = frozenset({"n", "n_customers", "n_labelled", "n_days_late"})


# --- input checks -----------------------------------------------------------------------------------------------


def _as_float(x: Any, name: str) -> np.ndarray:
    """A 1-D float array, pandas nullable values (pd.NA) as NaN."""
    if isinstance(x, pd.Series | pd.Index):
        try:
            return x.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be numeric, got dtype {x.dtype}") from exc
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric") from exc
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _check_weights(weights: Any, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = _as_float(weights, "weights")
    if len(w) != n:
        raise ValueError(f"weights has {len(w)} values for {n} rows")
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} weight(s) are negative, infinite or NaN (first at row {int(np.flatnonzero(bad)[0])}); "
            "build weights with amount_weights / snapshot_weights, which map those to 0"
        )
    return w


def _same_length(**arrays: np.ndarray) -> int:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"arrays of different lengths: {lengths}")
    return next(iter(lengths.values()))


# --- binning shared by the calibration error and the figures ----------------------------------------------------


def equal_count_bins(x: np.ndarray, n_bins: int = CALIBRATION_BINS, weights: np.ndarray | None = None) -> np.ndarray:
    """Bin index (0..n_bins-1) of every value of ``x``: sorted values cut into ``n_bins`` bins of equal count (of
    equal total weight when weighted); equal values always share a bin, which then holds more than its share.

    A value's bin is where the middle of its group of ties falls in the cumulative weight: with n distinct values
    and unit weights, value of rank i (from 0) goes to bin floor((i + 0.5) * n_bins / n).
    """
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0:
        return np.zeros(0, dtype=np.int64)
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=np.float64)
    order = np.argsort(x)  # any order of ties: they share a bin
    group = _tie_groups(x[order])
    bins_sorted = _group_bins(group, w[order], n_bins)[group]
    out = np.empty(len(x), dtype=np.int64)
    out[order] = bins_sorted
    return out


def _tie_groups(sorted_x: np.ndarray) -> np.ndarray:
    """Group id (0, 1, ...) of each value of a sorted array, equal values sharing one."""
    new = np.empty(len(sorted_x), dtype=bool)
    new[:1] = True
    np.not_equal(sorted_x[1:], sorted_x[:-1], out=new[1:])
    return np.cumsum(new) - 1


def _group_bins(group: np.ndarray, w_sorted: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-weight bin of each tie group (see ``equal_count_bins``)."""
    w_group = np.bincount(group, weights=w_sorted)
    total = w_group.sum()
    if total <= 0:
        return np.zeros(len(w_group), dtype=np.int64)
    mid = (np.cumsum(w_group) - w_group / 2) / total
    return np.minimum((mid * n_bins).astype(np.int64), n_bins - 1)


# --- the metrics ------------------------------------------------------------------------------------------------


def _nan_dict(keys: Sequence[str]) -> dict[str, float]:
    return {k: (0 if k == "n" else math.nan) for k in keys}


def classification_metrics(y: Any, p: Any, weights: Any = None) -> dict[str, float]:
    """``auc``, ``brier``, ``log_loss``, ``calibration_error``, ``base_rate``, ``mean_p``, ``n`` (module docstring).

    Rows whose label is NaN (not yet known) are left out, as are rows of weight 0. A single class gives ``auc``
    NaN and the other metrics as usual; no row at all gives NaN everywhere and ``n`` 0. Labels other than 0/1,
    probabilities outside [0, 1] or NaN for a labelled row, and negative weights are errors.
    """
    y_arr, p_arr = _as_float(y, "y"), _as_float(p, "p")
    n_rows = _same_length(y=y_arr, p=p_arr)
    w = _check_weights(weights, n_rows)
    keep = ~np.isnan(y_arr) & (w > 0)
    y_arr, p_arr, w = y_arr[keep], p_arr[keep], w[keep]
    if not ((y_arr == 0) | (y_arr == 1)).all():
        raise ValueError(f"labels must be 0 or 1 (or NaN when unknown), got {np.unique(y_arr)[:10].tolist()}")
    if np.isnan(p_arr).any():
        raise ValueError(f"{int(np.isnan(p_arr).sum())} labelled row(s) have a NaN probability")
    if ((p_arr < 0) | (p_arr > 1)).any():
        raise ValueError(f"probabilities must be in [0, 1], got [{p_arr.min():g}, {p_arr.max():g}]")
    if len(y_arr) == 0:
        return _nan_dict(CLASSIFICATION_KEYS)

    total = w.sum()
    order = np.argsort(p_arr)  # quicksort: twice as fast as a stable sort, and ties are grouped below anyway
    ps, ys, ws = p_arr[order], y_arr[order], w[order]
    group = _tie_groups(ps)
    w_pos = np.bincount(group, weights=ws * ys)
    w_neg = np.bincount(group, weights=ws * (1.0 - ys))
    pos, neg = w_pos.sum(), w_neg.sum()
    if pos > 0 and neg > 0:
        # each positive beats the negatives scored strictly lower, and ties with those scored the same (half)
        neg_below = np.cumsum(w_neg) - w_neg
        auc = float(np.sum(w_pos * (neg_below + 0.5 * w_neg)) / (pos * neg))
    else:
        auc = math.nan

    bins = _group_bins(group, ws, CALIBRATION_BINS)[group]
    gap = np.abs(np.bincount(bins, weights=ws * ps) - np.bincount(bins, weights=ws * ys))
    pc = np.clip(ps, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    return {
        "auc": auc,
        "brier": float(np.sum(ws * (ps - ys) ** 2) / total),
        "log_loss": float(-np.sum(ws * np.log(np.where(ys == 1, pc, 1 - pc))) / total),
        "calibration_error": float(gap.sum() / total),
        "base_rate": float(pos / total),
        "mean_p": float(np.sum(ws * ps) / total),
        "n": len(ys),
    }


def _pinball(y: np.ndarray, q: np.ndarray, tau: float, w: np.ndarray) -> float:
    diff = y - q
    return float(np.sum(w * np.maximum(tau * diff, (tau - 1) * diff)) / w.sum())


def regression_metrics(days_late: Any, q10: Any, q50: Any, q90: Any, weights: Any = None) -> dict[str, float]:
    """``mae_days_late``, ``pinball_p10/p50/p90``, ``pinball_mean``, ``coverage_p10_p90``, ``interval_width``, ``n``
    (module docstring). Rows whose days late is NaN (not settled) are left out, as are rows of weight 0; none left:
    NaN everywhere and ``n`` 0. A NaN quantile on a settled row is an error. Crossed quantiles (p10 > p90) are
    measured as they are (never covered, negative width) and logged as a warning."""
    d = _as_float(days_late, "days_late")
    lo, mid, hi = _as_float(q10, "q10"), _as_float(q50, "q50"), _as_float(q90, "q90")
    n_rows = _same_length(days_late=d, q10=lo, q50=mid, q90=hi)
    w = _check_weights(weights, n_rows)
    keep = ~np.isnan(d) & (w > 0)
    d, lo, mid, hi, w = d[keep], lo[keep], mid[keep], hi[keep], w[keep]
    if len(d) == 0:
        return _nan_dict(REGRESSION_KEYS)
    missing = np.isnan(lo) | np.isnan(mid) | np.isnan(hi)
    if missing.any():
        raise ValueError(f"{int(missing.sum())} settled row(s) have a NaN predicted quantile")
    crossed = int((lo > hi).sum())
    if crossed:
        logger.warning("%d of %d rows have p10 > p90 (crossed quantiles): never covered", crossed, len(d))
    total = w.sum()
    pinballs = [_pinball(d, q, tau, w) for q, tau in zip((lo, mid, hi), QUANTILES, strict=True)]
    return {
        "mae_days_late": float(np.sum(w * np.abs(np.maximum(mid, 0) - np.maximum(d, 0))) / total),
        "pinball_p10": pinballs[0],
        "pinball_p50": pinballs[1],
        "pinball_p90": pinballs[2],
        "pinball_mean": float(np.mean(pinballs)),
        "coverage_p10_p90": float(np.sum(w * ((d >= lo) & (d <= hi))) / total),
        "interval_width": float(np.sum(w * (hi - lo)) / total),
        "n": len(d),
    }


# --- weights ----------------------------------------------------------------------------------------------------


def snapshot_weights(invoice_ids: Any) -> np.ndarray:
    """1 / (number of rows of the row's invoice): every invoice weighs 1 in total, however many as-of snapshots
    it appears in.

    Training and backtest frames hold one row per (invoice, as_of_date). An invoice that stays open for months is
    seen in many snapshots, a prompt payer's in one or two: unweighted, the metrics are dominated by long-open
    invoices (mostly the late ones), and a model is rewarded for what it does on the few invoices that linger.
    Weighted, each invoice counts once, its snapshots sharing that one weight, which is the population a collector
    acts on. Missing invoice ids are an error.
    """
    ids = pd.Series(invoice_ids) if not isinstance(invoice_ids, pd.Series) else invoice_ids
    if ids.isna().any():
        raise ValueError(f"{int(ids.isna().sum())} row(s) have no invoice id: snapshot weights need one per row")
    codes, _ = pd.factorize(ids)
    counts = np.bincount(codes)
    return 1.0 / counts[codes]


def amount_weights(amounts: Any) -> np.ndarray:
    """Amounts scaled to mean 1 over all rows, so amount-weighted metrics read as "per unit of money": a
    100,000 invoice counts 100 times a 1,000 one. Negative, NaN or infinite amounts weigh 0 (a credit or an unknown
    amount is no money at risk); an error if every amount is then 0. No row: an empty array."""
    a = _as_float(amounts, "amounts")
    if len(a) == 0:
        return a
    a = np.where(np.isfinite(a) & (a > 0), a, 0.0)
    total = a.sum()
    if total <= 0:
        raise ValueError(
            f"all {len(a)} amounts are zero, negative or missing: amount weights are undefined "
            "(is the amount column the right one?)"
        )
    return a * (len(a) / total)


# --- frames: metrics of a frame, bootstrap, segments ------------------------------------------------------------


def _column(frame: pd.DataFrame, name: str | None) -> np.ndarray | None:
    return None if name is None or name not in frame else _as_float(frame[name], name)


def _metric_arrays(frame: pd.DataFrame, cols: Mapping[str, str | None]) -> dict[str, np.ndarray | None]:
    if cols["weight"] is not None and cols["weight"] not in frame:
        raise ValueError(f"no weight column {cols['weight']!r} in the frame (columns: {list(frame.columns)[:20]})")
    return {key: _column(frame, name) for key, name in cols.items()}


def frame_metrics(
    frame: pd.DataFrame,
    *,
    y: str = TARGET,
    p: str = PREDICTION,
    days_late: str = DAYS_LATE,
    q10: str = QUANTILE_COLUMNS[0],
    q50: str = QUANTILE_COLUMNS[1],
    q90: str = QUANTILE_COLUMNS[2],
    weight: str | None = None,
) -> dict[str, float]:
    """Classification and regression metrics of a frame of predictions, from whichever columns it has: the
    classification keys when ``y`` and ``p`` are there, the regression keys when ``days_late`` and the three
    quantiles are. Their two ``n`` become ``n_labelled`` and ``n_days_late`` beside ``n``, the frame's rows.
    ``weight`` names a weight column (e.g. snapshot x amount weights). A ready ``metric_fn`` for
    ``customer_bootstrap_ci``."""
    cols = {"y": y, "p": p, "days_late": days_late, "q10": q10, "q50": q50, "q90": q90, "weight": weight}
    arrays = _metric_arrays(frame, cols)
    return _arrays_metrics(arrays, np.arange(len(frame)))


def _arrays_metrics(arrays: Mapping[str, np.ndarray | None], idx: np.ndarray) -> dict[str, float]:
    def take(key: str) -> np.ndarray | None:
        a = arrays.get(key)
        return None if a is None else a[idx]

    w = take("weight")
    out: dict[str, float] = {"n": len(idx)}
    if arrays.get("y") is not None and arrays.get("p") is not None:
        cls = classification_metrics(take("y"), take("p"), w)
        out["n_labelled"] = cls.pop("n")
        out.update(cls)
    if all(arrays.get(k) is not None for k in ("days_late", "q10", "q50", "q90")):
        reg = regression_metrics(take("days_late"), take("q10"), take("q50"), take("q90"), w)
        out["n_days_late"] = reg.pop("n")
        out.update(reg)
    return out


def customer_bootstrap_ci(
    frame: pd.DataFrame,
    metric_fn: Callable[[pd.DataFrame], Mapping[str, float]],
    group_col: str = "customer_id",
    n_boot: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile (1 - ``alpha``) interval of every numeric key of ``metric_fn(frame)``, by cluster bootstrap.

    Each resample draws as many customers as there are, with replacement, and takes all the rows of every drawn
    customer (a customer drawn twice comes twice). Rows of one customer are not independent (same payment habits,
    same snapshots of the same invoices): resampling rows would treat 40 invoices of one slow payer as 40
    independent pieces of evidence and give intervals that are too narrow. The unit of evidence is the customer.

    A paired comparison (challenger against champion on the same rows) is a ``metric_fn`` that returns the
    difference of the two models' metrics: both are then measured on the same resample, and an interval that
    excludes 0 is a difference beyond customer-level noise. The time goes into ``metric_fn`` (one sort of p per
    resample for ``frame_metrics``), not the resampling: ``bench/bench_metrics.py`` prints both.

    Deterministic for a ``seed``, and independent of the frame's row order up to floating-point rounding
    (customers are numbered in sorted order; the metrics here do not depend on row order). Resamples where a
    metric is NaN (e.g. a single class for the AUC) are left out of that metric's interval; (NaN, NaN) if it is
    NaN in every one.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if group_col not in frame:
        raise ValueError(f"no column {group_col!r} to resample by (columns: {list(frame.columns)[:20]})")
    if len(frame) == 0:
        raise ValueError("cannot bootstrap an empty frame")
    groups = frame[group_col]
    if groups.isna().any():
        raise ValueError(f"{int(groups.isna().sum())} row(s) have no {group_col}: every row needs its cluster")

    codes, _ = pd.factorize(groups, sort=True)
    n_groups = int(codes.max()) + 1
    positions = np.arange(len(frame))
    frame = frame.reset_index(drop=True)
    rng = np.random.default_rng(seed)

    samples: list[Mapping[str, float]] = []
    for _ in range(n_boot):
        # how many times each customer is drawn; every row of the customer comes that many times, in frame order
        times_drawn = np.bincount(rng.integers(0, n_groups, size=n_groups), minlength=n_groups)
        rows = np.repeat(positions, times_drawn[codes])
        samples.append(metric_fn(frame.take(rows).reset_index(drop=True)))

    keys = list(dict.fromkeys(k for s in samples for k in s))
    lo_q, hi_q = 100 * alpha / 2, 100 * (1 - alpha / 2)
    out: dict[str, tuple[float, float]] = {}
    for key in keys:
        values = np.array([_to_float(s.get(key)) for s in samples])
        if np.isnan(values).all():
            if any(key in s and isinstance(s[key], int | float | np.number) for s in samples):
                out[key] = (math.nan, math.nan)
            continue
        lo, hi = np.nanpercentile(values, [lo_q, hi_q])
        out[key] = (float(lo), float(hi))
    return out


def _to_float(value: Any) -> float:
    if isinstance(value, bool | int | float | np.number):
        return float(value)
    return math.nan


# --- segments ---------------------------------------------------------------------------------------------------

DUE_STATUS = ("not yet due", "overdue")
AGING_BUCKETS = ("0", "1-30", "31-60", "61-90", ">90")
AGING_EDGES = (-np.inf, 0, 30, 60, 90, np.inf)  # days overdue, right-closed: 0 | 1-30 | 31-60 | 61-90 | >90


def _with_unknown(values: pd.Series, categories: Sequence[str]) -> pd.Series:
    """An ordered categorical of ``values`` over ``categories`` (all shown, empty or not) + ``unknown`` for nulls
    (shown only when there are some)."""
    cats = list(categories) + ([MISSING_LABEL] if values.isna().any() else [])
    return pd.Series(pd.Categorical(values.astype(object).where(values.notna(), MISSING_LABEL), categories=cats))


def due_status(frame: pd.DataFrame) -> pd.Series | None:
    """``not yet due`` when days_to_due >= 0 (due today included), else ``overdue``."""
    if "days_to_due" not in frame:
        return None
    d = pd.to_numeric(frame["days_to_due"], errors="coerce")
    status = pd.Series(np.where(d >= 0, DUE_STATUS[0], DUE_STATUS[1]), index=frame.index).where(d.notna())
    return _with_unknown(status, DUE_STATUS)


def aging_bucket(frame: pd.DataFrame) -> pd.Series | None:
    """Days overdue (-days_to_due, 0 when not yet due) in buckets 0, 1-30, 31-60, 61-90, >90."""
    if "days_to_due" not in frame:
        return None
    overdue = -pd.to_numeric(frame["days_to_due"], errors="coerce")
    bucket = pd.cut(overdue, bins=list(AGING_EDGES), labels=list(AGING_BUCKETS), right=True)
    return _with_unknown(bucket.astype(object), AGING_BUCKETS)


def _fmt_bound(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.4g}"


def amount_band(frame: pd.DataFrame) -> pd.Series | None:
    """Quartiles of ``amount`` among the frame's rows, labelled with their bounds: ``[min, q1]``, ``(q1, q2]``,
    ``(q2, q3]``, ``(q3, max]`` (fewer bands when quartiles coincide)."""
    if "amount" not in frame:
        return None
    amount = pd.to_numeric(frame["amount"], errors="coerce")
    if amount.notna().sum() == 0:
        return _with_unknown(pd.Series(np.nan, index=frame.index, dtype=object), ())
    edges = np.unique(np.nanquantile(amount.to_numpy(dtype=np.float64, na_value=np.nan), [0, 0.25, 0.5, 0.75, 1]))
    if len(edges) == 1:
        labels = [f"[{_fmt_bound(edges[0])}, {_fmt_bound(edges[0])}]"]
        band = pd.Series(np.where(amount.notna(), labels[0], None), index=frame.index)
        return _with_unknown(band, labels)
    fmt = _fmt_bound if len({_fmt_bound(e) for e in edges}) == len(edges) else "{:.12g}".format  # too close: exact
    labels = [
        f"{'[' if i == 0 else '('}{fmt(lo)}, {fmt(hi)}]"
        for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True))
    ]
    band = pd.cut(amount, bins=edges, labels=labels, include_lowest=True)
    return _with_unknown(band.astype(object), labels)


def _column_segment(column: str) -> Callable[[pd.DataFrame], pd.Series | None]:
    def segment(frame: pd.DataFrame) -> pd.Series | None:
        if column not in frame:
            return None
        values = frame[column]
        observed = sorted(str(v) for v in values.dropna().unique())
        return _with_unknown(values.map(lambda v: v if pd.isna(v) else str(v)), observed)

    return segment


DEFAULT_SEGMENTS: dict[str, Callable[[pd.DataFrame], pd.Series | None]] = {
    "due_status": due_status,
    "aging_bucket": aging_bucket,
    "customer_type": _column_segment("customer_type"),
    "sector_section": _column_segment("sector_section"),
    "amount_band": amount_band,
}

SegmentSpec = Mapping[str, str | Callable[[pd.DataFrame], pd.Series | None]] | Sequence[str]


def segment_table(
    frame: pd.DataFrame,
    *,
    y: str = TARGET,
    p: str = PREDICTION,
    days_late: str = DAYS_LATE,
    q10: str = QUANTILE_COLUMNS[0],
    q50: str = QUANTILE_COLUMNS[1],
    q90: str = QUANTILE_COLUMNS[2],
    segments: SegmentSpec | None = None,
    weight: str | None = None,
    customer: str = "customer_id",
) -> pd.DataFrame:
    """One row per (segment, value), after an ``all`` row: ``n`` rows, ``n_customers``, and the metrics of
    ``frame_metrics`` on those rows (classification when ``y`` and ``p`` are columns, regression when the days
    late and the quantiles are; ``weight`` names a weight column).

    ``segments``: None for ``DEFAULT_SEGMENTS`` (due status, aging bucket of days overdue, customer_type,
    sector_section, amount band by quartile), a list of column names, or a mapping name -> column name or
    function(frame) -> labels. A segment whose column is missing is skipped (logged), not an error. Values keep
    their natural order; fixed buckets (due status, aging) are listed even when empty (n 0, metrics NaN), so the
    table has the same rows from one run to the next; null values form an ``unknown`` row.
    """
    if segments is None:
        specs: Mapping[str, Any] = DEFAULT_SEGMENTS
    elif isinstance(segments, Mapping):
        specs = segments
    else:
        specs = {name: name for name in segments}

    cols = {"y": y, "p": p, "days_late": days_late, "q10": q10, "q50": q50, "q90": q90, "weight": weight}
    arrays = _metric_arrays(frame, cols)
    cust_codes = pd.factorize(frame[customer])[0] if customer in frame else None

    def row(segment: str, value: str, idx: np.ndarray) -> dict[str, Any]:
        n_customers: float = math.nan
        if cust_codes is not None:
            c = cust_codes[idx]
            n_customers = len(np.unique(c[c >= 0]))
        return {"segment": segment, "value": value, **_arrays_metrics(arrays, idx), "n_customers": n_customers}

    rows = [row("all", "all", np.arange(len(frame)))]
    for name, spec in specs.items():
        labels = spec(frame) if callable(spec) else _column_segment(spec)(frame)
        if labels is None:
            logger.info("segment %s skipped: its column is not in the frame", name)
            continue
        if len(labels) != len(frame):
            raise ValueError(
                f"segment {name!r} gave {len(labels)} labels for {len(frame)} rows (one per row, in order)"
            )
        if not isinstance(labels.dtype, pd.CategoricalDtype):
            labels = _column_segment("_")(pd.DataFrame({"_": np.asarray(labels)}))
        codes = np.asarray(labels.cat.codes)
        for k, value in enumerate(labels.cat.categories):
            rows.append(row(name, str(value), np.flatnonzero(codes == k)))

    table = pd.DataFrame(rows)
    first = ["segment", "value", "n", "n_customers"]
    return table[first + [c for c in table.columns if c not in first]]


# --- figures ----------------------------------------------------------------------------------------------------


def _fmt_days(x: float) -> str:
    x = float(x) + 0.0  # no "-0"
    return f"{x:.0f}" if abs(x) >= 10 or float(x).is_integer() else f"{x:.1f}"


def _note(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")


def calibration_figure(y: Any, scores: Mapping[str, Any], bins: int = CALIBRATION_BINS, weights: Any = None) -> Figure:
    """Reliability diagram of each model of ``scores`` (name -> p) over the equal-count bins of
    ``calibration_error`` (mean p against observed share per bin, its calibration error in the legend), and below,
    how many rows each model puts in each tenth of [0, 1] (sharpness: a model that says the base rate to everyone
    is calibrated and useless)."""
    fig = Figure(figsize=(6.4, 7.2), layout="constrained")
    ax_rel, ax_hist = fig.subplots(2, 1, height_ratios=(3, 1.3))
    y_all = _as_float(y, "y")
    w_all = _check_weights(weights, len(y_all))
    keep = ~np.isnan(y_all) & (w_all > 0)
    ax_rel.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    edges = np.linspace(0, 1, 11)
    for name, p in scores.items():
        p_all = _as_float(p, name)
        yk, pk, wk = y_all[keep], p_all[keep], w_all[keep]
        if len(yk) == 0:
            continue
        b = equal_count_bins(pk, bins, wk)
        w_bin = np.bincount(b, weights=wk, minlength=bins)
        used = w_bin > 0
        mean_p = np.bincount(b, weights=wk * pk, minlength=bins)[used] / w_bin[used]
        share = np.bincount(b, weights=wk * yk, minlength=bins)[used] / w_bin[used]
        counts = np.bincount(b, minlength=bins)[used]
        ece = classification_metrics(yk, pk, wk)["calibration_error"]
        (line,) = ax_rel.plot(mean_p, share, marker="o", label=f"{name} (calibration error {ece:.3f})")
        for x, s, c in zip(mean_p, share, counts, strict=True):
            ax_rel.annotate(f"{c:,}", (x, s), textcoords="offset points", xytext=(3, -9), fontsize="x-small")
        hist, _ = np.histogram(pk, bins=edges, weights=wk)
        ax_hist.step(edges, np.r_[hist, hist[-1]], where="post", color=line.get_color(), label=name)
    if not keep.any():
        _note(ax_rel, "no labelled row")
    ax_rel.set(
        title=f"Calibration ({bins} equal-count bins, rows per bin)",
        xlabel=f"mean predicted {PREDICTION}",
        ylabel="observed share late",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    if len(ax_rel.get_lines()) > 1:  # the diagonal and at least one model
        ax_rel.legend(loc="upper left", fontsize="small")
    ax_hist.set(xlabel=f"predicted {PREDICTION}", ylabel="rows" if weights is None else "weight", xlim=(0, 1))
    return fig


def shap_summary_figure(
    contrib: np.ndarray,
    features: Any,
    feature_names: Sequence[str],
    top: int = 15,
    max_points: int = 5000,
    seed: int = 0,
) -> Figure:
    """SHAP summary in pure matplotlib (``shap`` is not a dependency): left, mean |contribution| of the ``top``
    features; right, each row's contribution to each of them (beeswarm-like: points stacked where they are
    dense), coloured by the feature's value from low (blue) to high (red) between its 5th and 95th percentiles,
    grey where the value is missing or not numeric.

    ``contrib``: (n, n_features) or (n, n_features + 1) with the bias last, as LightGBM's ``pred_contrib`` gives
    (the bias is dropped); ``features``: the (n, n_features) values behind them. At most ``max_points`` rows are
    drawn in the scatter (a fixed-seed sample); the bars use every row.
    """
    contrib = np.asarray(contrib, dtype=np.float64)
    names = list(feature_names)
    k = len(names)
    if contrib.ndim != 2 or contrib.shape[1] not in (k, k + 1):
        raise ValueError(f"contrib has shape {contrib.shape}, expected (n, {k}) or (n, {k + 1}) with the bias last")
    contrib = contrib[:, :k]
    values = features.to_numpy() if isinstance(features, pd.DataFrame) else np.asarray(features)
    if values.shape != contrib.shape:
        raise ValueError(f"features has shape {values.shape}, contrib (without bias) {contrib.shape}")

    importance = np.abs(contrib).mean(axis=0) if len(contrib) else np.zeros(k)
    shown = np.argsort(-importance, kind="stable")[: min(top, k)]
    fig = Figure(figsize=(12, 0.38 * len(shown) + 1.6), layout="constrained")
    ax_bar, ax_dot = fig.subplots(1, 2, sharey=True, width_ratios=(1, 1.6))
    ypos = np.arange(len(shown))[::-1]  # the most important at the top
    ax_bar.barh(ypos, importance[shown], color="#4c72b0")
    ax_bar.set(yticks=ypos, yticklabels=[names[j] for j in shown], xlabel="mean |contribution| (log-odds)")
    ax_bar.set_title(f"Top {len(shown)} drivers")

    rows = np.arange(len(contrib))
    if len(rows) > max_points:
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=max_points, replace=False))
    cmap = mpl.colormaps["coolwarm"]
    if len(rows):
        x_all = contrib[rows][:, shown]
        lo, hi = float(x_all.min()), float(x_all.max())
        span = hi - lo if hi > lo else 1.0
        for pos, j in zip(ypos, shown, strict=True):
            x = contrib[rows, j]
            v = pd.to_numeric(pd.Series(values[rows, j]), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            colours = np.tile(np.array([[0.6, 0.6, 0.6, 0.7]]), (len(x), 1))
            ok = np.isfinite(v)
            if ok.any():
                v_lo, v_hi = np.nanpercentile(v[ok], [5, 95])
                scaled = np.clip((v[ok] - v_lo) / (v_hi - v_lo), 0, 1) if v_hi > v_lo else np.full(ok.sum(), 0.5)
                colours[ok] = cmap(scaled)
            ax_dot.scatter(x, pos + _swarm_offsets(x, lo, span), c=colours, s=6, linewidths=0, rasterized=True)
    else:
        _note(ax_dot, "no row")
    ax_dot.axvline(0, color="grey", linewidth=0.8)
    ax_dot.set(xlabel="contribution to log-odds of paying late (> 0: towards late)")
    ax_dot.set_title("Contribution per row, coloured by feature value")
    colorbar = fig.colorbar(ScalarMappable(norm=Normalize(0, 1), cmap=cmap), ax=ax_dot, ticks=[0, 1], aspect=40)
    colorbar.ax.set_yticklabels(["low", "high"])
    colorbar.set_label("feature value")
    return fig


def _swarm_offsets(x: np.ndarray, lo: float, span: float, n_bins: int = 60, height: float = 0.4) -> np.ndarray:
    """Vertical offsets that stack points of similar x alternately above and below the line, the densest bin
    reaching ``height``: a beeswarm without a per-point loop."""
    b = np.minimum(((x - lo) / span * n_bins).astype(np.int64), n_bins - 1)
    order = np.argsort(b, kind="stable")
    counts = np.bincount(b, minlength=n_bins)
    rank = np.empty(len(x), dtype=np.int64)
    rank[order] = np.arange(len(x)) - np.repeat(np.cumsum(counts) - counts, counts)
    step = (rank + 1) // 2 * np.where(rank % 2 == 0, 1, -1)
    return step * (height / max(counts.max() / 2, 1))


def interval_figure(days_late: Any, q10: Any, q50: Any, q90: Any, bands: int = 8) -> Figure:
    """Days-late intervals by predicted band (settled rows, bands = equal-count groups of the predicted p50):
    left, the share of actual days late inside [p10, p90] per band against the nominal 0.8, with the rows per band;
    right, the mean predicted p10/p50/p90 of each band beside the observed 10th/50th/90th percentiles of its
    actual days late. Overall coverage and mean width in the title."""
    d, lo, mid, hi = (
        _as_float(a, name) for a, name in ((days_late, "days_late"), (q10, "q10"), (q50, "q50"), (q90, "q90"))
    )
    _same_length(days_late=d, q10=lo, q50=mid, q90=hi)
    keep = ~np.isnan(d) & ~np.isnan(lo) & ~np.isnan(mid) & ~np.isnan(hi)
    d, lo, mid, hi = d[keep], lo[keep], mid[keep], hi[keep]
    fig = Figure(figsize=(12, 4.6), layout="constrained")
    ax_cov, ax_q = fig.subplots(1, 2)
    if len(d) == 0:
        _note(ax_cov, "no settled row")
        _note(ax_q, "no settled row")
        return fig
    b = equal_count_bins(mid, bands)
    used = np.unique(b)
    inside = (d >= lo) & (d <= hi)
    x = np.arange(len(used))
    labels, cover, counts, pred, obs = [], [], [], [], []
    for k in used:
        m = b == k
        labels.append(f"{_fmt_days(mid[m].min())} to {_fmt_days(mid[m].max())}")
        cover.append(inside[m].mean())
        counts.append(int(m.sum()))
        pred.append((lo[m].mean(), mid[m].mean(), hi[m].mean()))
        obs.append(np.quantile(d[m], QUANTILES))
    bars = ax_cov.bar(x, cover, color="#4c72b0")
    for bar, c in zip(bars, counts, strict=True):
        ax_cov.annotate(f"n={c:,}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                        textcoords="offset points", xytext=(0, 2), fontsize="x-small")  # fmt: skip
    ax_cov.axhline(NOMINAL_COVERAGE, color="firebrick", linestyle="--", linewidth=1, label="nominal 0.8")
    ax_cov.set(ylim=(0, 1.05), xticks=x, ylabel="share inside [p10, p90]", xlabel="predicted p50 band (days)")
    ax_cov.set_xticklabels(labels, rotation=30, ha="right", fontsize="small")
    ax_cov.legend(loc="lower right", fontsize="small")
    pred_a, obs_a = np.array(pred), np.array(obs)
    ax_q.errorbar(x - 0.12, pred_a[:, 1], yerr=[pred_a[:, 1] - pred_a[:, 0], pred_a[:, 2] - pred_a[:, 1]],
                  fmt="o", capsize=3, label="predicted p10 / p50 / p90 (band mean)")  # fmt: skip
    ax_q.errorbar(x + 0.12, obs_a[:, 1], yerr=[obs_a[:, 1] - obs_a[:, 0], obs_a[:, 2] - obs_a[:, 1]],
                  fmt="s", capsize=3, label="actual 10th / 50th / 90th percentile")  # fmt: skip
    ax_q.axhline(0, color="grey", linewidth=0.8)
    ax_q.set(xticks=x, ylabel="days late (settled - due)", xlabel="predicted p50 band (days)")
    ax_q.set_xticklabels(labels, rotation=30, ha="right", fontsize="small")
    ax_q.legend(loc="upper left", fontsize="small")
    fig.suptitle(
        f"Days-late intervals on {len(d):,} settled rows: coverage {inside.mean():.3f} (nominal "
        f"{NOMINAL_COVERAGE:.1f}), mean width {(hi - lo).mean():.1f} days"
    )
    return fig


# --- the pooled table -------------------------------------------------------------------------------------------

TABLE_KEYS: tuple[str, ...] = (
    *[k for k in CLASSIFICATION_KEYS if k != "n"],
    *[k for k in REGRESSION_KEYS if k != "n"],
    "n",
    "n_labelled",
    "n_days_late",
)


def _cell(key: str, value: Any) -> str:
    if value is None:
        return NOT_APPLICABLE
    v = _to_float(value)
    if math.isnan(v):
        return "nan"
    if key in _COUNT_KEYS:
        return f"{v:,.0f}"
    return f"{v:.2f}" if key in _DAY_KEYS else f"{v:.4f}"


def pooled_table(
    results: Mapping[str, Mapping[str, float]], keys: Sequence[str] | None = None, first: str = "relance"
) -> str:
    """A fixed-width text table for the CLI: one row per method (``first``, i.e. relance, on top, then the others
    in their order), one column per metric key (``TABLE_KEYS`` order, then any other key in order of appearance,
    or ``keys``). ``–`` where a method has no such metric (a baseline without quantiles), ``nan`` where it has
    one that could not be computed (AUC on a single class). Probabilities and shares with 4 decimals, days with 2,
    counts as integers."""
    methods = sorted(results, key=lambda m: m != first)  # stable: only moves `first` to the top
    if keys is None:
        present = list(dict.fromkeys(k for m in methods for k in results[m]))
        keys = [k for k in TABLE_KEYS if k in present] + [k for k in present if k not in TABLE_KEYS]
    header = ["method", *keys]
    body = [[m, *(_cell(k, results[m].get(k)) for k in keys)] for m in methods]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in body)])
