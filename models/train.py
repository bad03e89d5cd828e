"""Train a LightGBM candidate, log what is needed to trust it to MLflow, register it as ``@challenger``.

``train_and_maybe_promote`` is the one call a flow makes: load labelled rows, split by time with a purge,
train, compare with baselines and with the current champion on the same test rows, and move ``@champion``
only if the gate in ``models.registry.promote_if_better`` passes.

Data that cannot train a classifier (``UntrainableData``: too little history for a time split, a single class,
too few rows or too few of either class, thresholds below) never fails the run: the current ``@champion`` is
kept, or, when there is none, the best baseline is registered as a pyfunc version holding ``@champion``
(tagged ``relance.kind=baseline``), so scoring and reminders go on. The result says so (``trained=False``,
``fallback``, ``reason``) and a WARNING is logged. Any other error is a bug and raises.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import warnings
from dataclasses import dataclass, field
from datetime import date
from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import Any

import duckdb
import lightgbm as lgb
import mlflow
import mlflow.data
import numpy as np
import pandas as pd
from mlflow.data.code_dataset_source import CodeDatasetSource
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score

from models import pyfunc as pyfunc_module
from models.contract import (
    CATEGORICAL_FEATURES,
    DAYS_LATE,
    FEATURE_COLUMNS,
    FEATURES_RELATION,
    LABELS_RELATION,
    NUMERIC_FEATURES,
    PREDICTION,
    QUANTILE_COLUMNS,
    QUANTILES,
    TARGET,
)
from models.evaluate import (
    baseline_metrics,
    baseline_rules,
    baseline_scores,
    best_baseline,
    compare_to_champion,
    fallback_baseline,
    prefixed,
    roc_calibration_figure,
    try_baseline_metrics,
)
from models.features import dataset_hash, load_training_frame
from models.metrics import (
    amount_weights,
    calibration_figure,
    customer_bootstrap_ci,
    frame_metrics,
    interval_figure,
    segment_table,
    shap_summary_figure,
    snapshot_weights,
)
from models.pyfunc import Calibration, FeatureSpec, PaymentDelayModel, logit
from models.reasons import REASON_PHRASES
from models.registry import CHALLENGER, CHAMPION, client_for, find_alias, mlflow_uris, promote_if_better
from models.split import Split, UntrainableData, time_split

logger = logging.getLogger(__name__)

NUM_BOOST_ROUND = 200
# Chosen on the IBM sample's 2012 H2 months (rolling origin, never on the 2013 months the README reports) among
# three settings: small trees and a slow rate generalise best on ledgers of a few thousand invoices; early
# stopping on the calibration slice gives larger ledgers the rounds they need.
DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.03,
    "num_leaves": 7,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.7,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 5.0,
    "cat_smooth": 10.0,
    "num_threads": 2,
    "deterministic": True,
    "force_col_wise": True,
    "verbosity": -1,
}


SNAPSHOT_WEIGHT = "_snapshot_weight"
AMOUNT_WEIGHT = "_amount_weight"
BOOTSTRAP_RESAMPLES = 200  # customer bootstrap of the test metrics' intervals
SHAP_SAMPLE_ROWS = 2000  # rows of the test set behind the SHAP summary plot
MAX_BOOST_ROUND = 1000  # upper bound; early stopping on the calibration slice picks the rounds
MIN_BOOST_ROUND = 20
EARLY_STOPPING_ROUNDS = 50
CALIBRATION_SHARE = 0.2  # last share of training rows (by as-of date) held out to calibrate
MIN_CALIBRATION_ROWS = 50
PRIOR_COLUMN = "cust_late_share"  # the customer's own record, stacked beside the booster in the calibration
STACKING_C = 10.0  # mild L2 on the stacking weights (a few hundred slice rows on small ledgers)
MIN_REGRESSION_ROWS = 50  # settled rows needed to fit days-late quantiles
INTERVAL_COVERAGE = 0.8  # p10..p90
# LightGBM's quantile objective refits every leaf by a percentile: several times slower than the classifier. A
# seeded sample of settled rows (plenty for three quantiles) and a faster learning rate keep it in proportion.
QUANTILE_PARAMS: dict[str, Any] = {"objective": "quantile", "metric": "quantile", "learning_rate": 0.1}
QUANTILE_MAX_ROUNDS = 300
QUANTILE_MAX_ROWS = 50_000

# Below these, a fitted model and its test metrics are noise (LightGBM's min_data_in_leaf is 30; an AUC on a
# handful of positives swings by tenths): the run keeps the champion or serves a baseline instead.
MIN_TRAIN_ROWS = 200  # labelled training rows after the purge
MIN_TRAIN_CLASS_ROWS = 20  # rows of each class (late, not late) among them
MIN_TEST_ROWS = 50  # labelled test rows
MIN_TEST_CLASS_ROWS = 5  # rows of each class among them

FALLBACK_KEPT_CHAMPION = "kept_champion"
FALLBACK_BASELINE = "baseline"


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    experiment_id: str
    model_name: str
    model_version: str
    model_uri: str
    metrics: dict[str, float]  # candidate on the test rows: auc, log_loss, brier, pr_auc, base_rate, mean_p
    baseline_metrics: dict[str, dict[str, float]]  # {"constant": {...}, "cust_late_share": {...}}
    window: dict[str, str | int]
    dataset_hash: str
    champion_metrics: dict[str, float] | None = None  # previous champion on the same test rows
    champion_version: str | None = None
    promoted: bool = False
    reason: str = "not evaluated for promotion"
    trained: bool = True  # False: nothing was trained (untrainable data); see ``fallback`` and ``reason``
    fallback: str | None = None  # FALLBACK_KEPT_CHAMPION or FALLBACK_BASELINE when not trained
    model: PaymentDelayModel | None = field(default=None, repr=False, compare=False)  # in-memory, training path
    # the evaluated model's test rows: keys, label, p_late and each baseline's p (the promotion gate's input)
    test_scores: pd.DataFrame | None = field(default=None, repr=False, compare=False)


def ensure_experiment(tracking_uri: str, experiment_name: str, artifact_root: Path | str) -> str:
    client = client_for(tracking_uri)
    exp = client.get_experiment_by_name(experiment_name)
    if exp is not None:
        return exp.experiment_id
    location = (Path(artifact_root) / experiment_name).expanduser().resolve()
    location.mkdir(parents=True, exist_ok=True)
    logger.info("creating MLflow experiment %r with artifacts in %s", experiment_name, location)
    return client.create_experiment(experiment_name, artifact_location=location.as_uri())


def check_trainable(split: Split) -> None:
    """Raise ``UntrainableData`` when ``split`` cannot train or honestly evaluate a classifier: a single class
    in train or test, fewer than ``MIN_TRAIN_ROWS``/``MIN_TEST_ROWS`` rows, or fewer than
    ``MIN_TRAIN_CLASS_ROWS``/``MIN_TEST_CLASS_ROWS`` rows of either class."""
    limits = {"train": (MIN_TRAIN_ROWS, MIN_TRAIN_CLASS_ROWS), "test": (MIN_TEST_ROWS, MIN_TEST_CLASS_ROWS)}
    window = split.window()
    for part, frame in (("train", split.train), ("test", split.test)):
        labels = frame[TARGET].dropna()
        where = f"{part} rows ({len(labels)}, {window[part + '_start']}..{window[part + '_end']})"
        counts = labels.astype(int).value_counts().to_dict()
        classes = sorted(counts)
        min_rows, min_class = limits[part]
        if len(classes) < 2:
            raise UntrainableData(
                f"{where} hold a single {TARGET} class {classes}: cannot train or evaluate a classifier"
            )
        if len(labels) < min_rows:
            raise UntrainableData(f"{where}: too few to train or evaluate a classifier (need at least {min_rows})")
        if min(counts.values()) < min_class:
            raise UntrainableData(
                f"{where} hold {counts.get(1, 0)} late and {counts.get(0, 0)} on-time {TARGET} rows: too few of "
                f"one class (need at least {min_class} of each)"
            )


def _calibration_slice(frame: pd.DataFrame, share: float) -> tuple[np.ndarray, np.ndarray, pd.Timestamp | None]:
    """Masks (early, late) splitting ``frame`` by as-of date: the last ``share`` of rows (whole dates) are the
    calibration slice; early rows keep only labels observed by the slice's first date (purge), so the model
    fitted on them has seen nothing of the slice's outcomes. (None, None, None) when the slice cannot be formed."""
    dates = pd.to_datetime(frame["as_of_date"]).dt.normalize()
    unique = np.sort(dates.unique())
    if len(unique) < 2:
        return np.zeros(len(frame), bool), np.zeros(len(frame), bool), None
    counts = dates.value_counts().reindex(unique).to_numpy()
    tail = np.cumsum(counts[::-1])[::-1]  # rows on or after each date
    candidates = np.nonzero(tail <= share * len(frame))[0]
    idx = int(candidates[0]) if len(candidates) else len(unique) - 1
    idx = max(idx, 1)
    start = pd.Timestamp(unique[idx])
    late = (dates >= start).to_numpy(copy=True)
    early = (dates < start).to_numpy(copy=True)
    if "label_observed_date" in frame.columns:
        early &= (pd.to_datetime(frame["label_observed_date"]) <= start).to_numpy()
    return early, late, start


def _dataset(spec: FeatureSpec, x: np.ndarray, label: np.ndarray, weight: np.ndarray | None) -> lgb.Dataset:
    """A LightGBM dataset from rows of the matrix ``spec.transform`` made (built once per fit, then sliced)."""
    return lgb.Dataset(
        x,
        label=label,
        weight=weight,
        feature_name=list(spec.feature_columns),
        categorical_feature=list(spec.categorical),
        params={"verbosity": -1},
        free_raw_data=False,
    )


def _fit_rounds(
    params: dict[str, Any],
    spec: FeatureSpec,
    x: np.ndarray,
    label: np.ndarray,
    weight: np.ndarray | None,
    early: np.ndarray,
    late: np.ndarray,
    max_rounds: int,
) -> tuple[lgb.Booster | None, int]:
    """Fit on the early rows with early stopping on the late slice: (booster, best number of rounds)."""
    train_set = _dataset(spec, x[early], label[early], None if weight is None else weight[early])
    valid_set = _dataset(spec, x[late], label[late], None if weight is None else weight[late])
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=max_rounds,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)],
    )
    return booster, max(MIN_BOOST_ROUND, int(booster.best_iteration or max_rounds))


def _stacked_platt(p_raw: np.ndarray, y: np.ndarray, slice_frame: pd.DataFrame, base_rate: float) -> Calibration:
    """Platt scaling with the customer's as-of late share beside the booster's log-odds (``Calibration`` docs),
    fitted on the held-out slice; plain Platt when the frame has no such column."""
    template = Calibration(method="stacked", prior_column=PRIOR_COLUMN, prior_fill=float(base_rate))
    if PRIOR_COLUMN not in slice_frame.columns:
        lr = LogisticRegression(C=1e6).fit(logit(p_raw).reshape(-1, 1), y)
        return Calibration(method="platt", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))
    prior, no_history = template.prior_terms(slice_frame, len(p_raw))
    x = np.column_stack([logit(p_raw), prior, no_history])
    lr = LogisticRegression(C=STACKING_C).fit(x, y)
    a, c, d = (float(v) for v in lr.coef_[0])
    return dataclasses.replace(template, a=a, b=float(lr.intercept_[0]), c=c, d=d)


def _conformal_adjust(y: np.ndarray, lo: np.ndarray, hi: np.ndarray, coverage: float) -> float:
    """Split-conformal widening of [lo, hi] so that ``coverage`` of the held-out rows fall inside (CQR)."""
    scores = np.maximum(lo - y, y - hi)
    n = len(scores)
    level = min(1.0, np.ceil((n + 1) * coverage) / n)
    return float(np.quantile(scores, level, method="higher"))


def _prepare(
    train: pd.DataFrame, params: dict[str, Any] | None, seed: int, weight_column: str | None
) -> tuple[dict[str, Any], FeatureSpec, pd.DataFrame, np.ndarray, np.ndarray, np.ndarray | None]:
    """LightGBM params, the feature spec, the frame (index reset), its matrix (transformed once), label, weights."""
    lgb_params = {**DEFAULT_PARAMS, **(params or {}), "seed": seed}
    spec = FeatureSpec.fit(train, numeric=NUMERIC_FEATURES, categorical=CATEGORICAL_FEATURES, output_column=PREDICTION)
    train = train.reset_index(drop=True)
    y = pd.to_numeric(train[TARGET]).to_numpy(dtype=np.float64)
    weight = None if weight_column is None else train[weight_column].to_numpy(dtype=np.float64)
    return lgb_params, spec, train, spec.transform(train), y, weight


def _refit_like(
    like: PaymentDelayModel,
    train: pd.DataFrame,
    *,
    params: dict[str, Any] | None,
    seed: int,
    weight_column: str | None,
) -> PaymentDelayModel:
    lgb_params, spec, train, x, y, weight = _prepare(train, params, seed, weight_column)
    booster = lgb.train(lgb_params, _dataset(spec, x, y, weight), num_boost_round=like.booster.current_iteration())
    quantiles: dict[str, lgb.Booster] = {}
    days = pd.to_numeric(train[DAYS_LATE], errors="coerce") if DAYS_LATE in train else None
    if like.quantile_boosters and days is not None and days.notna().sum() >= MIN_REGRESSION_ROWS:
        known = _quantile_rows(days, seed)
        d = days.to_numpy(dtype=np.float64)
        full = _dataset(spec, x[known], d[known], None if weight is None else weight[known])
        for alpha, column in zip(QUANTILES, QUANTILE_COLUMNS, strict=True):
            rounds = like.quantile_boosters[column].current_iteration()
            quantiles[column] = lgb.train({**lgb_params, **QUANTILE_PARAMS, "alpha": alpha}, full, rounds)
    return PaymentDelayModel.from_fitted(
        booster, spec, quantile_boosters=quantiles, calibration=like.calibration, phrases=REASON_PHRASES
    )


def _quantile_rows(days: pd.Series, seed: int) -> np.ndarray:
    """Settled rows the quantile boosters train on: all of them, or a seeded sample of QUANTILE_MAX_ROWS."""
    known = days.notna().to_numpy(copy=True)
    if known.sum() > QUANTILE_MAX_ROWS:
        rng = np.random.default_rng(seed)
        keep = np.zeros(len(known), bool)
        keep[rng.choice(np.flatnonzero(known), QUANTILE_MAX_ROWS, replace=False)] = True
        known = keep
    return known


def fit_payment_model(
    train: pd.DataFrame,
    *,
    params: dict[str, Any] | None = None,
    seed: int = 0,
    weight_column: str | None = None,
    like: PaymentDelayModel | None = None,
) -> PaymentDelayModel:
    """Fit the classifier (``is_late``), the days-late quantile models and their calibration on ``train``.

    The last ``CALIBRATION_SHARE`` of rows by as-of date is a time-held-out slice: models fitted on the earlier rows
    (labels observed before the slice) choose the number of boosting rounds (early stopping), fit the probability
    calibration (Platt, or isotonic on large slices) and the conformal widening of the p10..p90 interval; then every
    model is refitted on all rows with those rounds and the calibration applied on top. Days late train only on rows
    whose ``days_late`` is known (settled: the caller nulls it when the settlement is after its cutoff).
    ``weight_column`` weighs rows (e.g. snapshot weights: one invoice seen on many as-of dates counts once).

    ``like``: refit the boosters of that model on ``train`` with its rounds, and keep its calibration and
    conformal widening (which were fitted on data it never trained on) instead of holding out a slice again: the
    served model refitted on every labelled row after evaluation.
    """
    if like is not None:
        return _refit_like(like, train, params=params, seed=seed, weight_column=weight_column)
    lgb_params, spec, train, x, y, weight = _prepare(train, params, seed, weight_column)
    early, late, start = _calibration_slice(train, CALIBRATION_SHARE)
    usable = (
        start is not None
        and early.sum() >= MIN_CALIBRATION_ROWS
        and late.sum() >= MIN_CALIBRATION_ROWS
        and len(np.unique(y[early])) == 2
        and len(np.unique(y[late])) == 2
    )
    rounds = NUM_BOOST_ROUND
    calibration = Calibration()
    if usable:
        first, rounds = _fit_rounds(lgb_params, spec, x, y, weight, early, late, MAX_BOOST_ROUND)
        p_slice = np.asarray(first.predict(x[late], num_iteration=rounds))
        calibration = _stacked_platt(p_slice, y[late].astype(int), train.loc[late], float(y[early].mean()))
        calibration = dataclasses.replace(calibration, slice_rows=int(late.sum()), slice_start=str(start.date()))
    else:
        logger.info("no calibration slice (too few rows or a single class in it): probabilities are uncalibrated")
    booster = lgb.train(lgb_params, _dataset(spec, x, y, weight), num_boost_round=rounds)

    quantiles: dict[str, lgb.Booster] = {}
    days = pd.to_numeric(train.get(DAYS_LATE), errors="coerce") if DAYS_LATE in train else None
    if days is not None and days.notna().sum() >= MIN_REGRESSION_ROWS:
        known = _quantile_rows(days, seed)
        d = days.to_numpy(dtype=np.float64)
        q_rounds: dict[str, int] = {}
        slice_preds: dict[str, np.ndarray] = {}
        reg_usable = usable and (early & known).sum() >= MIN_CALIBRATION_ROWS and (late & known).sum() >= 20
        for alpha, column in zip(QUANTILES, QUANTILE_COLUMNS, strict=True):
            q_params = {**lgb_params, **QUANTILE_PARAMS, "alpha": alpha}
            if reg_usable:
                first, q_rounds[column] = _fit_rounds(
                    q_params, spec, x, d, weight, early & known, late & known, QUANTILE_MAX_ROUNDS
                )
                slice_preds[column] = np.asarray(first.predict(x[late & known], num_iteration=q_rounds[column]))
            else:
                q_rounds[column] = QUANTILE_MAX_ROUNDS // 2
        if reg_usable:
            adjust = _conformal_adjust(
                d[late & known], slice_preds[QUANTILE_COLUMNS[0]], slice_preds[QUANTILE_COLUMNS[-1]], INTERVAL_COVERAGE
            )
            calibration = dataclasses.replace(calibration, interval_adjust_days=adjust)
        full = _dataset(spec, x[known], d[known], None if weight is None else weight[known])
        for alpha, column in zip(QUANTILES, QUANTILE_COLUMNS, strict=True):
            q_params = {**lgb_params, **QUANTILE_PARAMS, "alpha": alpha}
            quantiles[column] = lgb.train(q_params, full, num_boost_round=q_rounds[column])
    else:
        logger.info("too few settled rows (< %d) for days-late quantiles: none fitted", MIN_REGRESSION_ROWS)
    return PaymentDelayModel.from_fitted(
        booster, spec, quantile_boosters=quantiles, calibration=calibration, phrases=REASON_PHRASES
    )


def _pip_requirements() -> list[str]:
    return [f"{p}=={pkg_version(p)}" for p in ("mlflow", "lightgbm", "pandas", "numpy")]


def _days_late_known_by(frame: pd.DataFrame, cutoff: date | pd.Timestamp) -> pd.DataFrame:
    """``frame`` with ``days_late`` nulled where the settlement came after ``cutoff`` (not known then)."""
    out = frame.copy()
    if DAYS_LATE in out and "settled_date" in out:
        late_news = ~(pd.to_datetime(out["settled_date"]) <= pd.Timestamp(cutoff))
        out.loc[late_news, DAYS_LATE] = np.nan
    return out


def _with_weights(frame: pd.DataFrame) -> pd.DataFrame:
    """Snapshot weights (each invoice counts once however many as-of dates it was open on) and those weights
    times amount weights (each currency unit counts once), as columns."""
    out = frame.copy()
    out[SNAPSHOT_WEIGHT] = snapshot_weights(out["invoice_id"].to_numpy())
    amounts = pd.to_numeric(out.get("open_amount", out.get("amount")), errors="coerce").fillna(0.0).clip(lower=0.0)
    if float(amounts.sum()) > 0:
        out[AMOUNT_WEIGHT] = out[SNAPSHOT_WEIGHT] * amount_weights(amounts.to_numpy())
    else:
        out[AMOUNT_WEIGHT] = out[SNAPSHOT_WEIGHT]
    return out


def evaluation_metrics(scored: pd.DataFrame, *, n_boot: int = BOOTSTRAP_RESAMPLES) -> dict[str, float]:
    """Every test metric of a frame of predictions, under consistent MLflow names: ``<metric>`` pooled over the
    snapshots, ``<metric>_snapshot_weighted`` (each invoice counts once), ``<metric>_amount_weighted``, and
    ``<metric>_ci_low`` / ``_ci_high`` (95 % customer bootstrap) for the AUC and the MAE of days late."""
    out = {k: float(v) for k, v in frame_metrics(scored).items()}
    y = scored[TARGET].to_numpy()
    out["pr_auc"] = float(average_precision_score(y, scored[PREDICTION])) if len(np.unique(y)) == 2 else np.nan
    for suffix, column in (("snapshot_weighted", SNAPSHOT_WEIGHT), ("amount_weighted", AMOUNT_WEIGHT)):
        weighted = frame_metrics(scored, weight=column)
        out.update({f"{k}_{suffix}": float(v) for k, v in weighted.items() if not k.startswith("n")})
    if n_boot and scored["customer_id"].nunique() > 1:
        ci = customer_bootstrap_ci(scored, frame_metrics, n_boot=n_boot)
        for key in ("auc", "mae_days_late", "brier", "coverage_p10_p90"):
            if key in ci:
                out[f"{key}_ci_low"], out[f"{key}_ci_high"] = (float(v) for v in ci[key])
    return out


def _monthly_table(scored: pd.DataFrame) -> pd.DataFrame:
    """Test metrics per as-of month: the backtest table of a training run (is the model steady over time?)."""
    months = pd.to_datetime(scored["as_of_date"]).dt.to_period("M").astype(str)
    rows = [{"month": m, **frame_metrics(part)} for m, part in scored.groupby(months, sort=True)]
    return pd.DataFrame(rows)


def train_candidate(
    split: Split,
    *,
    tracking_uri: str,
    artifact_root: Path | str,
    experiment_name: str,
    model_name: str,
    lineage: dict[str, str],
    target_name: str = "",
    refit_frame: pd.DataFrame | None = None,
    params: dict[str, Any] | None = None,
    seed: int = 0,
    num_boost_round: int = NUM_BOOST_ROUND,
) -> TrainResult:
    """Fit on ``split.train``, evaluate on ``split.test`` beside the baselines, log one MLflow run, register the
    served model under ``model_name`` and point ``@challenger`` at the new version.

    The evaluated model sees only the training rows (days late only where settled by the cutoff). The served model
    is then refitted on ``refit_frame`` (every labelled row known on the run's date) when given: the metrics of the
    run are the evaluated model's, the registered model the refitted one (tag ``relance.refit_on_all``)."""
    check_trainable(split)
    lgb_params = {**DEFAULT_PARAMS, **(params or {}), "seed": seed}
    train = _with_weights(_days_late_known_by(split.train, split.cutoff_date))
    evaluated = fit_payment_model(train, params=params, seed=seed, weight_column=SNAPSHOT_WEIGHT)

    test = _with_weights(split.test)
    preds = evaluated.predict_frame(test, reasons=False)
    scored = pd.concat([test.reset_index(drop=True), preds.reset_index(drop=True)], axis=1)
    metrics = evaluation_metrics(scored)
    y_test = scored[TARGET].to_numpy()
    p_test = scored[PREDICTION].to_numpy()
    baselines = baseline_metrics(split.train, split.test)
    baseline_p = baseline_scores(split.train, split.test)
    best_name, best_auc = best_baseline(baselines)
    window = split.window()
    data_hash = dataset_hash(pd.concat([split.train, split.test], ignore_index=True))

    served = evaluated
    if refit_frame is not None:
        served = fit_payment_model(
            _with_weights(refit_frame), params=params, seed=seed, weight_column=SNAPSHOT_WEIGHT, like=evaluated
        )

    all_metrics: dict[str, float] = {
        **prefixed("test", metrics),
        "train_base_rate": float(split.train[TARGET].mean()),
        "best_baseline_test_auc": best_auc,
        "test_auc_gain_over_best_baseline": metrics["auc"] - best_auc,
        "calibration_slice_rows": float(evaluated.calibration.slice_rows),
        "interval_adjust_days": float(evaluated.calibration.interval_adjust_days),
    }
    for name, m in baselines.items():
        all_metrics.update(prefixed(f"baseline_{name}_test", m))
    all_metrics = {k: v for k, v in all_metrics.items() if v is not None and np.isfinite(v)}

    tags = {str(k): str(v) for k, v in lineage.items()}
    tags.update(
        {
            "dataset.hash": data_hash,
            "dataset.features_relation": FEATURES_RELATION,
            "dataset.labels_relation": LABELS_RELATION,
            "best_baseline": best_name,
            "model_name": model_name,
            "relance.default_params": str(params is None).lower(),
            "relance.kind": "lightgbm",
            "relance.target_name": target_name,
            "relance.refit_on_all": str(refit_frame is not None).lower(),
            "relance.calibration": evaluated.calibration.method,
        }
    )
    run_params = {
        **{f"lgbm_{k}": v for k, v in lgb_params.items()},
        "num_boost_round": evaluated.booster.current_iteration(),
        "target": target_name or TARGET,
        "n_features": len(FEATURE_COLUMNS),
        "refit_rows": 0 if refit_frame is None else len(refit_frame),
        **window,
    }

    experiment_id = ensure_experiment(tracking_uri, experiment_name, artifact_root)
    run_name = f"{model_name}-cutoff-{split.cutoff_date}"
    with (
        mlflow_uris(tracking_uri),
        tempfile.TemporaryDirectory(prefix="relance-model-") as tmp,
        mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run,
    ):
        mlflow.set_tags(tags)
        mlflow.log_params(run_params)
        mlflow.log_metrics(all_metrics)
        mlflow.log_dict(window, "data_window.json")
        mlflow.log_dict(evaluated.calibration.to_dict(), "calibration.json")

        scores = {"model": p_test, **baseline_p}
        mlflow.log_figure(roc_calibration_figure(y_test, scores), "plots/roc_calibration.png")
        mlflow.log_figure(calibration_figure(y_test, scores), "plots/calibration.png")
        if scored[DAYS_LATE].notna().any() and scored[QUANTILE_COLUMNS[1]].notna().any():
            q10, q50, q90 = (scored[c] for c in QUANTILE_COLUMNS)
            mlflow.log_figure(interval_figure(scored[DAYS_LATE], q10, q50, q90), "plots/days_late_intervals.png")
        sample = test.head(SHAP_SAMPLE_ROWS)
        x_sample = evaluated.spec.transform(sample)
        mlflow.log_figure(
            shap_summary_figure(evaluated.contributions(x_sample), x_sample, list(evaluated.spec.feature_columns)),
            "plots/shap_summary.png",
        )
        mlflow.log_table(segment_table(scored).reset_index(drop=True), "segment_table.json")
        mlflow.log_table(_monthly_table(scored), "backtest_table.json")
        importance = pd.DataFrame(
            {
                "feature": served.spec.feature_columns,
                "gain": served.booster.feature_importance("gain"),
                "split": served.booster.feature_importance("split"),
            }
        ).sort_values("gain", ascending=False)
        mlflow.log_table(importance, "feature_importance.json")

        source = CodeDatasetSource({"relation": FEATURES_RELATION, "labels": LABELS_RELATION, **window, **tags})
        # "integer column" hint concerns the 0/1 target in the logged dataset, not a model input
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
            for context, frame in (("training", split.train), ("testing", split.test)):
                ds = mlflow.data.from_pandas(
                    frame[[*FEATURE_COLUMNS, TARGET]].reset_index(drop=True),
                    source=source,
                    name=f"ml_invoice_features_{context}",
                    targets=TARGET,
                )
                mlflow.log_input(ds, context=context)

        example = split.test[list(FEATURE_COLUMNS)].head(5).reset_index(drop=True)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=Path(pyfunc_module.__file__),
            artifacts=served.save_artifacts(Path(tmp)),
            registered_model_name=model_name,
            signature=served.spec.signature(),
            input_example=example,
            pip_requirements=_pip_requirements(),
        )
    model_version = str(info.registered_model_version)
    client = client_for(tracking_uri)
    client.set_registered_model_alias(model_name, CHALLENGER, model_version)
    for key, value in {**tags, "cutoff_date": str(split.cutoff_date)}.items():
        client.set_model_version_tag(model_name, model_version, key, value)
    logger.info(
        "trained %s v%s (run %s): test auc %.4f vs best baseline %s %.4f",
        model_name,
        model_version,
        run.info.run_id,
        metrics["auc"],
        best_name,
        best_auc,
    )
    return TrainResult(
        run_id=run.info.run_id,
        experiment_id=experiment_id,
        model_name=model_name,
        model_version=model_version,
        model_uri=f"models:/{model_name}/{model_version}",
        metrics=metrics,
        baseline_metrics=baselines,
        window=window,
        dataset_hash=data_hash,
        model=served,
        test_scores=scored[["invoice_id", "customer_id", "as_of_date", TARGET, PREDICTION]].assign(
            **{f"p_baseline_{k}": v for k, v in baseline_p.items()}
        ),
    )


def _champion_trained_on(split: Split, *, tracking_uri: str, model_name: str) -> TrainResult | None:
    """The champion, if it was trained on exactly these rows (same dataset hash, default parameters).

    Re-running a day must not mint a new model version from identical data: the champion stays and nothing is
    logged. Different data (a new day, a reload that changed rows) always trains a candidate.
    """
    ref = find_alias(tracking_uri, model_name, CHAMPION)
    if ref is None:
        return None
    data_hash = dataset_hash(pd.concat([split.train, split.test], ignore_index=True))
    run = client_for(tracking_uri).get_run(ref.run_id)
    if run.data.tags.get("dataset.hash") != data_hash or run.data.tags.get("relance.default_params") != "true":
        return None

    def strip(prefix: str) -> dict[str, float]:
        return {k[len(prefix) :]: v for k, v in run.data.metrics.items() if k.startswith(prefix)}

    baselines = {name: strip(f"baseline_{name}_test_") for name in ("constant", "cust_late_share")}
    logger.info("champion v%s was trained on this exact dataset (%s…): not retrained", ref.version, data_hash[:12])
    return TrainResult(
        run_id=ref.run_id,
        experiment_id=run.info.experiment_id,
        model_name=model_name,
        model_version=str(ref.version),
        model_uri=ref.uri,
        metrics=strip("test_"),
        baseline_metrics={k: v for k, v in baselines.items() if v},
        window=split.window(),
        dataset_hash=data_hash,
        promoted=False,
        reason=f"champion v{ref.version} was trained on this exact dataset: kept, not retrained",
    )


def train_and_maybe_promote(
    con: duckdb.DuckDBPyConnection,
    as_of_date: date,
    *,
    tracking_uri: str,
    artifact_root: Path | str,
    experiment_name: str,
    model_name: str,
    horizon_days: int,
    min_gain: float,
    lineage: dict[str, str],
    test_fraction: float = 0.25,
    params: dict[str, Any] | None = None,
    seed: int = 0,
) -> TrainResult:
    """Load -> time split (purged) -> train candidate (@challenger) -> compare with @champion -> gate.

    ``UntrainableData`` (too little history, a single class, too few rows) does not raise: see ``fall_back``.
    """
    frame = load_training_frame(con, as_of_date, horizon_days=horizon_days)
    target_name = target_of(frame)
    experiment_name = experiment_for(experiment_name, target_name)
    split: Split | None = None
    try:
        split = time_split(frame, test_fraction=test_fraction, horizon_days=horizon_days)
        check_trainable(split)
    except UntrainableData as exc:
        return fall_back(
            frame,
            split,
            str(exc),
            as_of_date=as_of_date,
            tracking_uri=tracking_uri,
            artifact_root=artifact_root,
            experiment_name=experiment_name,
            model_name=model_name,
            lineage={**lineage, "relance.target_name": target_name},
        )
    if params is None:
        same = _champion_trained_on(split, tracking_uri=tracking_uri, model_name=model_name)
        if same is not None:
            return same
    result = train_candidate(
        split,
        tracking_uri=tracking_uri,
        artifact_root=artifact_root,
        experiment_name=experiment_name,
        model_name=model_name,
        lineage={**lineage, "relance.as_of_date": str(as_of_date)},
        target_name=target_name,
        refit_frame=frame,
        params=params,
        seed=seed,
    )
    champion = compare_to_champion(
        split.test, tracking_uri=tracking_uri, model_name=model_name, test_cutoff_date=str(split.cutoff_date)
    )
    client = client_for(tracking_uri)
    if champion is not None:
        for key, value in prefixed("champion_test", champion.metrics).items():
            client.log_metric(result.run_id, key, value)
        client.set_tag(result.run_id, "champion.version", champion.version)
        if champion.notes:
            client.set_tag(result.run_id, "champion.notes", "; ".join(champion.notes))
    scores = result.test_scores
    assert scores is not None  # train_candidate always returns them
    best_name, _ = best_baseline(result.baseline_metrics)
    decision = promote_if_better(
        client,
        model_name,
        result.model_version,
        y=scores[TARGET].to_numpy(),
        p_candidate=scores[PREDICTION].to_numpy(),
        p_best_baseline=scores[f"p_baseline_{best_name}"].to_numpy(),
        p_champion=None if champion is None else champion.predictions,
        groups=scores["customer_id"].to_numpy(),
        min_gain=min_gain,
        seed=seed,
        baseline_name=best_name,
    )
    return dataclasses.replace(
        result,
        champion_metrics=None if champion is None else champion.metrics,
        champion_version=None if champion is None else champion.version,
        promoted=decision.promoted,
        reason=decision.reason,
    )


def target_of(frame: pd.DataFrame) -> str:
    """The target's honest name, as the labels relation recorded it (one per training frame)."""
    if "target_name" not in frame.columns:
        return ""
    names = sorted({str(v) for v in frame["target_name"].dropna().unique()})
    if len(names) > 1:
        raise ValueError(f"training rows mix targets {names}: rebuild ml_invoice_labels with one target")
    return names[0] if names else ""


def experiment_for(experiment_name: str, target_name: str) -> str:
    """One MLflow experiment per target (``payment_delay-late_any``), so the compare view never lines up runs
    that predict different things."""
    return f"{experiment_name}-{target_name}" if target_name else experiment_name


def _frame_window(frame: pd.DataFrame) -> dict[str, str | int]:
    dates = pd.to_datetime(frame["as_of_date"])
    return {
        "train_start": str(dates.min().date()),
        "train_end": str(dates.max().date()),
        "n_train": len(frame),
        "n_train_snapshots": int(dates.nunique()),
    }


def fall_back(
    frame: pd.DataFrame,
    split: Split | None,
    why: str,
    *,
    as_of_date: date,
    tracking_uri: str,
    artifact_root: Path | str,
    experiment_name: str,
    model_name: str,
    lineage: dict[str, str],
) -> TrainResult:
    """Nothing could be trained (``why``): keep ``@champion`` if there is one, else serve the best baseline.

    The baseline (``models.evaluate.fallback_baseline``: the best by test AUC when the split could measure it,
    else ``cust_late_share``) is fitted on every labelled row of ``frame`` (its base rate), logged as one MLflow
    run and a pyfunc model version with the same input contract as a trained model, and given ``@champion``:
    its version and run carry ``relance.kind=baseline`` and ``relance.fallback_reason``. The next trainable
    candidate must beat it through the usual gate.
    """
    baselines = try_baseline_metrics(split.train, split.test) if split is not None else {}
    window = split.window() if split is not None else _frame_window(frame)
    data_hash = dataset_hash(frame)
    client = client_for(tracking_uri)
    ref = find_alias(tracking_uri, model_name, CHAMPION)
    if ref is not None:
        reason = f"not trained: {why}; champion v{ref.version} kept"
        logger.warning("%s: %s", model_name, reason)
        experiment_id = client.get_run(ref.run_id).info.experiment_id if ref.run_id else ""
        return TrainResult(
            run_id=ref.run_id or "",
            experiment_id=experiment_id,
            model_name=model_name,
            model_version=ref.version,
            model_uri=ref.uri,
            metrics={},
            baseline_metrics=baselines,
            window=window,
            dataset_hash=data_hash,
            champion_version=ref.version,
            promoted=False,
            reason=reason,
            trained=False,
            fallback=FALLBACK_KEPT_CHAMPION,
        )

    name = fallback_baseline(baselines)
    rule = baseline_rules(frame)[name]
    spec = FeatureSpec.fit(frame, numeric=NUMERIC_FEATURES, categorical=CATEGORICAL_FEATURES, output_column=PREDICTION)
    model = PaymentDelayModel.from_baseline(rule, spec, phrases=REASON_PHRASES)
    measured = f" (test AUC {baselines[name]['auc']:.4f})" if baselines else " (not measurable on these rows)"
    reason = f"not trained: {why}; no champion yet: baseline {name}{measured} serves as champion"
    tags = {str(k): str(v) for k, v in lineage.items()}
    tags.update(
        {
            "relance.as_of_date": str(as_of_date),
            "relance.kind": "baseline",
            "relance.target_name": target_of(frame),
            "relance.fallback_reason": reason,
            "dataset.hash": data_hash,
            "dataset.features_relation": FEATURES_RELATION,
            "dataset.labels_relation": LABELS_RELATION,
            "best_baseline": name,
            "model_name": model_name,
        }
    )
    experiment_id = ensure_experiment(tracking_uri, experiment_name, artifact_root)
    with (
        mlflow_uris(tracking_uri),
        tempfile.TemporaryDirectory(prefix="relance-baseline-") as tmp,
        mlflow.start_run(experiment_id=experiment_id, run_name=f"{model_name}-baseline-{as_of_date}") as run,
    ):
        mlflow.set_tags(tags)
        mlflow.log_params({"baseline": name, "baseline_base_rate": rule.base_rate, "target": TARGET, **window})
        for baseline, m in baselines.items():
            mlflow.log_metrics(prefixed(f"baseline_{baseline}_test", m))
        mlflow.log_dict(window, "data_window.json")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=Path(pyfunc_module.__file__),
            artifacts=model.save_artifacts(Path(tmp)),
            registered_model_name=model_name,
            signature=spec.signature(),
            input_example=frame[list(FEATURE_COLUMNS)].head(5).reset_index(drop=True),
            pip_requirements=_pip_requirements(),
        )
    version = str(info.registered_model_version)
    client.set_registered_model_alias(model_name, CHAMPION, version)
    version_tags = {
        **tags,
        "promotion.promoted": "true",
        "promotion.reason": reason,
        "promotion.previous_champion_version": "",
    }
    for key, value in version_tags.items():
        client.set_model_version_tag(model_name, version, key, value)
    logger.warning("%s v%s: %s", model_name, version, reason)
    return TrainResult(
        run_id=run.info.run_id,
        experiment_id=experiment_id,
        model_name=model_name,
        model_version=version,
        model_uri=f"models:/{model_name}/{version}",
        metrics=baselines.get(name, {}),
        baseline_metrics=baselines,
        window=window,
        dataset_hash=data_hash,
        promoted=True,
        reason=reason,
        trained=False,
        fallback=FALLBACK_BASELINE,
        model=model,
    )
