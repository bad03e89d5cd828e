"""Benchmark the promotion gate's paired customer bootstrap (models.gate.paired_bootstrap).

    .venv/bin/python bench/bench_gate.py                          # 100k rows, 5,000 customers, 1,000 resamples
    .venv/bin/python bench/bench_gate.py --rows 1000000 --customers 30000 --n-boot 1000

Constructed data: customers with their own lateness, several rows each (as-of snapshots), a candidate and a
champion that see the true score through noise, probabilities rounded to 3 decimals (ties, as real models have).
Prints the wall time of the vectorised bootstrap (by customer, then by row), its peak memory, and, for scale, a
plain loop (resample customers, sklearn roc_auc_score twice) timed on a few resamples and extrapolated to n_boot.
Not a test: nothing here passes or fails on time.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
from sklearn.metrics import roc_auc_score

from models.gate import paired_bootstrap


def make_data(rows: int, customers: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, customers, rows)
    logit = rng.normal(0, 1.2, customers)[groups] + rng.normal(0, 1.0, rows) - 1.0
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    cand = np.round(1 / (1 + np.exp(-(logit + rng.normal(0, 0.6, rows)))), 3)
    champ = np.round(1 / (1 + np.exp(-(logit + rng.normal(0, 0.7, rows)))), 3)
    return y, cand, champ, groups


def naive_seconds_per_resample(y, cand, champ, groups, resamples: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    ids = np.unique(groups)
    order = np.argsort(groups, kind="stable")
    starts = np.searchsorted(groups[order], ids)
    ends = np.r_[starts[1:], len(groups)]
    t0 = time.perf_counter()
    for _ in range(resamples):
        drawn = rng.integers(0, len(ids), len(ids))
        rows = np.concatenate([order[starts[i] : ends[i]] for i in drawn])
        roc_auc_score(y[rows], cand[rows]) - roc_auc_score(y[rows], champ[rows])
    return (time.perf_counter() - t0) / resamples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--n-boot", type=int, default=1_000)
    parser.add_argument("--naive", type=int, default=20, help="resamples of the plain loop to time (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    y, cand, champ, groups = make_data(args.rows, args.customers, args.seed)
    print(
        f"{args.rows:,} rows, {len(np.unique(groups)):,} customers, late share {y.mean():.3f}, n_boot {args.n_boot:,}"
    )
    for label, g in (("by customer", groups), ("by row", None)):
        t0 = time.perf_counter()
        c = paired_bootstrap(y, cand, champ, g, n_boot=args.n_boot, seed=args.seed)
        seconds = time.perf_counter() - t0
        print(
            f"  {label:<12} {seconds:6.2f} s ({args.n_boot / seconds:,.0f} resamples/s): AUC diff "
            f"{c.auc.diff:+.4f} [{c.auc.lo:+.4f}, {c.auc.hi:+.4f}], win share {c.auc.win_share:.1%}; "
            f"log loss diff {c.log_loss.diff:+.4f} [{c.log_loss.lo:+.4f}, {c.log_loss.hi:+.4f}]"
        )
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS of this process {peak_mib:,.0f} MiB")
    if args.naive:
        per = naive_seconds_per_resample(y, cand, champ, groups, args.naive, args.seed)
        print(
            f"  plain loop (sklearn roc_auc_score x2 per resample): {per * 1000:.0f} ms per resample, "
            f"about {per * args.n_boot:,.0f} s for {args.n_boot:,} (timed on {args.naive})"
        )


if __name__ == "__main__":
    main()
