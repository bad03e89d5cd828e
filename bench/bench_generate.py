"""Benchmark the demo generator: wall time, invoices/s and peak memory. Prints figures; never asserts.

    .venv/bin/python bench/bench_generate.py --invoices 1000000 --customers 30000 [--format parquet]

Peak memory is the process high-water mark (``ru_maxrss``), which includes the interpreter and libraries;
tracemalloc is optional (``--tracemalloc``) because it slows numpy-heavy code and misses Arrow's allocator.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import tracemalloc
from datetime import date
from pathlib import Path

from relance.demo import generate_demo


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=None, help="default: invoices / 30")
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=None, help="keep the files here (default: temp dir)")
    parser.add_argument("--tracemalloc", action="store_true", help="also report Python-heap peak")
    args = parser.parse_args(argv)
    customers = args.customers or max(1, args.invoices // 30)

    if args.tracemalloc:
        tracemalloc.start()
    with tempfile.TemporaryDirectory(prefix="relance-bench-") as tmp:
        root = args.out or Path(tmp)
        t0 = time.perf_counter()
        summary = generate_demo(
            root / "landing",
            root / "ground_truth",
            n_customers=customers,
            n_invoices=args.invoices,
            months=args.months,
            end_date=date(2026, 10, 31),
            seed=args.seed,
            file_format=args.format,
        )
        seconds = time.perf_counter() - t0
        size_mb = _dir_size(root) / 1e6
    rows = (
        summary.customers + summary.invoices + summary.credit_notes + summary.payments + summary.allocations
        + summary.disputes + summary.reminders
    )  # fmt: skip
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"customers={summary.customers:,} invoices={summary.invoices:,} credit_notes={summary.credit_notes:,}")
    print(f"payments={summary.payments:,} allocations={summary.allocations:,} disputes={summary.disputes:,}")
    print(f"reminders={summary.reminders:,} insolvencies={summary.insolvencies:,} format={args.format}")
    print(f"seconds={seconds:.2f}  invoices/s={summary.invoices / seconds:,.0f}  rows/s={rows / seconds:,.0f}")
    print(f"peak_rss_mb={peak_rss_mb:,.0f}  output_mb={size_mb:,.1f}")
    if args.tracemalloc:
        _, peak = tracemalloc.get_traced_memory()
        print(f"tracemalloc_peak_mb={peak / 1e6:,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
