"""Benchmark ``relance simulate``: the engine against the fixed 7/21/45 schedule, both arms' figures, wall time and
peak memory. Prints figures; never asserts.

    .venv/bin/python bench/bench_simulate.py [--days 90 --customers 1000 --invoices 20000 --seeds 42 43 44]

With several seeds it prints one table per seed and a summary line per seed (the DSO reduction moves a lot from
one world to the next at this size). Peak memory is the process high-water mark (``ru_maxrss``).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

from rich.console import Console

from relance.reminders.simulation import render, run_simulation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--invoices", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    args = parser.parse_args(argv)

    console = Console(width=140)
    summary = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        result = run_simulation(days=args.days, customers=args.customers, invoices=args.invoices, seed=seed)
        seconds = time.perf_counter() - t0
        console.print(render(result))
        e, f = result.engine, result.fixed
        h = e.holdout
        summary.append(
            f"seed={seed} dso_engine={e.dso_days:.1f} dso_fixed={f.dso_days:.1f} "
            f"dso_reduction={100 * result.dso_reduction:.1f}% add_engine={e.average_days_delinquent:.1f} "
            f"add_fixed={f.average_days_delinquent:.1f} cash_engine={e.cash_collected:,.0f} "
            f"cash_fixed={f.cash_collected:,.0f} contacts_engine={e.contacts_total} contacts_fixed={f.contacts_total} "
            f"violations_engine={e.violations_total} violations_fixed={f.violations_total} "
            + (
                f"holdout_diff={100 * h.difference:+.1f}pt [{100 * h.ci_low:+.1f}, {100 * h.ci_high:+.1f}] "
                if h
                else "holdout=n/a "
            )
            + f"seconds={seconds:.1f}"
        )
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    for line in summary:
        print(line)
    print(f"peak_rss_mb={peak_rss_mb:,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
