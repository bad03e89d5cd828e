"""Backtest on any ledger: rolling monthly origin, relance beside the baselines a collections team already has.

For every month M between ``start`` and ``end``, the origin is M's first day: relance's model and every baseline
are fitted on what was known then, and predict every invoice issued in M as of its issue date. The pooled metrics
over all months (and each month's) say how good the model would have been, had it run then.

What "known at the origin" means, row by row:

* features: the rows of ``ml.ml_invoice_features`` built by the same dbt models as training and scoring, on a
  daily as-of grid (``snapshot_interval_days = 1``, ``history_start_days = 1``) so that every issue date is a grid
  date; one dbt build for the whole backtest (as of the day after the later of ``end`` and the ledger's last
  fact), into a scratch warehouse of its own, then every month is pure Python over the built relations;
* training rows: ``as_of_date < M`` and ``label_observed_date < M`` (the day the label is known whatever the
  outcome, ``ml.ml_invoice_labels``): an invoice whose label becomes known on or after the origin never trains that
  month's model. By default only the rows at issue (``as_of_date = issue_date``, the task: "at issue"); with
  ``train_rows="all"`` every snapshot, weighted so that each invoice counts once. ``days_late`` (the regression
  label) only where the invoice was settled before M, NaN otherwise;
* test rows: the invoices issued in M (and in [start, end]), their row at ``as_of_date = issue_date``, minus the
  profile's evaluation exclusions (``evaluation.exclude``: e.g. disputed invoices, an outcome the IBM file does not
  date) and minus the rows whose label is not observable in the ledger yet; each count is reported. An invoice
  settled on its issue date is never open on it and has no row (counted too).

The baselines use facts known on the row's date only: the customer's history of invoices settled before it
(``cust_late_share`` of the features; the mean and the median of days late, 0 when paid on time, of the same
invoices, read from ``intermediate.int_invoice_settlement_dates``, the relation the features' history comes from).
They are evaluation references, never features: nothing here feeds a model that scores.

The metric definitions are ``models.metrics``'s. ``run_backtest`` logs one MLflow run (experiment
``relance-backtest-<target_name>``); ``relance evaluate`` (relance/cli.py) imports the file and calls it.
"""

from __future__ import annotations

import calendar
import dataclasses
import hashlib
import json
import logging
import math
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import duckdb
import mlflow
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from models.contract import (
    CONTEXT_COLUMNS,
    DAYS_LATE,
    FEATURE_COLUMNS,
    FEATURES_RELATION,
    KEY_COLUMNS,
    LABELS_RELATION,
    PREDICTION,
    QUANTILE_COLUMNS,
    TARGET,
    target_name,
)
from models.evaluate import roc_calibration_figure
from models.features import check_contract, feature_select
from models.metrics import (
    CLASSIFICATION_KEYS,
    REGRESSION_KEYS,
    amount_band,
    calibration_figure,
    customer_bootstrap_ci,
    frame_metrics,
    interval_figure,
    pooled_table,
    segment_table,
    snapshot_weights,
)
from models.registry import mlflow_uris
from models.train import ensure_experiment, fit_payment_model
from relance import dbt
from relance.settings import Settings
from relance.sources.base import file_sha256
from relance.warehouse import connection

logger = logging.getLogger(__name__)

TrainRows = Literal["issue", "all"]
TRAIN_ROWS: tuple[str, ...] = ("issue", "all")
RELANCE = "relance"
BASELINES: tuple[str, ...] = (
    "always_on_time",
    "customer_mean",
    "customer_median",
    "customer_late_rate",
    "logistic_late_rate",
)
# columns of the pooled table, in order: what the issue asks for
TABLE_KEYS: tuple[str, ...] = (
    "auc",
    "brier",
    "calibration_error",
    "mae_days_late",
    "pinball_mean",
    "coverage_p10_p90",
)
# the metric keys a method reports, without the row counts (each dict's ``n`` becomes n_labelled / n_days_late)
CLASSIFICATION_OUTPUT: tuple[str, ...] = tuple(k for k in CLASSIFICATION_KEYS if k != "n")
REGRESSION_OUTPUT: tuple[str, ...] = tuple(k for k in REGRESSION_KEYS if k != "n")
CI_KEYS: tuple[str, ...] = ("auc", "mae_days_late")
SETTLEMENT_RELATION = "intermediate.int_invoice_settlement_dates"
MIN_TRAIN_ROWS = 30  # fewer labelled rows (or a single class) at an origin: the month is skipped for every method
BOOTSTRAP_RESAMPLES = 500
TEST_MONTH = "test_month"  # YYYY-MM of the origin, a column of the predictions
WEIGHT = "weight"


class BacktestError(ValueError):
    """The backtest cannot run on this input (no invoice issued in the range, bad range, no month trainable)."""


# --- exclusions from the profile -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exclusion:
    """Invoices a profile's ``evaluation.exclude`` rule takes out of the test rows."""

    reason: str
    where: str
    invoice_ids: frozenset[str]


def evaluation_exclusions(path: Path | str, profile: str) -> list[Exclusion]:
    """The invoices each ``evaluation.exclude`` rule of a tabular ``profile`` selects in ``path``.

    Each rule is the invoices entity's own mapping with the rule's ``where`` added to it (ANDed with the entity's
    own): the file is read with the profile's reader and the ids come from the invoices' ``invoice_id`` expression,
    trimmed as the loader trims ids, so they are the ids the warehouse holds. ``fec`` and ``sql`` sources, and
    profiles without the key, exclude nothing.
    """
    if profile in ("fec", "sql"):
        return []
    from relance.sources.tabular import load_profile, read_tabular

    prof = load_profile(profile)
    rules = prof.evaluation.exclude
    if not rules:
        return []
    invoices = prof.entities["invoices"]
    out = []
    for rule in rules:
        where = rule.where if invoices.where is None else f"({invoices.where}) AND ({rule.where})"
        # every entity kept (their columns count as used: no "unmapped column" warning); only invoices are read
        entities = {**prof.entities, "invoices": invoices.model_copy(update={"where": where, "distinct": False})}
        ids: set[str] = set()
        for extract in read_tabular(Path(path), prof.model_copy(update={"entities": entities})):
            if extract.entity != "invoices":
                continue
            table = extract.table
            column = table.read_all().column("invoice_id") if hasattr(table, "read_all") else table["invoice_id"]
            ids.update(str(v).strip() for v in column.to_pylist() if v is not None and str(v).strip())
        out.append(Exclusion(reason=rule.reason, where=rule.where, invoice_ids=frozenset(ids)))
        logger.info("evaluation exclusion %r (%s): %d invoice(s) in %s", rule.reason, rule.where, len(ids), path)
    return out


# --- what is backtested -----------------------------------------------------------------------------------------

_TARGET_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"late_any", "late_over"),
    (r"late_over_(\d+)d", "late_over"),
    (r"unpaid_(\d+)d_after_due", "unpaid_after_due"),
    (r"unpaid_(\d+)d_after_as_of", "unpaid_after"),
)
TARGET_CHOICES = "late_any | late_over_Nd | unpaid_Nd_after_due | unpaid_Nd_after_as_of"


def parse_target(text: str) -> tuple[str, int]:
    """An honest target name (``models.contract.target_name``) -> (target_kind, days): ``late_any`` ->
    (late_over, 0), ``late_over_5d`` -> (late_over, 5), ``unpaid_30d_after_due`` -> (unpaid_after_due, 30),
    ``unpaid_30d_after_as_of`` -> (unpaid_after, 30)."""
    for pattern, kind in _TARGET_PATTERNS:
        match = re.fullmatch(pattern, text.strip())
        if match:
            days = int(match.group(1)) if match.groups() else 0
            if target_name(kind, days) != text.strip():  # late_over_0d is late_any: one name per target
                raise BacktestError(f"target {text!r} is spelled {target_name(kind, days)!r}")
            return kind, days
    raise BacktestError(f"unknown target {text!r}; expected {TARGET_CHOICES} (N in days)")


def source_sha256(path: Path | str) -> str:
    """sha256 of a ledger file; for a directory, of its files' names and hashes in name order."""
    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f"{f.relative_to(path)}\0{file_sha256(f)}\n".encode())
    return h.hexdigest()


# --- dates ------------------------------------------------------------------------------------------------------


def month_origins(start: date, end: date) -> list[date]:
    """First day of every month that meets [start, end]."""
    if start > end:
        raise BacktestError(f"--from {start} is after --to {end}")
    out, m = [], date(start.year, start.month, 1)
    while m <= end:
        out.append(m)
        m = _next_month(m)
    return out


def _next_month(m: date) -> date:
    return date(m.year + (m.month == 12), m.month % 12 + 1, 1)


def month_window(origin: date, start: date, end: date) -> tuple[date, date]:
    """The issue dates a month tests: its days within [start, end]."""
    last = date(origin.year, origin.month, calendar.monthrange(origin.year, origin.month)[1])
    return max(origin, start), min(last, end)


def build_as_of_date(end: date, ledger_end: date | None) -> date:
    """The dbt build's as-of date: the day after the later of ``end`` and the ledger's last fact, so every grid
    date up to it is built and a label observable in the ledger is known."""
    last = end if ledger_end is None else max(end, ledger_end)
    return last + timedelta(days=1)


def backtest_settings(
    base: Settings, data_dir: Path, *, target_kind: str, target_days: int, dbt_threads: int | None = None
) -> Settings:
    """Settings of the scratch warehouse under ``data_dir``: a daily as-of grid from the day after the first
    invoice (every issue date is a snapshot), the backtest's target; the rest as ``base``."""
    days = {"late_threshold_days": target_days} if target_kind == "late_over" else {"horizon_days": target_days}
    return Settings(
        **{
            "project_root": base.project_root,
            "duckdb_memory_limit": base.duckdb_memory_limit,
            "dbt_threads": dbt_threads or base.dbt_threads,
            "data_dir": data_dir,
            "warehouse_path": data_dir / "warehouse.duckdb",
            "snapshot_interval_days": 1,
            "history_start_days": 1,
            "target_kind": target_kind,
            **days,
        }
    )


# --- reading the built relations --------------------------------------------------------------------------------


def ledger_span(con: duckdb.DuckDBPyConnection, start: date, end: date) -> tuple[int, date | None]:
    """(invoices issued in [start, end], the ledger's last fact: latest issue, due or payment date) from the
    staging views, which hold the current rows of raw."""
    n = con.execute(
        "SELECT count(*) FROM staging.stg_invoices WHERE document_type = 'invoice' AND issue_date BETWEEN ? AND ?",
        [start, end],
    ).fetchone()[0]
    last = con.execute(
        "SELECT greatest((SELECT max(issue_date) FROM staging.stg_invoices), "
        "(SELECT max(payment_date) FROM staging.stg_payments))"
    ).fetchone()[0]
    return int(n), last


def load_backtest_frame(con: duckdb.DuckDBPyConnection, *, train_rows: TrainRows = "issue") -> pd.DataFrame:
    """Feature rows with their labels and the baselines' as-of history, for every grid date (``train_rows="all"``)
    or only the rows at issue (``"issue"``). Columns: keys, context, features, ``is_late``, ``days_late``,
    ``settled_date``, ``label_observed_date``, ``is_label_known``, ``target_name``, and ``hist_settled_count``,
    ``hist_mean_days_late``, ``hist_median_days_late`` (days late 0 when paid on time, of the customer's invoices
    settled strictly before the row's date; null without history)."""
    check_contract(con, FEATURES_RELATION, KEY_COLUMNS + CONTEXT_COLUMNS + FEATURE_COLUMNS)
    at_issue = "WHERE CAST(f.as_of_date AS DATE) = CAST(f.issue_date AS DATE)" if train_rows == "issue" else ""
    sql = f"""
WITH rows AS (
  SELECT
    {feature_select("f")},
    CAST(l.{TARGET} AS DOUBLE) AS {TARGET},
    CAST(l.days_late AS DOUBLE) AS {DAYS_LATE},
    CAST(l.settled_date AS DATE) AS settled_date,
    CAST(l.label_observed_date AS DATE) AS label_observed_date,
    l.is_label_known,
    l.target_name
  FROM {FEATURES_RELATION} AS f
  JOIN {LABELS_RELATION} AS l
    ON l.invoice_id = f.invoice_id AND CAST(l.as_of_date AS DATE) = CAST(f.as_of_date AS DATE)
  {at_issue}
),
keys AS (SELECT DISTINCT customer_id, as_of_date FROM rows),
history AS (
  SELECT
    keys.customer_id,
    keys.as_of_date,
    count(s.invoice_id) AS hist_settled_count,
    -- CASE, not greatest(days_late, 0) alone: greatest ignores a null, so a customer without history would get 0
    avg(CASE WHEN s.invoice_id IS NOT NULL THEN greatest(s.days_late, 0) END) AS hist_mean_days_late,
    median(CASE WHEN s.invoice_id IS NOT NULL THEN greatest(s.days_late, 0) END) AS hist_median_days_late
  FROM keys
  LEFT JOIN {SETTLEMENT_RELATION} AS s
    ON s.customer_id = keys.customer_id AND s.settled_date < keys.as_of_date
  GROUP BY keys.customer_id, keys.as_of_date
)
SELECT rows.*, history.* EXCLUDE (customer_id, as_of_date)
FROM rows
JOIN history USING (customer_id, as_of_date)
ORDER BY rows.as_of_date, rows.invoice_id
"""
    df = con.execute(sql).df()
    for col in ("as_of_date", "issue_date", "due_date", "settled_date", "label_observed_date"):
        df[col] = pd.to_datetime(df[col])
    for col in ("hist_settled_count", "hist_mean_days_late", "hist_median_days_late"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    logger.info("backtest frame: %d rows (%s), %d invoices", len(df), train_rows, df["invoice_id"].nunique())
    return df


# --- rows of one origin ------------------------------------------------------------------------------------------


def training_rows(frame: pd.DataFrame, origin: date, *, train_rows: TrainRows = "issue") -> pd.DataFrame:
    """The rows a model fitted on ``origin`` may learn from: as of a date before it, label observed before it
    (``label_observed_date < origin``), at issue unless ``train_rows="all"`` (then with ``weight``, 1 / the
    invoice's rows, so each invoice counts once). ``days_late`` is NaN unless the invoice was settled before the
    origin."""
    m = pd.Timestamp(origin)
    keep = (frame["as_of_date"] < m) & (frame["label_observed_date"] < m) & frame[TARGET].notna()
    if train_rows == "issue":
        keep &= frame["as_of_date"] == frame["issue_date"]
    train = frame.loc[keep].copy()
    settled_before = train["settled_date"].notna() & (train["settled_date"] < m)
    train[DAYS_LATE] = train[DAYS_LATE].where(settled_before)
    train[WEIGHT] = snapshot_weights(train["invoice_id"]) if len(train) else np.empty(0)
    return train


@dataclass(frozen=True)
class TestRows:
    rows: pd.DataFrame
    issued: int  # invoices issued in the window (whether they have a row or not)
    excluded: dict[str, int]  # exclusion reason -> rows removed
    label_unknown: int  # rows whose label the ledger cannot tell yet
    not_open_at_issue: int  # invoices settled on their issue date: no row to score


def test_rows(
    frame: pd.DataFrame,
    window: tuple[date, date],
    exclusions: Sequence[Exclusion] = (),
    *,
    issued_ids: Sequence[str] | None = None,
) -> TestRows:
    """The invoices issued in ``window`` (inclusive) at their issue date, minus the exclusions (applied in
    order: a row counts for the first rule that takes it) and the rows whose label is not yet observable.
    ``issued_ids``: every invoice issued in the window, to count those without a row (settled on issue)."""
    lo, hi = (pd.Timestamp(d) for d in window)
    at_issue = frame["as_of_date"] == frame["issue_date"]
    rows = frame.loc[at_issue & (frame["issue_date"] >= lo) & (frame["issue_date"] <= hi)]
    issued = len(rows) if issued_ids is None else len(set(issued_ids))
    not_open = 0 if issued_ids is None else len(set(issued_ids) - set(rows["invoice_id"]))
    excluded: dict[str, int] = {}
    for rule in exclusions:
        hit = rows["invoice_id"].isin(rule.invoice_ids)
        excluded[rule.reason] = excluded.get(rule.reason, 0) + int(hit.sum())
        rows = rows.loc[~hit]
    known = rows["is_label_known"].fillna(False).astype(bool) & rows[TARGET].notna()
    return TestRows(rows.loc[known].copy(), issued, excluded, int((~known).sum()), not_open)


# --- methods: relance and the baselines ---------------------------------------------------------------------------

Predictor = Callable[[pd.DataFrame], pd.DataFrame]


def _output(index: pd.Index, p: np.ndarray | None, q: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> pd.DataFrame:
    out = pd.DataFrame(index=index)
    out[PREDICTION] = np.nan if p is None else p
    for column, values in zip(QUANTILE_COLUMNS, q if q is not None else (None, None, None), strict=True):
        out[column] = np.nan if values is None else values
    return out


def _days_clipped(days: pd.Series) -> pd.Series:
    return pd.to_numeric(days, errors="coerce").clip(lower=0)


def _interval(train_days: pd.Series, train_point: pd.Series) -> tuple[float, float]:
    """Empirical 10th and 90th percentiles of the training residuals (days late - point), where both are known."""
    resid = (train_days - train_point).dropna()
    if resid.empty:
        return 0.0, 0.0
    lo, hi = np.quantile(resid.to_numpy(dtype=np.float64), [0.1, 0.9])
    return float(lo), float(hi)


def _point_baseline(train: pd.DataFrame, point: Callable[[pd.DataFrame, float], pd.Series]) -> Predictor:
    """A days-late baseline: ``point(frame, fallback)`` is its p50 (``fallback``: the training rows' mean days late
    when a customer has no history), p10/p90 the point plus the training residuals' percentiles. No probability."""
    known = train[DAYS_LATE].notna()
    fallback = float(_days_clipped(train.loc[known, DAYS_LATE]).mean()) if known.any() else 0.0
    lo, hi = _interval(train.loc[known, DAYS_LATE], point(train.loc[known], fallback))

    def predict(test: pd.DataFrame) -> pd.DataFrame:
        mid = point(test, fallback).to_numpy(dtype=np.float64)
        return _output(test.index, None, (mid + lo, mid, mid + hi))

    return predict


def fit_baselines(train: pd.DataFrame) -> dict[str, Predictor]:
    """The baselines fitted on ``train`` (their fallbacks, intervals and the logistic regression), as functions of
    the test rows. Each gives what it is: a probability (``p_late``) or days late (p10/p50/p90), or both."""
    y = train[TARGET].to_numpy(dtype=np.float64)
    base_rate = float(y.mean()) if len(y) else 0.5

    def on_time(frame: pd.DataFrame, fallback: float) -> pd.Series:
        return pd.Series(0.0, index=frame.index)

    def mean(frame: pd.DataFrame, fallback: float) -> pd.Series:
        return frame["hist_mean_days_late"].fillna(fallback)

    def median(frame: pd.DataFrame, fallback: float) -> pd.Series:
        return frame["hist_median_days_late"].fillna(fallback)

    always = _point_baseline(train, on_time)

    def always_on_time(test: pd.DataFrame) -> pd.DataFrame:
        out = always(test)
        out[PREDICTION] = 0.0  # nobody is late: one constant score, AUC 0.5
        return out

    def late_rate(frame: pd.DataFrame) -> np.ndarray:
        share = pd.to_numeric(frame["cust_late_share"], errors="coerce")
        return share.fillna(base_rate).clip(0.0, 1.0).to_numpy(dtype=np.float64)

    def customer_late_rate(test: pd.DataFrame) -> pd.DataFrame:
        return _output(test.index, late_rate(test), None)

    def lr_inputs(frame: pd.DataFrame) -> np.ndarray:
        has = pd.to_numeric(frame["cust_late_share"], errors="coerce").notna().to_numpy(dtype=np.float64)
        return np.column_stack([late_rate(frame), has])

    logistic = None
    if len(np.unique(y)) == 2:
        logistic = LogisticRegression(C=1.0).fit(lr_inputs(train), y.astype(int), sample_weight=train[WEIGHT])

    def logistic_late_rate(test: pd.DataFrame) -> pd.DataFrame:
        p = np.full(len(test), base_rate) if logistic is None else logistic.predict_proba(lr_inputs(test))[:, 1]
        return _output(test.index, p, None)

    return {
        "always_on_time": always_on_time,
        "customer_mean": _point_baseline(train, mean),
        "customer_median": _point_baseline(train, median),
        "customer_late_rate": customer_late_rate,
        "logistic_late_rate": logistic_late_rate,
    }


def fit_relance(train: pd.DataFrame, *, seed: int = 0, params: dict[str, Any] | None = None) -> Predictor:
    """relance's model (``models.train.fit_payment_model``, what the daily run trains) fitted on ``train``."""
    weighted = train[WEIGHT].nunique() > 1
    model = fit_payment_model(train, params=params, seed=seed, weight_column=WEIGHT if weighted else None)

    def predict(test: pd.DataFrame) -> pd.DataFrame:
        return model.predict_frame(test, reasons=False)[[PREDICTION, *QUANTILE_COLUMNS]]

    return predict


# --- the monthly loop -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonthLog:
    origin: date
    test_from: date
    test_to: date
    n_train: int
    n_train_days_late: int
    n_test: int
    issued: int
    excluded: dict[str, int]
    label_unknown: int
    not_open_at_issue: int
    skipped: str | None = None
    seconds: float = 0.0


def _issued_ids(con: duckdb.DuckDBPyConnection | None, lo: date, hi: date) -> list[str] | None:
    if con is None:
        return None
    rows = con.execute(
        "SELECT invoice_id FROM staging.stg_invoices WHERE document_type = 'invoice' AND issue_date BETWEEN ? AND ?",
        [lo, hi],
    ).fetchall()
    return [r[0] for r in rows]


def run_months(
    frame: pd.DataFrame,
    start: date,
    end: date,
    *,
    exclusions: Sequence[Exclusion] = (),
    train_rows: TrainRows = "issue",
    seed: int = 0,
    con: duckdb.DuckDBPyConnection | None = None,
    fit: Callable[[pd.DataFrame], Predictor] | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[pd.DataFrame, list[MonthLog]]:
    """Fit and predict month by month. Returns the predictions (one row per test invoice and method: keys,
    ``test_month``, truth ``is_late`` / ``days_late``, ``p_late`` and the quantiles, NaN where a method has none)
    and a log per month. ``fit`` replaces relance's model (tests); ``con`` counts the invoices without a row."""
    fit = fit or (lambda train: fit_relance(train, seed=seed))
    predictions, logs = [], []
    for origin in month_origins(start, end):
        t0 = time.perf_counter()
        window = month_window(origin, start, end)
        test = test_rows(frame, window, exclusions, issued_ids=_issued_ids(con, *window))
        train = training_rows(frame, origin, train_rows=train_rows)
        log = MonthLog(
            origin=origin,
            test_from=window[0],
            test_to=window[1],
            n_train=len(train),
            n_train_days_late=int(train[DAYS_LATE].notna().sum()),
            n_test=len(test.rows),
            issued=test.issued,
            excluded=test.excluded,
            label_unknown=test.label_unknown,
            not_open_at_issue=test.not_open_at_issue,
        )
        skipped = None
        if test.rows.empty:
            skipped = "no test row"
        elif len(train) < MIN_TRAIN_ROWS or train[TARGET].nunique() < 2:
            skipped = f"{len(train)} training row(s), {train[TARGET].nunique()} class(es): too little to fit"
        if skipped:
            logs.append(dataclasses.replace(log, skipped=skipped, seconds=time.perf_counter() - t0))
            logger.info("origin %s: skipped (%s)", origin, skipped)
            continue
        # the baselines' fit (base rate, residual percentiles, the logistic regression) on the rows at issue, the
        # task's rows, whichever rows relance trains on: later snapshots of an invoice still open are later payers
        at_issue = train.loc[train["as_of_date"] == train["issue_date"]]
        methods = {RELANCE: fit(train), **fit_baselines(at_issue if len(at_issue) else train)}
        base = test.rows[["invoice_id", "customer_id", "as_of_date", "issue_date", "due_date", TARGET, DAYS_LATE]]
        base = base.assign(**{TEST_MONTH: origin.strftime("%Y-%m")})
        segments = test.rows[["amount", "customer_type", "sector_section", "cust_settled_invoice_count"]]
        for name, predict in methods.items():
            out = predict(test.rows)
            predictions.append(pd.concat([base.assign(method=name), segments, out], axis=1))
        seconds = time.perf_counter() - t0
        logs.append(dataclasses.replace(log, seconds=seconds))
        message = (
            f"origin {origin}: trained on {len(train):,} row(s) ({log.n_train_days_late:,} with days late), "
            f"tested {len(test.rows):,} invoice(s) in {seconds:.1f}s"
        )
        logger.info(message)
        if progress is not None:
            progress(message)
    if not predictions:
        raise BacktestError(
            f"no month between {start} and {end} could be backtested: "
            + "; ".join(f"{m.origin:%Y-%m}: {m.skipped}" for m in logs)
        )
    return pd.concat(predictions, ignore_index=True), logs


# --- metrics ----------------------------------------------------------------------------------------------------


def method_metrics(rows: pd.DataFrame) -> dict[str, float]:
    """The metrics of one method's predictions, only the keys it can have: classification when it gives a
    probability on every row, regression when it gives the three quantiles on every row; ``n`` the test rows."""
    has_p = bool(rows[PREDICTION].notna().all())
    has_q = bool(rows[list(QUANTILE_COLUMNS)].notna().all(axis=None))
    absent = ([] if has_p else [PREDICTION]) + ([] if has_q else list(QUANTILE_COLUMNS))
    m = frame_metrics(rows.drop(columns=absent))
    keep = ["n"]
    if has_p:
        keep += [*CLASSIFICATION_OUTPUT, "n_labelled"]
    if has_q:
        keep += [*REGRESSION_OUTPUT, "n_days_late"]
    return {k: _plain(m[k]) for k in keep if k in m}


def _plain(v: Any) -> float | int | None:
    if isinstance(v, int | np.integer):
        return int(v)
    v = float(v)
    return None if math.isnan(v) else v


def pooled_metrics(predictions: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Method -> its metrics over every month's test rows together (relance first, baselines in order)."""
    order = [RELANCE, *BASELINES]
    return {name: method_metrics(rows) for name, rows in _by_method(predictions, order)}


def _by_method(predictions: pd.DataFrame, order: Sequence[str]) -> list[tuple[str, pd.DataFrame]]:
    groups = dict(tuple(predictions.groupby("method", sort=False)))
    return [(name, groups[name]) for name in order if name in groups]


def month_metrics(predictions: pd.DataFrame, logs: Sequence[MonthLog]) -> list[dict[str, Any]]:
    """Per month: its log (origin, counts, exclusions) and every method's metrics on its test rows."""
    out = []
    for log in logs:
        entry: dict[str, Any] = {
            "month": log.origin.strftime("%Y-%m"),
            "origin": log.origin.isoformat(),
            "test_from": log.test_from.isoformat(),
            "test_to": log.test_to.isoformat(),
            "n_train": log.n_train,
            "n_train_days_late": log.n_train_days_late,
            "n_test": log.n_test,
            "issued": log.issued,
            "excluded": log.excluded,
            "label_unknown": log.label_unknown,
            "not_open_at_issue": log.not_open_at_issue,
            "skipped": log.skipped,
            "seconds": round(log.seconds, 2),
        }
        rows = predictions.loc[predictions[TEST_MONTH] == entry["month"]]
        if not rows.empty:
            pooled = pooled_metrics(rows)
            entry["metrics"] = pooled.pop(RELANCE, {})
            entry["baselines"] = pooled
        out.append(entry)
    return out


def bootstrap_ci(predictions: pd.DataFrame, *, n_boot: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """95 % customer-bootstrap intervals of relance's pooled AUC and MAE (``models.metrics.customer_bootstrap_ci``)."""
    rows = predictions.loc[predictions["method"] == RELANCE].reset_index(drop=True)
    ci = customer_bootstrap_ci(rows, frame_metrics, n_boot=n_boot, seed=seed)
    out: dict[str, Any] = {"level": 0.95, "resamples": n_boot, "unit": "customer"}
    for key in CI_KEYS:
        if key in ci:
            out[key] = [_plain(ci[key][0]), _plain(ci[key][1])]
    return out


def history_band(frame: pd.DataFrame) -> pd.Series:
    """The customer's settled invoices before the row's date: none, 1-4, 5-19, 20 or more."""
    count = pd.to_numeric(frame["cust_settled_invoice_count"], errors="coerce")
    labels = ["none", "1-4", "5-19", "20+"]
    band = pd.cut(count, bins=[-np.inf, 0, 4, 19, np.inf], labels=labels)
    return band.cat.set_categories(labels)


SEGMENTS: dict[str, Any] = {
    "test_month": TEST_MONTH,
    "customer_history": history_band,
    "amount_band": amount_band,
    "customer_type": "customer_type",
    "sector_section": "sector_section",
}


def relance_segments(predictions: pd.DataFrame) -> pd.DataFrame:
    """relance's metrics by segment (month, customer history, amount band, customer type, sector)."""
    rows = predictions.loc[predictions["method"] == RELANCE].reset_index(drop=True)
    return segment_table(rows, segments=SEGMENTS)


# --- the whole backtest ------------------------------------------------------------------------------------------


@dataclass
class BacktestResult:
    target: str
    start: date
    end: date
    profile: str
    source: str
    file_sha256: str
    train_rows: str
    build_as_of: date
    n_test: int
    metrics: dict[str, Any]
    baselines: dict[str, dict[str, Any]]
    months: list[dict[str, Any]]
    ci: dict[str, Any]
    exclusions: list[dict[str, Any]]
    dropped: dict[str, int]
    timings: dict[str, float] = field(default_factory=dict)
    mlflow_run_id: str | None = None
    predictions: pd.DataFrame | None = field(default=None, repr=False)
    segments: pd.DataFrame | None = field(default=None, repr=False)

    def table(self) -> str:
        """The pooled table: relance then the baselines, the issue's columns, '–' where not applicable."""
        return pooled_table({RELANCE: self.metrics, **self.baselines}, keys=TABLE_KEYS, first=RELANCE)

    def ci_line(self) -> str:
        parts = []
        for key, label, fmt in (("auc", "AUC", "{:.4f}"), ("mae_days_late", "MAE", "{:.2f} days")):
            bounds = self.ci.get(key)
            if self.metrics.get(key) is None or not bounds or None in bounds:
                continue
            parts.append(
                f"{label} {fmt.format(self.metrics[key])} [{fmt.format(bounds[0])} .. {fmt.format(bounds[1])}]"
            )
        return f"relance, 95 % interval by customer bootstrap ({self.ci.get('resamples', 0)} resamples): " + ", ".join(
            parts
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "profile": self.profile,
            "source": self.source,
            "file_sha256": self.file_sha256,
            "train_rows": self.train_rows,
            "build_as_of": self.build_as_of.isoformat(),
            "n_test": self.n_test,
            "metrics": self.metrics,
            "baselines": self.baselines,
            "months": self.months,
            "ci": self.ci,
            "exclusions": self.exclusions,
            "dropped": self.dropped,
            "timings": self.timings,
            "mlflow_run_id": self.mlflow_run_id,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)


def run_backtest(
    settings: Settings,
    *,
    source: Path | str,
    profile: str,
    start: date,
    end: date,
    file_sha256: str,
    tracking_uri: str,
    artifact_root: Path | str,
    train_rows: TrainRows = "issue",
    seed: int = 0,
    apply_exclusions: bool = True,
    invoke: dbt.Invoke | None = None,
    progress: Callable[[str], None] | None = None,
    log_to_mlflow: bool = True,
) -> BacktestResult:
    """Build the features in ``settings``' warehouse (already imported: see ``backtest_settings``), run every
    month, compute the pooled and monthly metrics, log one MLflow run. ``apply_exclusions=False`` keeps the
    profile's excluded invoices in the test rows (they are still counted). Raises ``BacktestError`` when no
    invoice was issued in [start, end] or no month could be fitted."""
    if train_rows not in TRAIN_ROWS:
        raise BacktestError(f"train rows must be one of {', '.join(TRAIN_ROWS)}, got {train_rows!r}")
    month_origins(start, end)  # checks start <= end
    timings: dict[str, float] = {}
    say = progress or (lambda _m: None)

    t0 = time.perf_counter()
    exclusions = evaluation_exclusions(source, profile)
    applied = exclusions if apply_exclusions else []
    timings["exclusions_s"] = time.perf_counter() - t0

    # the staging views exist only after a build: count issued invoices in raw's current rows through them
    t0 = time.perf_counter()
    with connection(settings.warehouse) as con:  # read-write: the config of dbt's connection in this process
        n_raw = con.execute(
            "SELECT count(*), max(issue_date), min(issue_date) FROM raw.invoices WHERE issue_date BETWEEN ? AND ?",
            [start, end],
        ).fetchone()
        ledger_end = con.execute(
            "SELECT greatest((SELECT max(issue_date) FROM raw.invoices), (SELECT max(payment_date) FROM raw.payments))"
        ).fetchone()[0]
    if not n_raw[0]:
        raise BacktestError(f"no invoice was issued between {start} and {end} in {source}")
    as_of = build_as_of_date(end, ledger_end)
    say(f"building features on a daily grid up to {as_of} (dbt)")
    # --quiet: dbt's per-node lines would bury the table; a failure still raises with the failed nodes
    dbt.run_dbt(settings, [*dbt.backtest_build_args(settings, as_of), "--quiet"], invoke=invoke)
    timings["dbt_build_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    with connection(settings.warehouse) as con:  # read-write: the config of dbt's connection in this process
        n_issued, _ = ledger_span(con, start, end)
        if not n_issued:
            raise BacktestError(f"no invoice was issued between {start} and {end} in {source}")
        frame = load_backtest_frame(con, train_rows=train_rows)
        if frame.empty:
            raise BacktestError(f"{FEATURES_RELATION} holds no labelled row: nothing to backtest in {source}")
        target = str(frame["target_name"].iloc[0])
        predictions, logs = run_months(
            frame, start, end, exclusions=applied, train_rows=train_rows, seed=seed, con=con, progress=say
        )
    timings["months_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    pooled = pooled_metrics(predictions)
    relance = pooled.pop(RELANCE)
    ci = bootstrap_ci(predictions, seed=seed)
    segments = relance_segments(predictions)
    months = month_metrics(predictions, logs)
    timings["metrics_s"] = time.perf_counter() - t0
    excluded_total: dict[str, int] = {}
    for log in logs:
        for reason, n in log.excluded.items():
            excluded_total[reason] = excluded_total.get(reason, 0) + n
    if not apply_exclusions:  # kept: how many of the test rows the rules would have taken out
        tested = predictions.loc[predictions["method"] == RELANCE, "invoice_id"]
        excluded_total = {e.reason: int(tested.isin(e.invoice_ids).sum()) for e in exclusions}
    result = BacktestResult(
        target=target,
        start=start,
        end=end,
        profile=profile,
        source=str(source),
        file_sha256=file_sha256,
        train_rows=train_rows,
        build_as_of=as_of,
        n_test=int(relance.get("n", 0)),
        metrics=relance,
        baselines=pooled,
        months=months,
        ci=ci,
        exclusions=[
            {
                "reason": e.reason,
                "where": e.where,
                "applied": apply_exclusions,
                "invoices": len(e.invoice_ids),
                "test_rows": excluded_total.get(e.reason, 0),
            }
            for e in exclusions
        ],
        dropped={
            "issued": sum(m.issued for m in logs),
            "excluded": sum(excluded_total.values()) if apply_exclusions else 0,
            "label_unknown": sum(m.label_unknown for m in logs),
            "not_open_at_issue": sum(m.not_open_at_issue for m in logs),
            "in_skipped_months": sum(m.n_test for m in logs if m.skipped),
        },
        timings=timings,
        predictions=predictions,
        segments=segments,
    )
    if log_to_mlflow:
        t0 = time.perf_counter()
        result.mlflow_run_id = log_backtest(result, tracking_uri=tracking_uri, artifact_root=artifact_root)
        timings["mlflow_s"] = time.perf_counter() - t0
    result.timings = {k: round(v, 2) for k, v in timings.items()}
    return result


# --- MLflow ------------------------------------------------------------------------------------------------------


def experiment_name(target: str) -> str:
    return f"relance-backtest-{target}"


def mlflow_metrics(result: BacktestResult) -> dict[str, float]:
    """relance's pooled metrics under their names (``auc``, ``mae_days_late``, ...), each baseline's as
    ``baseline_<name>_<metric>``, the intervals as ``<metric>_ci_low`` / ``_ci_high``; None values left out."""
    out: dict[str, float] = {k: float(v) for k, v in result.metrics.items() if v is not None}
    for name, metrics in result.baselines.items():
        out.update({f"baseline_{name}_{k}": float(v) for k, v in metrics.items() if v is not None})
    for key in CI_KEYS:
        bounds = result.ci.get(key)
        if bounds and None not in bounds:
            out[f"{key}_ci_low"], out[f"{key}_ci_high"] = float(bounds[0]), float(bounds[1])
    return out


def log_backtest(result: BacktestResult, *, tracking_uri: str, artifact_root: Path | str) -> str:
    """One MLflow run in ``relance-backtest-<target>``: params, pooled metrics, the tables and the plots."""
    name = experiment_name(result.target)
    experiment_id = ensure_experiment(tracking_uri, name, artifact_root)
    params = {
        "file_sha256": result.file_sha256,
        "source": Path(result.source).name,
        "profile": result.profile,
        "from": result.start.isoformat(),
        "to": result.end.isoformat(),
        "target": result.target,
        "train_rows": result.train_rows,
        "n_test": result.n_test,
        "n_months": sum(1 for m in result.months if not m["skipped"]),
        "build_as_of": result.build_as_of.isoformat(),
        "origin": "rolling monthly (first day of each month)",
        "excluded": "; ".join(
            f"{e['reason']}: {e['test_rows']}" + ("" if e["applied"] else " (kept: --keep-excluded)")
            for e in result.exclusions
        )
        or "none",
    }
    table = pd.DataFrame(
        [{"method": RELANCE, **result.metrics}] + [{"method": k, **v} for k, v in result.baselines.items()]
    )
    months = pd.DataFrame(
        [
            {
                **{k: v for k, v in m.items() if k not in ("metrics", "baselines", "excluded")},
                "excluded": json.dumps(m["excluded"]),
                **{f"relance_{k}": v for k, v in (m.get("metrics") or {}).items()},
                **{
                    f"{b}_{k}": v
                    for b, metrics in (m.get("baselines") or {}).items()
                    for k, v in metrics.items()
                    if k in ("auc", "mae_days_late")
                },
            }
            for m in result.months
        ]
    )
    preds = result.predictions
    with (
        mlflow_uris(tracking_uri),
        tempfile.TemporaryDirectory(prefix="relance-backtest-") as tmp,
        mlflow.start_run(
            experiment_id=experiment_id, run_name=f"backtest-{result.profile}-{result.start}-{result.end}"
        ) as run,
    ):
        mlflow.set_tags({"relance.kind": "backtest", "relance.target": result.target})
        mlflow.log_params(params)
        mlflow.log_metrics(mlflow_metrics(result))
        mlflow.log_text(result.to_json(), "backtest.json")
        mlflow.log_text(result.table(), "backtest_table.txt")
        out = Path(tmp)
        table.to_csv(out / "backtest_table.csv", index=False)
        months.to_csv(out / "months.csv", index=False)
        if result.segments is not None:
            result.segments.to_csv(out / "segments.csv", index=False)
        if preds is not None:
            preds.to_csv(out / "predictions.csv", index=False)
        mlflow.log_artifacts(str(out))
        if preds is not None:
            _log_figures(preds)
    return run.info.run_id


def _log_figures(preds: pd.DataFrame) -> None:
    scored = [(name, rows) for name, rows in _by_method(preds, [RELANCE, *BASELINES]) if rows[PREDICTION].notna().all()]
    if scored:
        y = scored[0][1][TARGET].to_numpy()
        scores = {name: rows[PREDICTION].to_numpy() for name, rows in scored}
        if len(np.unique(y)) == 2:
            mlflow.log_figure(roc_calibration_figure(y, scores), "plots/roc_calibration.png")
        mlflow.log_figure(calibration_figure(y, scores), "plots/calibration.png")
    relance = preds.loc[preds["method"] == RELANCE]
    if relance[list(QUANTILE_COLUMNS)].notna().all(axis=None):
        mlflow.log_figure(
            interval_figure(relance[DAYS_LATE], *(relance[c] for c in QUANTILE_COLUMNS)), "plots/intervals.png"
        )
