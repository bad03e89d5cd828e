"""Benchmark the company-risk refresh: BODACC notices for N debtors through the real client (against the local
stand-in on 127.0.0.1), the classifier, the shared loader and the GX suite, then the incremental rerun.

    .venv/bin/python bench/bench_risk.py                              # 5,000 debtors, 4 notices each
    .venv/bin/python bench/bench_risk.py --companies 20000 --notices 3

Prints seconds, rows/s, HTTP requests and peak memory (max RSS of this process) per step, and the 1-minute load
average. Not a test: nothing passes or fails on time. The stand-in answers from memory, so the HTTP figures are a
floor; the real registry adds its latency per page (100 notices, 50 SIRENs per query).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flows.refresh_company_risk import refresh  # noqa: E402
from relance.ingest import load_extracts  # noqa: E402
from relance.raw_schema import ENTITIES  # noqa: E402
from relance.risk import classify  # noqa: E402
from relance.settings import Settings  # noqa: E402
from relance.sources.base import EntityExtract  # noqa: E402
from relance.warehouse import connection, ensure_schemas  # noqa: E402
from tests.standins.risk_apis import BodaccStandIn, generate_notices  # noqa: E402


def _siren(body: int) -> str:
    """A Luhn-valid SIREN from an 8-digit body."""
    digits = [int(d) for d in f"{body:08d}"]
    total = 0
    for i, d in enumerate(reversed(digits)):  # the check digit will sit at position 0 from the right
        d = d * 2 if i % 2 == 0 else d
        total += d - 9 if d > 9 else d
    return f"{body:08d}{(10 - total % 10) % 10}"


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--companies", type=int, default=5000)
    parser.add_argument("--notices", type=int, default=4, help="notices per company")
    args = parser.parse_args()
    sirens = [_siren(10_000_000 + 7919 * i) for i in range(args.companies)]
    records = []
    for i, siren in enumerate(sirens):
        for rec in generate_notices(siren, args.notices, start=date(2020, 1, 6) + timedelta(days=i % 1500)):
            rec["id"] = f"{rec['id']}{i:06d}"  # one id per notice across companies
            records.append(rec)
    print(f"{args.companies:,} debtors, {len(records):,} notices; load average {os.getloadavg()[0]:.2f}")

    t0 = time.perf_counter()
    events = classify.bodacc_events(records)
    dt = time.perf_counter() - t0
    print(f"classify: {len(events):,} events in {dt:.2f} s ({len(records) / dt:,.0f} notices/s)")

    with tempfile.TemporaryDirectory() as tmp, BodaccStandIn(records) as bodacc:
        settings = Settings(
            data_dir=Path(tmp) / "data", risk_mode="live", risk_providers=["bodacc"], bodacc_url=bodacc.url
        )
        settings.ensure_dirs()
        with connection(settings.warehouse) as con:
            ensure_schemas(con)
            columns = list(ENTITIES["customers"])
            rows = {c: [None] * len(sirens) for c in columns}
            rows["customer_id"] = [f"C{i:07d}" for i in range(len(sirens))]
            rows["customer_type"] = ["B2B"] * len(sirens)
            rows["siren"] = sirens
            table = pa.table({c: pa.array(v, pa.string()) for c, v in rows.items()})
            load_extracts(
                con,
                [EntityExtract(entity="customers", table=table, source_file="customers", file_hash="bench")],
                source_name="bench",
                flow_run_id=None,
            )
        runs = (("first refresh (whole history)", date(2026, 10, 30)), ("next day (watermark)", date(2026, 10, 31)))
        for label, day in runs:
            before = len(bodacc.requests)
            t0 = time.perf_counter()
            result = refresh(settings, day, flow_run_id=None)
            dt = time.perf_counter() - t0
            print(
                f"{label}: {dt:.1f} s, {len(bodacc.requests) - before:,} requests, {result.events_read:,} events read "
                f"({result.events_read / dt:,.0f}/s), {len(result.batches)} batch(es), errors {result.errors or 'none'}"
            )
        with connection(settings.warehouse) as con:
            loaded = con.execute("SELECT count(*) FROM raw.company_events").fetchone()[0]
    print(f"raw.company_events: {loaded:,} rows; peak RSS {_peak_mib():,.0f} MiB")


if __name__ == "__main__":
    main()
