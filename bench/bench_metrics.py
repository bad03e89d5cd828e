"""Benchmark models.metrics on synthetic predictions: the customer bootstrap and the segment table.

    .venv/bin/python bench/bench_metrics.py                       # 100k rows, 200 resamples
    .venv/bin/python bench/bench_metrics.py --rows 50000 --customers 2000 --n-boot 200

The frame looks like a backtest's: one row per (invoice, as_of_date) snapshot, the feature columns the default
segments read (days_to_due, amount, customer_type, sector_section), a label, p_late, days late (20 % unsettled)
and the three quantiles. Prints seconds per step, and the 1-minute load average: on a shared machine the
figures scale with it. Not a test, nothing passes or fails on time.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

from models.metrics import (
    amount_weights,
    classification_metrics,
    customer_bootstrap_ci,
    frame_metrics,
    regression_metrics,
    segment_table,
    snapshot_weights,
)


def synthetic_predictions(rows: int, customers: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    customer = rng.integers(0, customers, rows)
    habit = rng.normal(0, 1, customers)[customer]  # rows of a customer are correlated, as in a ledger
    p = 1 / (1 + np.exp(-(habit + rng.normal(0, 1, rows))))
    days = np.round(habit * 5 + rng.normal(0, 6, rows))
    q50 = days + rng.normal(0, 3, rows)
    return pd.DataFrame(
        {
            "invoice_id": rng.integers(0, rows // 4, rows),  # about 4 snapshots per invoice
            "customer_id": customer,
            "is_late": (rng.random(rows) < p).astype(np.int8),
            "p_late": p,
            "days_late": np.where(rng.random(rows) < 0.8, days, np.nan),
            "days_late_p10": q50 - 7,
            "days_late_p50": q50,
            "days_late_p90": q50 + 7,
            "days_to_due": rng.integers(-150, 45, rows).astype(float),
            "amount": rng.lognormal(7, 1.2, rows),
            "customer_type": np.where(customer % 5 == 0, "B2C", "B2B"),
            "sector_section": np.where(customer % 5 == 0, None, np.array(list("CFGHJM"))[customer % 6]),
        }
    )


def timed(label: str, fn, repeat: int = 1):
    start = time.perf_counter()
    for _ in range(repeat):
        result = fn()
    seconds = (time.perf_counter() - start) / repeat
    print(f"{label:<66} {seconds:8.3f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=3_000)
    parser.add_argument("--n-boot", type=int, default=200)
    args = parser.parse_args()

    frame = synthetic_predictions(args.rows, args.customers)
    frame["weight"] = snapshot_weights(frame["invoice_id"]) * amount_weights(frame["amount"])
    print(
        f"{args.rows:,} rows, {frame['customer_id'].nunique():,} customers, {args.n_boot} resamples, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    timed("classification_metrics (mean of 20)", lambda: classification_metrics(frame["is_late"], frame["p_late"]), 20)
    timed(
        "regression_metrics (mean of 20)",
        lambda: regression_metrics(
            frame["days_late"], frame["days_late_p10"], frame["days_late_p50"], frame["days_late_p90"]
        ),
        20,
    )
    timed("frame_metrics, weighted (mean of 20)", lambda: frame_metrics(frame, weight="weight"), 20)
    metric_columns = [
        "customer_id",
        "is_late",
        "p_late",
        "days_late",
        "days_late_p10",
        "days_late_p50",
        "days_late_p90",
    ]
    for rows in sorted({min(50_000, args.rows), args.rows}):
        sub = frame.iloc[:rows]
        timed(
            f"customer_bootstrap_ci, frame_metrics, {rows:,} rows, all columns",
            lambda sub=sub: customer_bootstrap_ci(sub, frame_metrics, n_boot=args.n_boot),
        )
        timed(
            f"customer_bootstrap_ci, frame_metrics, {rows:,} rows, its 7 columns",
            lambda sub=sub: customer_bootstrap_ci(sub[metric_columns], frame_metrics, n_boot=args.n_boot),
        )
    table = timed("segment_table, default segments", lambda: segment_table(frame))
    timed("segment_table, default segments, weighted", lambda: segment_table(frame, weight="weight"))
    print(f"segment table: {len(table)} rows x {table.shape[1]} columns")


if __name__ == "__main__":
    main()
