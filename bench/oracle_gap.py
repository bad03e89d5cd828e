"""How far is relance from the best possible model? The backtest on generated data beside the generator's truth.

    .venv/bin/python bench/oracle_gap.py                         # 400 customers, 12,000 invoices, 24 months
    .venv/bin/python bench/oracle_gap.py --customers 2000 --invoices 60000 --target late_over_30d

Generates a demo ledger (relance generate: the files plus its hidden ground truth), runs
`relance evaluate <landing> --profile demo` with a rolling monthly origin over the last twelve months whose labels
are observable, then scores the same test rows with the generator's true probability
(`invoice_truth.parquet`, p_unpaid_30d_after_due = P(settled more than 30 days after due): the target
late_over_30d) and prints both AUCs and the gap, overall and without the invoices the generator later disputes,
never pays or credits. The truth is an upper bound no model can reach at issue: it knows the customer's latent
propensity path and the disputes and credit notes still to come. Not a test: figures only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

TRUTH_COLUMN = "p_unpaid_30d_after_due"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=400)
    parser.add_argument("--invoices", type=int, default=12_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--from", dest="start", default="2025-09-01")
    parser.add_argument("--to", dest="end", default="2026-08-31")
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args()
    relance = str(Path(sys.executable).with_name("relance"))
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="relance-oracle-"))
    data = work / "data"
    env = {"RELANCE_DATA_DIR": str(data), "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}
    t0 = time.perf_counter()
    subprocess.run(
        [relance, "generate", "--customers", str(args.customers), "--invoices", str(args.invoices)]
        + ["--months", "24", "--seed", str(args.seed)],
        check=True,
        env=env,
        capture_output=True,
    )
    out = work / "backtest.json"
    subprocess.run(
        [relance, "evaluate", str(data / "landing"), "--profile", "demo", "--from", args.start, "--to", args.end]
        + ["--target", "late_over_30d", "--data-dir", str(work / "eval"), "--json", str(out)],
        check=True,
        env=env,
        capture_output=True,
    )
    run_id = json.loads(out.read_text())["mlflow_run_id"]
    predictions = next((work / "eval").rglob(f"{run_id}/artifacts/predictions.csv"))
    preds = pd.read_csv(predictions)
    truth = pd.read_parquet(data / "ground_truth" / "invoice_truth.parquet")
    rows = preds[preds["method"] == "relance"].merge(truth, on="invoice_id")
    print(
        f"{args.invoices:,} invoices, {args.customers:,} customers, {len(rows):,} test invoices at issue, "
        f"target late_over_30d, {time.perf_counter() - t0:.0f} s"
    )
    plain = ~rows["is_disputed"] & ~rows["is_never_paid"] & ~rows["is_paid_by_credit_note"]
    for label, part in (("all test invoices", rows), ("no later dispute, write-off or credit note", rows[plain])):
        ours = roc_auc_score(part["is_late"], part["p_late"])
        best = roc_auc_score(part["is_late"], part[TRUTH_COLUMN])
        print(f"{label:<45} relance AUC {ours:.4f}  truth AUC {best:.4f}  gap {best - ours:+.4f}  n {len(part):,}")


if __name__ == "__main__":
    main()
