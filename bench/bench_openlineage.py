"""Benchmark what OpenLineage costs a daily run: the events of a real demo day, built and written again.

    .venv/bin/python bench/bench_openlineage.py /path/to/demo/data      # a data dir a `relance demo` filled
    .venv/bin/python bench/bench_openlineage.py /path/to/demo/data --http   # also POST them to a local collector

Reads the day's events from ``<data>/lineage/openlineage.jsonl`` (what the run emitted: counts by job) and its dbt
invocations from ``<data>/dbt/runs/``, then, into a temporary directory and through the real emitter
(``relance.openlineage``): rebuilds every dbt invocation's events from its archived artefacts
(``relance.openlineage_dbt``: load, process, write) and replays the flows' runs (START + COMPLETE with their
datasets and ids). Prints events and milliseconds per part; with ``--http``, the same through the HTTP transport to
the stand-in collector of ``tests/standins`` (which validates each event against the spec, so its time is an upper
bound). Not a test: nothing passes or fails on time.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from relance import openlineage as ol  # noqa: E402
from relance.openlineage_dbt import invocation_events, load_invocation  # noqa: E402
from relance.settings import Settings  # noqa: E402


def _kind(job: str) -> str:
    if job.startswith("relance."):
        return job
    return "dbt tests" if job.endswith(".tests") else "dbt models"


def replay(settings: Settings, source: Path, as_of: date) -> tuple[dict[str, int], dict[str, float]]:
    """Emit the day again through ``settings``' emitter: (events per part, seconds per part)."""
    emitter = ol.Emitter(
        ol.build_client(settings),
        settings.openlineage_namespace,
        spool=settings.lineage_dir / ol.UNDELIVERED_FILE,
        timezone=settings.timezone,
    )
    counts: dict[str, int] = collections.Counter()
    seconds: dict[str, float] = collections.Counter()
    daily = ol.RunRef(settings.openlineage_namespace, "relance.daily-collections", str(ol.generate_new_uuid()))
    build = ol.RunRef(settings.openlineage_namespace, "relance.build-features", str(ol.generate_new_uuid()))
    for folder in sorted((source / "dbt" / "runs").iterdir()):
        started = time.perf_counter()
        manifest, run_results = load_invocation(folder.parent, folder.name)
        lineage = invocation_events(
            manifest,
            run_results,
            dataset_namespace=ol.warehouse_namespace(settings.warehouse),
            job_namespace=settings.openlineage_namespace,
            parent=build,
            root=daily,
            as_of_date=as_of,
            timezone=settings.timezone,
        )
        built = time.perf_counter()
        emitter.emit_all(lineage.events)
        seconds["dbt: load + process"] += built - started
        seconds["dbt: serialise + write"] += time.perf_counter() - built
        counts["dbt events"] += len(lineage.events)
    # the flows: as many runs as the day had, each with its datasets
    recorded = ol.read_events(source / "lineage" / ol.EVENTS_FILE)
    flows = [e for e in recorded if e["job"]["name"].startswith("relance.") and e["eventType"] != "START"]
    started = time.perf_counter()
    for done in flows:
        with ol.run(emitter, done["job"]["name"], None, parent=daily, as_of_date=as_of) as lr:
            for d in done.get("inputs", []):
                lr.add_inputs(ol.OutputDataset(namespace=d["namespace"], name=d["name"]))
            for d in done.get("outputs", []):
                lr.add_outputs(ol.OutputDataset(namespace=d["namespace"], name=d["name"]))
            lr.set_ids(raw_batch_ids=["b"] * 6, dbt_invocation_id="x", model_version="1")
    seconds["flows: build + serialise + write"] += time.perf_counter() - started
    counts["flow events"] += 2 * len(flows)
    assert emitter.failed == 0, f"{emitter.failed} event(s) not delivered"
    return dict(counts), dict(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="a demo's data directory")
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 10, 31))
    parser.add_argument("--http", action="store_true", help="also through HTTP to the local collector stand-in")
    args = parser.parse_args()
    events_file = args.data / "lineage" / ol.EVENTS_FILE
    recorded = ol.read_events(events_file)
    by_job = collections.Counter(_kind(e["job"]["name"]) for e in recorded)
    print(f"the run's own events: {len(recorded)} ({events_file.stat().st_size / 1e6:.2f} MB)")
    for job, n in sorted(by_job.items()):
        print(f"  {n:5d}  {job}")

    with tempfile.TemporaryDirectory(prefix="bench-ol-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data")
        counts, seconds = replay(settings, args.data, args.as_of)
        total = sum(seconds.values())
        print(f"file transport: {sum(counts.values())} events in {total * 1000:.0f} ms")
        for part, s in seconds.items():
            print(f"  {s * 1000:7.0f} ms  {part}")
        if args.http:
            from tests.standins.openlineage_collector import OpenLineageCollector

            with OpenLineageCollector() as collector:
                http = Settings(
                    data_dir=Path(tmp) / "http", openlineage_transport="http", openlineage_url=collector.url
                )
                counts, seconds = replay(http, args.data, args.as_of)
                total = sum(seconds.values())
                print(
                    f"http transport (collector validating every event): {len(collector.events)} events in "
                    f"{total * 1000:.0f} ms, {len(collector.rejected)} rejected"
                )


if __name__ == "__main__":
    main()
