"""Benchmark the daily pipeline stage by stage at one or more sizes.

Prints seconds per stage, rows/s and peak memory (RSS of this process and its children). Not a test: nothing here
passes or fails on time. Run: `.venv/bin/python bench/bench_pipeline.py --sizes 60000 1000000`.

Each size gets one ``Settings(data_dir=<workdir>/n<size>)``; the flows take it from there (dbt through
``relance.dbt``, its profile and arguments derived from those settings, in process).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's relance, flows and models (and so its dbt project)

AS_OF = date(2026, 10, 31)


def _peak_mib() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def run(n_invoices: int, workdir: Path, *, dbt_node_tasks: bool = False) -> list[tuple[str, float, int]]:
    from relance.settings import Settings

    suffix = "-node-tasks" if dbt_node_tasks else ""
    settings = Settings(data_dir=workdir / f"n{n_invoices}{suffix}", dbt_node_tasks=dbt_node_tasks)
    settings.ensure_dirs()
    os.environ.update(settings.tool_environment())

    from relance.demo.generate import generate_demo

    stages: list[tuple[str, float, int]] = []
    t = time.perf_counter()
    summary = generate_demo(
        settings.landing,
        settings.ground_truth_dir,
        n_customers=max(200, n_invoices // 30),
        n_invoices=n_invoices,
        months=24,
        end_date=AS_OF,
        seed=1,
        file_format="parquet",
    )
    stages.append(("generate", time.perf_counter() - t, summary.invoices))

    from prefect import flow

    from flows.build_features import build_features
    from flows.ingest_receivables import ingest_receivables
    from flows.publish_finance_report import publish_finance_report
    from flows.score_invoices import score_invoices
    from flows.send_reminders import send_reminders
    from flows.train_model import train_model
    from flows.validate_receivables import validate_receivables
    from relance.warehouse import connection

    @flow(name="bench-daily")
    def bench() -> None:
        def timed(name, fn, *args, rows=None, **kw):
            t0 = time.perf_counter()
            out = fn(*args, **kw)
            stages.append((name, time.perf_counter() - t0, rows(out) if rows else 0))
            print(f"  {name:<12} {stages[-1][1]:8.1f}s  peak {_peak_mib():8.0f} MiB", flush=True)
            return out

        loads = timed("ingest", ingest_receivables, settings, rows=lambda r: sum(b.rows_loaded for b in r))
        timed("validate", validate_receivables, settings, rows=lambda _: sum(b.rows_loaded for b in loads))
        inv = timed("dbt features", build_features, settings, AS_OF)
        with connection(settings.warehouse) as con:  # read-write: in-process dbt keeps the file open
            n_feat = con.sql("select count(*) from ml.ml_invoice_features").fetchone()[0]
        stages[-1] = (stages[-1][0], stages[-1][1], n_feat)
        lineage = {"dbt.invocation_id": inv, "as_of_date": AS_OF.isoformat()}
        timed("train", train_model, settings, AS_OF, lineage)
        sc = timed("score", score_invoices, settings, AS_OF, inv, rows=lambda r: r.scored)
        timed("dbt serving", build_features, settings, AS_OF, stage="serving")
        lineage |= {"model.version": sc.model_version, "model.run_id": sc.model_run_id}
        timed("remind", send_reminders, settings, AS_OF, lineage, rows=lambda r: r.sent)
        timed("report", publish_finance_report, settings, AS_OF, sc.model_version)

    bench()
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[60_000])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--dbt-node-tasks",
        action="store_true",
        help="every dbt model and test as a Prefect task (RELANCE_DBT_NODE_TASKS), to measure what that costs",
    )
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="relance-bench-"))
    for n in args.sizes:
        print(f"\n== {n:,} invoices (data in {workdir}) ==", flush=True)
        t0 = time.perf_counter()
        stages = run(n, workdir, dbt_node_tasks=args.dbt_node_tasks)
        total = time.perf_counter() - t0
        print(f"{'stage':<14}{'seconds':>9}{'rows':>12}{'rows/s':>12}")
        for name, secs, rows in stages:
            print(f"{name:<14}{secs:>9.1f}{rows:>12,}{(rows / secs if rows and secs else 0):>12,.0f}")
        print(f"{'total':<14}{total:>9.1f}   peak memory {_peak_mib():,.0f} MiB")


if __name__ == "__main__":
    main()
