"""Metrics, baselines and the champion comparison, all on the same held-out (later) snapshots.

Every model metric is reported beside the same metric for two baselines a collections team already has:
``constant`` (the training base rate for everyone) and ``cust_late_share`` (the customer's past share of late
invoices, the train base rate when the customer has no history).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score, roc_curve

from models.contract import FEATURE_COLUMNS, PREDICTION, TARGET
from models.predict import model_outputs
from models.pyfunc import BaselineRule
from models.registry import CHAMPION, client_for, find_alias, load_model

logger = logging.getLogger(__name__)

EPS = 1e-6
BASELINES: tuple[str, ...] = ("constant", "cust_late_share")
DEFAULT_FALLBACK_BASELINE = "cust_late_share"
# Base rate of a baseline fitted on no labelled row at all: uninformative, so the reminder policy's thresholds,
# not a made-up rate, decide what happens to customers without history.
FALLBACK_BASE_RATE = 0.5


def binary_metrics(y_true: np.ndarray | pd.Series, p: np.ndarray | pd.Series) -> dict[str, float]:
    """auc, log_loss, brier, pr_auc, base_rate, mean_p. Raises if ``y_true`` has a single class."""
    y = np.asarray(y_true, dtype=np.int64)
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    if len(np.unique(y)) < 2:
        raise ValueError(
            f"test labels hold a single class ({np.unique(y).tolist()}) over {len(y)} rows: "
            "AUC is undefined; use a longer history or a larger test_fraction"
        )
    if np.isnan(p).any():
        raise ValueError(f"{int(np.isnan(p).sum())} prediction(s) are NaN")
    return {
        "auc": float(roc_auc_score(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "base_rate": float(y.mean()),
        "mean_p": float(p.mean()),
    }


def baseline_rules(train: pd.DataFrame) -> dict[str, BaselineRule]:
    """The baselines as rules fitted on the training rows only (their base rate); the served fallback uses
    the same rules (``models.pyfunc.BaselineRule``). No labelled row: base rate ``FALLBACK_BASE_RATE``."""
    labels = pd.to_numeric(train[TARGET], errors="coerce").dropna() if TARGET in train else pd.Series(dtype=float)
    base_rate = float(labels.mean()) if len(labels) else FALLBACK_BASE_RATE
    return {name: BaselineRule(kind=name, base_rate=base_rate) for name in BASELINES}


def baseline_scores(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, np.ndarray]:
    """Baseline probabilities for the test rows, using only training information."""
    return {name: rule.predict_proba(test) for name, rule in baseline_rules(train).items()}


def baseline_metrics(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, dict[str, float]]:
    y = test[TARGET].to_numpy()
    return {name: binary_metrics(y, p) for name, p in baseline_scores(train, test).items()}


def best_baseline(baselines: dict[str, dict[str, float]]) -> tuple[str, float]:
    name = max(baselines, key=lambda k: baselines[k]["auc"])
    return name, baselines[name]["auc"]


def try_baseline_metrics(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, dict[str, float]]:
    """``baseline_metrics``, or ``{}`` when the test rows cannot measure them (empty, or a single class)."""
    if TARGET not in test or test[TARGET].dropna().nunique() < 2:
        return {}
    return baseline_metrics(train, test)


def fallback_baseline(baselines: dict[str, dict[str, float]]) -> str:
    """The baseline to serve when nothing can be trained: the best one by test AUC when it could be measured,
    else ``cust_late_share`` (ranks customers by their own as-of history; ``constant`` ranks nobody)."""
    return best_baseline(baselines)[0] if baselines else DEFAULT_FALLBACK_BASELINE


def prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    """``{"auc": .8}`` -> ``{"<prefix>_auc": .8}`` (MLflow metric keys)."""
    return {f"{prefix}_{k}": v for k, v in metrics.items()}


@dataclass(frozen=True)
class ChampionEvaluation:
    version: str
    run_id: str | None
    metrics: dict[str, float]
    cutoff_date: str | None = None  # the champion's own training cutoff, when it logged one
    notes: list[str] = field(default_factory=list)
    predictions: np.ndarray | None = field(default=None, repr=False)  # p_late on the test rows, in their order


def compare_to_champion(
    test: pd.DataFrame,
    *,
    tracking_uri: str,
    model_name: str,
    alias: str = CHAMPION,
    test_cutoff_date: str | None = None,
) -> ChampionEvaluation | None:
    """Score the current ``@champion`` on the same test rows as the candidate; None if there is no champion.

    If the champion was trained with a later cutoff than ``test_cutoff_date`` it has seen part of this test
    period and its AUC is optimistic; that is logged and returned in ``notes`` (the gate stays conservative).
    """
    ref = find_alias(tracking_uri, model_name, alias)
    if ref is None:
        logger.info("no %s@%s yet: nothing to compare against", model_name, alias)
        return None
    model = load_model(ref, tracking_uri)
    preds = model.predict(test[list(FEATURE_COLUMNS)])
    p = model_outputs(preds, len(test))[PREDICTION].to_numpy(dtype=np.float64)  # legacy p_late_30d models too
    metrics = binary_metrics(test[TARGET].to_numpy(), p)
    cutoff, notes = None, []
    if ref.run_id:
        cutoff = client_for(tracking_uri).get_run(ref.run_id).data.params.get("cutoff_date")
        if cutoff and test_cutoff_date and cutoff > test_cutoff_date:
            notes.append(
                f"champion v{ref.version} was trained with cutoff {cutoff}, after this test cutoff "
                f"{test_cutoff_date}: its test AUC is optimistic"
            )
            logger.warning(notes[-1])
    logger.info("champion %s v%s on the candidate's test rows: auc %.4f", model_name, ref.version, metrics["auc"])
    return ChampionEvaluation(
        version=ref.version, run_id=ref.run_id, metrics=metrics, cutoff_date=cutoff, notes=notes, predictions=p
    )


def roc_calibration_figure(y_true: np.ndarray, scores: dict[str, np.ndarray], bins: int = 10) -> Figure:
    """ROC curves (model and baselines) and a reliability diagram of the model (first entry of ``scores``)."""
    fig = Figure(figsize=(11, 4.8), layout="constrained")
    ax_roc, ax_cal = fig.subplots(1, 2)
    y = np.asarray(y_true, dtype=np.int64)
    for name, p in scores.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax_roc.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, p):.3f})")
    ax_roc.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax_roc.set(title="ROC on test snapshots", xlabel="false positive rate", ylabel="true positive rate")
    ax_roc.legend(loc="lower right", fontsize="small")

    model_name, p = next(iter(scores.items()))
    p = np.asarray(p, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    mean_p = [p[idx == b].mean() for b in range(bins) if (idx == b).any()]
    frac = [y[idx == b].mean() for b in range(bins) if (idx == b).any()]
    counts = [int((idx == b).sum()) for b in range(bins) if (idx == b).any()]
    ax_cal.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax_cal.plot(mean_p, frac, marker="o", label=model_name)
    for x, f, c in zip(mean_p, frac, counts, strict=True):
        ax_cal.annotate(str(c), (x, f), textcoords="offset points", xytext=(3, 3), fontsize="x-small")
    ax_cal.set(
        title="Calibration (n per bin)",
        xlabel=f"mean predicted {PREDICTION}",
        ylabel="observed share",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax_cal.legend(loc="upper left", fontsize="small")
    return fig
