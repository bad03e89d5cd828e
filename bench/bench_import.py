"""Benchmark receivables import: N invoice rows through the tabular adapter, the shared loader and (optionally)
the data contracts. Prints seconds, rows/s and peak memory of the importing process. Not a test.

    .venv/bin/python bench/bench_import.py --invoices 10000000            # the issue's 10M-row figure
    .venv/bin/python bench/bench_import.py --invoices 1000000 --all-entities --validate

The demo generator writes the export in a child process first, so its memory is not counted. DuckDB is capped
with --memory-limit (default 3GB) and spills to disk beyond it: the import streams, nothing is loaded whole into
pandas.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(landing: Path, truth: Path, n_invoices: int) -> float:
    t0 = time.perf_counter()
    code = (
        "from pathlib import Path; from relance.demo.generate import generate_demo; "
        f"generate_demo(Path({str(landing)!r}), Path({str(truth)!r}), n_customers={max(200, n_invoices // 30)}, "
        f"n_invoices={n_invoices}, seed=11)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, default=10_000_000)
    parser.add_argument("--all-entities", action="store_true", help="import payments, allocations, ... too")
    parser.add_argument("--validate", action="store_true", help="also run the GX data contracts")
    parser.add_argument("--memory-limit", default="3GB")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

    work = args.workdir or Path(tempfile.mkdtemp(prefix="relance-bench-import-"))
    landing, truth, source = work / "landing", work / "truth", work / "source"
    if not (landing / "invoices.csv").exists():
        print(f"generating {args.invoices:,} invoices in {landing} ...", flush=True)
        print(f"  generated in {generate(landing, truth, args.invoices):.1f}s", flush=True)
    source.mkdir(exist_ok=True)
    wanted = None if args.all_entities else {"customers.csv", "invoices.csv"}
    for f in landing.glob("*.csv"):
        link = source / f.name
        if (wanted is None or f.name in wanted) and not link.exists():
            link.symlink_to(f)
    size = sum(f.stat().st_size for f in source.glob("*.csv"))

    from relance.importer import load_source
    from relance.warehouse import connect

    warehouse = work / "warehouse.duckdb"
    warehouse.unlink(missing_ok=True)
    con = connect(warehouse)
    con.execute(f"SET memory_limit = '{args.memory_limit}'")
    con.execute(f"SET temp_directory = '{work / 'duckdb_tmp'}'")
    t0 = time.perf_counter()
    report = load_source(con, source, profile="demo", flow_run_id=None)
    load_s = time.perf_counter() - t0
    rows = sum(b.rows_read for b in report.batches)
    print(f"\nimport of {size / 2**30:.2f} GiB of CSV ({', '.join(sorted(p.name for p in source.iterdir()))})")
    print(f"{'entity':<22}{'read':>14}{'loaded':>14}{'quarantined':>13}")
    for b in report.batches:
        print(f"{b.entity:<22}{b.rows_read:>14,}{b.rows_loaded:>14,}{b.rows_quarantined:>13,}")
    print(f"load: {load_s:.1f}s, {rows / load_s:,.0f} rows/s, peak memory {_peak_mib():,.0f} MiB")

    t1 = time.perf_counter()
    again = load_source(con, source, profile="demo", flow_run_id=None)
    print(
        f"re-import of the same files: {time.perf_counter() - t1:.1f}s, "
        f"{sum(b.rows_loaded for b in again.batches)} rows loaded (expected 0)"
    )

    if args.validate:
        from expectations.runner import validate_batches

        t2 = time.perf_counter()
        summary = validate_batches(con, [b.batch_id for b in report.batches], gx_dir=work / "gx", flow_run_id=None)
        print(
            f"validation: {time.perf_counter() - t2:.1f}s, success={summary.success}, "
            f"peak memory {_peak_mib():,.0f} MiB"
        )
    con.close()
    print(f"peak memory of the importing process: {_peak_mib():,.0f} MiB (target < 4096)")


if __name__ == "__main__":
    main()
