"""Paired, customer-clustered bootstrap comparison of two probability vectors scored on the same rows.

The promotion gate (``models.registry.promote_if_better``) asks "is the candidate better than the champion (or
the best baseline) beyond noise?". Both models are scored on the same held-out rows, so the comparison is paired:
each bootstrap resample draws CUSTOMERS with replacement and keeps all their rows together (one invoice appears in
many as-of snapshots and one customer's invoices move together: rows are not independent), then measures both
models on the resampled rows. The spread of ``metric(candidate) - metric(reference)`` over the resamples is the
noise; a percentile interval whose lower bound is above 0 (for AUC) means "better beyond noise".

Vectorised: a resample is a vector of integer row weights (how many times each row's customer was drawn), so a
block of resamples is one weight matrix. The AUC of weighted rows needs only one sort of each score vector, done
once: rows with equal scores form rank blocks, and per resample the AUC is a weighted Mann-Whitney sum over the
blocks (ties count one half). Log loss and Brier differences are weighted means, one matrix-vector product.
1,000 resamples of 100k rows take a few seconds (``bench/bench_gate.py``).

``decide`` is the promotion rule on those comparisons; ``models.registry.promote_if_better`` applies it to a
registered candidate and records the decision in MLflow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

EPS = 1e-6  # probabilities are clipped to [EPS, 1 - EPS] for the log loss, as models.evaluate.binary_metrics does
LEVEL = 0.95
# weights of one block of resamples: about 4M cells (32 MiB as float64) whatever the number of rows
_BLOCK_CELLS = 1 << 22


@dataclass(frozen=True)
class Difference:
    """``metric(candidate) - metric(reference)`` on the observed rows and over the bootstrap resamples.

    ``win_share`` is the share of (valid) resamples in which the candidate is better: a higher AUC, a lower
    log loss or Brier score.
    """

    metric: str
    candidate: float  # the candidate's metric on the observed rows
    reference: float  # the reference's metric on the observed rows
    diff: float  # candidate - reference, observed
    lo: float  # percentile interval of the difference at ``level``
    hi: float
    win_share: float

    @property
    def higher_is_better(self) -> bool:
        return self.metric == "auc"

    def describe(self, level: float = LEVEL) -> str:
        return f"{self.diff:+.4f} ({level:.0%} interval {self.lo:+.4f} to {self.hi:+.4f})"


@dataclass(frozen=True)
class PairedComparison:
    auc: Difference
    log_loss: Difference
    brier: Difference
    n_rows: int
    n_groups: int  # clusters resampled (customers); n_rows when the bootstrap is by row
    unit: str  # what was resampled: "customers", or "rows" when no groups were given
    n_boot: int  # resamples drawn
    n_boot_valid: int  # resamples holding both classes (AUC defined); the intervals and shares use these
    seed: int
    level: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _codes(groups: Any, n: int) -> tuple[np.ndarray, int]:
    if groups is None:
        return np.arange(n), n
    values = np.asarray(groups)
    if values.shape != (n,):
        raise ValueError(f"groups has shape {values.shape}, expected ({n},): one customer id per row")
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    return codes.astype(np.intp), len(uniques)


def _checked(y: Any, p_candidate: Any, p_reference: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y_arr = np.asarray(y, dtype=np.float64)
    pc = np.asarray(p_candidate, dtype=np.float64)
    pr = np.asarray(p_reference, dtype=np.float64)
    if y_arr.ndim != 1 or pc.shape != y_arr.shape or pr.shape != y_arr.shape:
        raise ValueError(
            f"y {y_arr.shape}, candidate {pc.shape} and reference {pr.shape} must be 1-D and of the same length: "
            "the comparison is paired, both models scored on the same rows"
        )
    if not np.isin(y_arr, (0.0, 1.0)).all():
        raise ValueError("y must hold only 0 and 1 (no missing labels)")
    for name, p in (("candidate", pc), ("reference", pr)):
        if not np.isfinite(p).all():
            raise ValueError(f"{int((~np.isfinite(p)).sum())} {name} probabilit(ies) are NaN or infinite")
    if y_arr.min() == y_arr.max():
        raise ValueError(f"y holds a single class ({int(y_arr[0])}) over {len(y_arr)} rows: AUC is undefined")
    return y_arr, pc, pr


class _RankBlocks:
    """One score vector sorted once: rows with equal scores form a block (its AUC share of ties is one half)."""

    def __init__(self, p: np.ndarray, y: np.ndarray, codes: np.ndarray) -> None:
        order = np.argsort(p, kind="stable")
        sorted_p = p[order]
        self.starts = np.flatnonzero(np.r_[True, sorted_p[1:] != sorted_p[:-1]])
        self.codes = codes[order]  # the cluster of each row, in score order
        self.y = y[order]

    def auc(self, group_weights: np.ndarray) -> np.ndarray:
        """AUC for each row of ``group_weights`` (resamples x clusters): NaN where a class has no weight."""
        w = group_weights[:, self.codes]  # row weights in score order
        pos = np.add.reduceat(w * self.y, self.starts, axis=1)
        neg = np.add.reduceat(w, self.starts, axis=1) - pos
        neg_below = np.cumsum(neg, axis=1) - neg  # negative weight strictly below each block
        total_pos, total_neg = pos.sum(axis=1), neg.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.einsum("ij,ij->i", pos, neg_below + 0.5 * neg) / (total_pos * total_neg)


def _difference(
    metric: str, candidate: float, reference: float, boot: np.ndarray, level: float, higher_is_better: bool
) -> Difference:
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(boot, [alpha, 1.0 - alpha]) if len(boot) else (np.nan, np.nan)
    wins = boot > 0 if higher_is_better else boot < 0
    return Difference(
        metric=metric,
        candidate=float(candidate),
        reference=float(reference),
        diff=float(candidate - reference),
        lo=float(lo),
        hi=float(hi),
        win_share=float(wins.mean()) if len(boot) else float("nan"),
    )


def paired_bootstrap(
    y: Any,
    p_candidate: Any,
    p_reference: Any,
    groups: Any = None,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = LEVEL,
) -> PairedComparison:
    """Compare ``p_candidate`` with ``p_reference`` on the same rows by a paired bootstrap over ``groups``.

    ``groups`` (one customer id per row) are the clusters resampled with replacement, all rows of a drawn
    customer together; ``None`` resamples rows. Returns the observed AUC, log-loss and Brier differences
    (candidate - reference), their percentile intervals at ``level`` and the share of resamples the candidate
    wins. The same inputs and ``seed`` give the same numbers.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    y_arr, pc, pr = _checked(y, p_candidate, p_reference)
    n = len(y_arr)
    codes, n_groups = _codes(groups, n)

    blocks_c, blocks_r = _RankBlocks(pc, y_arr, codes), _RankBlocks(pr, y_arr, codes)
    pc_clip, pr_clip = np.clip(pc, EPS, 1 - EPS), np.clip(pr, EPS, 1 - EPS)
    loss_c = -(y_arr * np.log(pc_clip) + (1 - y_arr) * np.log(1 - pc_clip))
    loss_r = -(y_arr * np.log(pr_clip) + (1 - y_arr) * np.log(1 - pr_clip))
    brier_c, brier_r = (pc - y_arr) ** 2, (pr - y_arr) ** 2
    # per-cluster sums: a resample's weighted mean is (counts @ sums) / (counts @ rows per cluster)
    rows_per_group = np.bincount(codes, minlength=n_groups).astype(np.float64)
    loss_diff_g = np.bincount(codes, weights=loss_c - loss_r, minlength=n_groups)
    brier_diff_g = np.bincount(codes, weights=brier_c - brier_r, minlength=n_groups)

    ones = np.ones((1, n_groups))
    auc_c, auc_r = float(blocks_c.auc(ones)[0]), float(blocks_r.auc(ones)[0])

    rng = np.random.default_rng(seed)
    block = max(1, min(n_boot, _BLOCK_CELLS // max(n, n_groups)))
    auc_d, loss_d, brier_d = [], [], []
    for start in range(0, n_boot, block):
        k = min(block, n_boot - start)
        # k resamples of n_groups customers drawn with replacement -> how many times each customer was drawn
        drawn = rng.integers(0, n_groups, size=(k, n_groups)) + (np.arange(k) * n_groups)[:, None]
        counts = np.bincount(drawn.ravel(), minlength=k * n_groups).reshape(k, n_groups).astype(np.float64)
        auc_d.append(blocks_c.auc(counts) - blocks_r.auc(counts))
        rows = counts @ rows_per_group
        loss_d.append((counts @ loss_diff_g) / rows)
        brier_d.append((counts @ brier_diff_g) / rows)
    auc_boot = np.concatenate(auc_d)
    valid = np.isfinite(auc_boot)

    return PairedComparison(
        auc=_difference("auc", auc_c, auc_r, auc_boot[valid], level, higher_is_better=True),
        log_loss=_difference(
            "log_loss", loss_c.mean(), loss_r.mean(), np.concatenate(loss_d)[valid], level, higher_is_better=False
        ),
        brier=_difference(
            "brier", brier_c.mean(), brier_r.mean(), np.concatenate(brier_d)[valid], level, higher_is_better=False
        ),
        n_rows=n,
        n_groups=n_groups,
        unit="rows" if groups is None else "customers",
        n_boot=n_boot,
        n_boot_valid=int(valid.sum()),
        seed=seed,
        level=level,
    )


def _interval(d: Difference) -> str:
    return f"{d.lo:+.4f} to {d.hi:+.4f}"


def _resamples(c: PairedComparison) -> str:
    return f"{c.n_boot:,} resamples of {c.n_groups:,} {c.unit}"


def decide(
    vs_baseline: PairedComparison,
    vs_champion: PairedComparison | None,
    *,
    champion_version: str | None,
    baseline_name: str,
    min_gain: float,
) -> tuple[bool, str]:
    """The promotion rule on bootstrap comparisons (candidate - best baseline, candidate - champion on the same
    rows and resamples): promote only when the AUC gain over the baseline is above ``min_gain`` with an interval
    above 0, and, when there is a champion, the AUC difference's interval is above 0. Returns (promote, why)."""
    b = vs_baseline.auc
    level = f"{vs_baseline.level:.0%}"
    over_baseline = (
        f"candidate AUC {b.candidate:.4f} vs best baseline {baseline_name + ' ' if baseline_name else ''}"
        f"{b.reference:.4f}: gain {b.diff:+.4f}, "
        f"{level} interval {_interval(b)} over {_resamples(vs_baseline)}"
    )
    if not b.diff > min_gain:
        return False, f"does not beat the best baseline by more than {min_gain:.4f}: {over_baseline}"
    if not b.lo > 0:
        return False, f"does not beat the best baseline beyond noise (the interval reaches 0): {over_baseline}"
    if vs_champion is None:
        return (
            True,
            f"beats the best baseline by more than {min_gain:.4f}, beyond noise: {over_baseline}; no champion yet",
        )
    c = vs_champion.auc
    over_champion = (
        f"candidate AUC {c.candidate:.4f} vs champion v{champion_version} {c.reference:.4f} on the same "
        f"{vs_champion.n_rows:,} test rows: difference {c.diff:+.4f}, {level} interval {_interval(c)}, candidate "
        f"better in {c.win_share:.0%} of {_resamples(vs_champion)}"
    )
    if c.hi < 0:
        return False, f"worse than the champion beyond noise, champion v{champion_version} kept: {over_champion}"
    if not c.lo > 0:
        return False, (
            f"not better than the champion beyond noise (the interval reaches 0), champion v{champion_version} "
            f"kept: {over_champion}"
        )
    return True, f"better than the champion beyond noise: {over_champion}; and than the baseline: {over_baseline}"
