"""Benchmark the payment model: training time at 1M rows and scoring throughput against raw ``Booster.predict``.

    .venv/bin/python bench/bench_model.py                 # 1M training rows, 1M scoring rows
    .venv/bin/python bench/bench_model.py --rows 200000 --score-rows 200000

Frame: every contract feature (models/contract.py), numeric features random with a planted signal, categorical
ones with a few levels and missing values, as the dbt relation hands them to Python; a label and days late.

Steps, each timed on its own (wall seconds, rows/s, peak RSS of this process so far):

  fit         models.train.fit_payment_model: classifier with early stopping on a time-held-out slice, its
              calibration, three days-late quantile boosters and the conformal interval, then every booster
              refitted on all rows (what a daily training does twice: evaluated model, then the served refit)
  raw         the boosters alone on a prebuilt float matrix: classifier + three quantile boosters, the floor of
              what scoring costs
  pyfunc      PaymentDelayModel.predict_frame(frame, reasons=False): frame -> matrix (categorical codes),
              boosters, calibration, conformal widening, quantile ordering; ratio = raw seconds / pyfunc seconds
              (1.0: the wrapper costs nothing; goal >= 0.8)
  reasons     predict_frame with reason codes (TreeSHAP contributions + plain words), the full serving output
  transform   FeatureSpec.transform alone (where the wrapper's time goes)

Not a test: nothing passes or fails on time.
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings

import numpy as np
import pandas as pd

from models.contract import CATEGORICAL_FEATURES, DAYS_LATE, NUMERIC_FEATURES, TARGET
from models.train import fit_payment_model


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({name: rng.random(rows) for name in NUMERIC_FEATURES})
    for name in CATEGORICAL_FEATURES:
        df[name] = rng.choice(np.array(["a", "b", "c", "d", None], dtype=object), size=rows)
    df["cust_late_share"] = rng.beta(2, 3, size=rows)
    df["days_to_due"] = rng.integers(-60, 45, size=rows).astype(float)
    logit = -1.0 + 4.0 * (df["cust_late_share"] - 0.4) - 0.03 * df["days_to_due"] + rng.normal(0, 0.5, rows)
    df[TARGET] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    days = 25 * df["cust_late_share"] + rng.normal(0, 5, rows) - 0.1 * df["days_to_due"]
    df[DAYS_LATE] = np.maximum(np.round(days), 1 - df["days_to_due"])
    df["invoice_id"] = np.arange(rows).astype(str)
    df["customer_id"] = rng.integers(0, rows // 20 + 1, rows).astype(str)
    df["as_of_date"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.sort(rng.integers(0, 700, rows)), unit="D")
    df["label_observed_date"] = df["as_of_date"] + pd.Timedelta(days=30)
    return df


def timed(label: str, rows: int, fn):
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    print(f"{label:<10} {seconds:9.2f} s  {rows / seconds:12,.0f} rows/s  peak {peak_mib():8,.0f} MiB", flush=True)
    return out, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="training rows")
    parser.add_argument("--score-rows", type=int, default=1_000_000, help="scoring rows")
    parser.add_argument("--repeat", type=int, default=3, help="scoring repetitions (best of)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    train = frame(args.rows, seed=0)
    print(f"training frame: {len(train):,} rows x {len(NUMERIC_FEATURES) + len(CATEGORICAL_FEATURES)} features")
    model, _ = timed("fit", len(train), lambda: fit_payment_model(train))
    print(
        f"           classifier {model.booster.current_iteration()} rounds, calibration {model.calibration.method}, "
        f"quantile rounds {[b.current_iteration() for b in model.quantile_boosters.values()]}"
    )

    score = frame(args.score_rows, seed=1)
    x = model.spec.transform(score)
    boosters = [model.booster, *model.quantile_boosters.values()]

    def best(label: str, fn) -> float:
        return min(timed(label, len(score), fn)[1] for _ in range(args.repeat))

    raw = best("raw", lambda: [b.predict(x) for b in boosters])
    wrapped = best("pyfunc", lambda: model.predict_frame(score, reasons=False))
    best("transform", lambda: model.spec.transform(score))
    reason_rows = min(len(score), 100_000)
    subset = score.head(reason_rows)
    _, with_reasons = timed("reasons", reason_rows, lambda: model.predict_frame(subset, reasons=True))
    print(f"scoring throughput ratio raw/pyfunc = {raw / wrapped:.2f} (goal >= 0.8)")
    print(f"reason codes: {with_reasons / reason_rows * 1e6:.1f} s per million rows (TreeSHAP + words)")


if __name__ == "__main__":
    main()
