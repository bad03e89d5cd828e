"""Benchmark the dbt feature build: N invoices x S monthly as-of snapshots (+ the scoring date).

    .venv/bin/python bench/bench_features.py                      # the acceptance case: 1M invoices x 12 snapshots
    .venv/bin/python bench/bench_features.py --invoices 200000 --reuse
    .venv/bin/python bench/bench_features.py --upstream           # + `dbt run -s +ml_invoice_features`, no tests

Steps, each timed on its own:

  prepare     demo data (parquet) generated and loaded into raw.* with the product loader
              (relance.importer.load_landing, what the ingest flow runs); GX validation is NOT part of this
              benchmark. Kept in the work dir: with --reuse the next run starts from the same loaded raw tables.
  parse       `dbt parse` (writes the manifest; the build steps then reuse it through partial parsing)
  full        `dbt build --exclude tag:post_scoring` from scratch on a fresh copy of the raw-only warehouse:
              staging -> intermediate -> marts -> ml, tests included, as the daily run does
  incremental the same build again one week later (as_of_date + 7 days) on the warehouse `full` left: with an
              incremental ml_invoice_features only the new scoring date needs building
  upstream    (--upstream) `dbt run --select +ml_invoice_features` from scratch: the feature models alone,
              without tests, labels or marts that the features do not read

history_start_days is derived from the generated data so that the grid holds exactly --snapshots history dates
before as_of_date, and still the same ones one week later (no grid date falls between the two runs).

dbt runs through its one owner, relance.dbt: the arguments from relance.dbt.dbt_args and the profile written by
relance.dbt.run_dbt, both derived from one Settings (data dir = the work dir, grid vars, DuckDB memory cap), no
environment variables. Every dbt step runs in its own process (relance.dbt.run_dbt, dbt and DuckDB in process in
it, as the flows run it), started by a small launcher that reports that process's rusage. "peak" is the max RSS
of that one dbt process for that one step (not the max over all children so far, and not inflated by this
script's own memory, which a child forked straight from it would inherit in ru_maxrss); "spill" is the largest
size seen of DuckDB's temp directory (<warehouse>.tmp, sampled every 0.25 s). Seconds are wall time of the dbt
process, start-up and manifest load included.
Settings.duckdb_memory_limit (--memory-limit, else RELANCE_DUCKDB_MEMORY_LIMIT, else its default) goes into the
profile; the DuckDB settings dbt actually ran with are read back with `dbt show`. A watchdog kills a dbt child
whose RSS crosses --max-rss-gib so that the machine never runs out of memory. Not a test: nothing here passes or
fails on time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from relance.settings import Settings

ROOT = Path(__file__).resolve().parents[1]  # the checkout whose relance this script benchmarks
AS_OF = date(2026, 10, 31)
NEXT_RUN_DAYS = 7  # the incremental step runs one week after the full build
# Runs dbt (argv[2:]) and writes dbt's max RSS in KiB (rusage of its waited children) to argv[1].
LAUNCHER = """
import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as fh:
    fh.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(rc if rc >= 0 else 128 - rc)
"""
# One dbt command through relance.dbt, in this process: argv = [checkout, Settings kwargs (JSON), dbt args (JSON)].
RUN_DBT = """
import json, sys
sys.path.insert(0, sys.argv[1])
from relance import dbt
from relance.settings import Settings
run = dbt.run_dbt(Settings(**json.loads(sys.argv[2])), json.loads(sys.argv[3]), check=False)
print(run.describe(), flush=True)
sys.exit(0 if run.success else 1)
"""
TELEMETRY_OFF = {
    "DO_NOT_TRACK": "1",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "GX_ANALYTICS_ENABLED": "false",
}


@dataclass
class Step:
    name: str
    seconds: float = 0.0
    peak_mib: float = 0.0
    spill_mib: float = 0.0
    returncode: int = 0
    killed: bool = False
    load: float = 0.0  # highest 1-min load average seen during the step (machine has len(sched_getaffinity))
    rows: int | None = None  # feature rows this step built
    run_results: dict | None = None
    log: Path | None = None
    notes: list[str] = field(default_factory=list)


def _mib(n_bytes: float) -> float:
    return n_bytes / 2**20


def _dir_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, f)).st_size
    return total


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def machine() -> str:
    cores = len(os.sched_getaffinity(0))
    with open("/proc/meminfo") as fh:
        mem_kib = int(next(line for line in fh if line.startswith("MemTotal:")).split()[1])
    import duckdb

    return f"{cores} cores, {mem_kib / 2**20:.1f} GiB RAM, Python {sys.version.split()[0]}, DuckDB {duckdb.__version__}"


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = args.workdir / f"n{args.invoices}"
        # the Settings every dbt step runs with (the grid vars are added by use_grid once the data is loaded)
        self.settings_kwargs: dict[str, str | int] = {
            "data_dir": str(self.work),
            "warehouse_path": str(self.work / "warehouse.duckdb"),
        }
        if args.project_root is not None:
            self.settings_kwargs["project_root"] = str(args.project_root.resolve())
        if args.memory_limit:
            self.settings_kwargs["duckdb_memory_limit"] = args.memory_limit
        self.settings = self._settings()
        self.landing = self.settings.landing
        self.truth = self.settings.ground_truth_dir
        self.raw_db = self.work / "loaded_raw.duckdb"  # loaded raw tables only: the start of every from-scratch build
        self.warehouse = self.settings.warehouse
        self.spill_dir = Path(f"{self.warehouse}.tmp")  # DuckDB's default temp_directory for a file database
        self.target = self.settings.dbt_target_dir
        self.logs = self.work / "logs"

    def _settings(self) -> Settings:
        from relance.settings import Settings  # imported late: main puts this checkout first on sys.path

        return Settings(**self.settings_kwargs)

    # --- data -------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Generate and load the demo data once (or reuse it); leaves loaded_raw.duckdb holding the raw tables only."""
        a = self.args
        key = {
            "invoices": a.invoices,
            "customers": max(200, a.invoices // 30),
            "months": a.months,
            "end_date": AS_OF.isoformat(),
            "seed": 1,
        }
        marker = self.work / "prepared.json"
        if a.reuse and self.raw_db.exists() and marker.exists() and json.loads(marker.read_text()) == key:
            print(f"prepare     reusing {self.raw_db} ({_mib(self.raw_db.stat().st_size):,.0f} MiB)")
            return
        if self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)
        from relance.demo.generate import generate_demo
        from relance.importer import load_landing
        from relance.warehouse import connection

        t0 = time.perf_counter()
        summary = generate_demo(
            self.landing,
            self.truth,
            n_customers=key["customers"],
            n_invoices=a.invoices,
            months=a.months,
            end_date=AS_OF,
            seed=key["seed"],
            file_format="parquet",
        )
        t_gen = time.perf_counter() - t0
        t0 = time.perf_counter()
        with connection(self.raw_db) as con:
            report = load_landing(con, self.landing, flow_run_id=None)
            con.execute("CHECKPOINT")
        t_load = time.perf_counter() - t0
        rows = sum(b.rows_loaded for b in report.batches)
        print(
            f"prepare     generated {summary.invoices:,} invoices in {t_gen:.1f}s; "
            f"loaded {rows:,} raw rows in {t_load:.1f}s ({rows / t_load:,.0f} rows/s, no GX validation)"
        )
        marker.write_text(json.dumps(key))

    def fresh_warehouse(self) -> None:
        """A copy of the raw-only warehouse, with this checkout's raw/ops schemas ensured (idempotent DDL)."""
        for p in (self.warehouse, Path(f"{self.warehouse}.wal")):
            p.unlink(missing_ok=True)
        shutil.rmtree(self.spill_dir, ignore_errors=True)
        shutil.copyfile(self.raw_db, self.warehouse)
        from relance.warehouse import connection, ensure_schemas

        with connection(self.warehouse) as con:
            ensure_schemas(con)

    def min_issue_date(self) -> date:
        from relance.warehouse import connection

        with connection(self.raw_db) as con:
            return con.execute("select min(issue_date) from raw.invoices where document_type = 'invoice'").fetchone()[0]

    def use_grid(self) -> None:
        """Settings whose dbt vars give exactly --snapshots history dates before AS_OF, and the same ones at
        AS_OF + 7 days.

        Grid (int_feature_dates): first = min(issue_date) + history_start_days, then every interval, strictly
        before as_of_date. With as_of - first = S * interval - (NEXT_RUN_DAYS + 1) there are S dates before
        AS_OF and still S before AS_OF + NEXT_RUN_DAYS.
        """
        a = self.args
        span = (AS_OF - self.min_issue_date()).days
        history_start = span - a.snapshots * a.interval_days + NEXT_RUN_DAYS + 1
        if a.interval_days <= NEXT_RUN_DAYS + 1:
            raise SystemExit(f"--interval-days must exceed {NEXT_RUN_DAYS + 1}: the incremental run is a week later")
        if history_start <= 0:
            raise SystemExit(
                f"{a.snapshots} snapshots every {a.interval_days} days do not fit in {span} days of history: "
                "raise --months or lower --snapshots"
            )
        self.settings_kwargs |= {
            "snapshot_interval_days": a.interval_days,
            "history_start_days": history_start,
            "horizon_days": 30,
        }
        self.settings = self._settings()

    def dbt_args(self, command: list[str], as_of: date, *, stage: str | None = None, extra: tuple = ()) -> list[str]:
        from relance import dbt

        return dbt.dbt_args(self.settings, command, as_of_date=as_of, stage=stage, extra=extra)

    # --- dbt --------------------------------------------------------------------------------------
    def dbt_step(self, name: str, dbt_args: list[str]) -> Step:
        """Run one dbt command (relance.dbt.run_dbt) in its own child; time it, sample its RSS and the spill
        directory."""
        from relance import dbt

        step = Step(name, log=self.logs / f"{name}.log")
        self.logs.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-c", RUN_DBT, str(ROOT), json.dumps(self.settings_kwargs), json.dumps(dbt_args)]
        (self.target / "run_results.json").unlink(missing_ok=True)
        rss_file = self.logs / f"{name}.maxrss"
        rss_file.unlink(missing_ok=True)
        limit = self.args.max_rss_gib * 2**30
        done = threading.Event()
        seen = {"rss": 0, "spill": 0, "load": 0.0}
        with open(step.log, "w") as out:
            out.write("$ " + dbt.shell_command(dbt_args) + "\n")
            out.flush()
            t0 = time.perf_counter()
            # A small launcher process runs dbt and reports its rusage: a child forked straight from this process
            # would start its max RSS at this process's own (DuckDB loads and queries above).
            launcher = subprocess.Popen(
                [sys.executable, "-c", LAUNCHER, str(rss_file), *cmd],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

            def sample() -> None:
                while not done.wait(0.25):
                    for pid in _children(launcher.pid):
                        rss = _rss_bytes(pid)
                        seen["rss"] = max(seen["rss"], rss)
                        if rss > limit and not step.killed and not done.is_set():
                            step.killed = True
                            os.kill(pid, signal.SIGKILL)  # the dbt process this step started, nothing else
                    seen["spill"] = max(seen["spill"], _dir_bytes(self.spill_dir))
                    seen["load"] = max(seen["load"], os.getloadavg()[0])

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            launcher.wait()
            done.set()
            step.seconds = time.perf_counter() - t0
            sampler.join()
        step.returncode = launcher.returncode
        maxrss = int(rss_file.read_text()) * 1024 if rss_file.exists() else 0  # ru_maxrss is KiB on Linux
        step.peak_mib = max(maxrss, seen["rss"]) / 2**20
        step.spill_mib = _mib(seen["spill"])
        step.load = seen["load"]
        results = self.target / "run_results.json"
        if results.exists():
            step.run_results = json.loads(results.read_text())
            shutil.copyfile(results, self.logs / f"{name}.run_results.json")
        if step.killed:
            step.notes.append(f"KILLED by the watchdog: RSS crossed {self.args.max_rss_gib} GiB")
        return step

    def features(self, invocation_id: str | None) -> tuple[int, dict[date, int], int | None]:
        """Row count, rows per as_of_date and rows stamped with invocation_id in ml.ml_invoice_features."""
        from relance.warehouse import connection

        with connection(self.warehouse) as con:
            per_date = dict(
                con.execute(
                    "select as_of_date, count(*) from ml.ml_invoice_features group by all order by as_of_date"
                ).fetchall()
            )
            built = None
            if invocation_id:
                built = con.execute(
                    "select count(*) from ml.ml_invoice_features where dbt_invocation_id = ?", [invocation_id]
                ).fetchone()[0]
        return sum(per_date.values()), per_date, built

    def duckdb_settings(self, as_of: date) -> str:
        """The settings the dbt profile's DuckDB connection actually has (memory_limit, threads, temp dir)."""
        sql = (
            "select current_setting('memory_limit') as memory_limit, current_setting('threads') as threads, "
            "current_setting('temp_directory') as temp_directory, version() as duckdb"
        )
        argv = self.dbt_args(["show"], as_of, extra=("--inline", sql, "--output", "json"))
        step = self.dbt_step("settings", argv)
        text = step.log.read_text()
        start = text.find("{", text.find('"show"') - 10) if '"show"' in text else -1
        if step.returncode != 0 or start < 0:
            return f"unknown (dbt show failed, see {step.log})"
        try:
            row = json.JSONDecoder().raw_decode(text[start:])[0]["show"][0]
        except (ValueError, KeyError, IndexError):
            return f"unknown (see {step.log})"
        return ", ".join(f"{k} = {v}" for k, v in row.items())


def print_step(step: Step, rows_label: str = "feature rows") -> None:
    rate = f"{step.rows / step.seconds:>10,.0f} rows/s" if step.rows and step.seconds else ""
    rows = f"{step.rows:>11,} {rows_label}" if step.rows is not None else ""
    status = "ok" if step.returncode == 0 else f"FAILED (exit {step.returncode})"
    print(
        f"{step.name:<12}{step.seconds:>7.1f}s  peak {step.peak_mib:>7,.0f} MiB  spill {step.spill_mib:>6,.0f} MiB"
        f"  load {step.load:>4.1f}  {rows}{rate}  {status}",
        flush=True,
    )
    for note in step.notes:
        print(f"            {note}")


def print_slowest(step: Step, top: int) -> None:
    rr = step.run_results
    if not rr:
        return
    results = rr.get("results", [])
    kinds: dict[str, list[float]] = {}
    for r in results:
        kinds.setdefault(r["unique_id"].split(".", 1)[0], []).append(r["execution_time"])
    parts = ", ".join(f"{len(t)} {kind}s {sum(t):.1f}s" for kind, t in sorted(kinds.items()))
    print(f"  {step.name}: dbt elapsed {rr.get('elapsed_time', 0):.1f}s; {parts} (summed over dbt's threads)")
    for r in sorted(results, key=lambda r: r["execution_time"], reverse=True)[:top]:
        name = r["unique_id"].split(".", 2)[-1]
        if len(name) > 58:
            name = name[:55] + "..."
        print(f"    {r['execution_time']:>7.1f}s  {r['status']:<7} {name}")
    failed = [r for r in results if r["status"] in ("error", "fail", "runtime error")]
    for r in failed:
        print(f"  {r['status'].upper()} {r['unique_id']}: {(r.get('message') or '').strip()[:2000]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--snapshots", type=int, default=12, help="history grid dates before the scoring date")
    parser.add_argument("--interval-days", type=int, default=30, help="snapshot_interval_days (monthly: 30)")
    parser.add_argument("--months", type=int, default=24, help="months of generated history")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/relance-bench-features"))
    parser.add_argument("--reuse", action="store_true", help="reuse the generated and loaded data of an earlier run")
    parser.add_argument("--upstream", action="store_true", help="also `dbt run -s +ml_invoice_features` from scratch")
    parser.add_argument("--memory-limit", default=None, help="Settings.duckdb_memory_limit for dbt, e.g. 8GB")
    parser.add_argument("--max-rss-gib", type=float, default=16.0, help="watchdog: kill dbt above this RSS")
    parser.add_argument("--top", type=int, default=10, help="slowest dbt nodes to list per step")
    parser.add_argument(
        "--project-root",
        type=Path,
        default=None,
        help="a checkout whose dbt_project/ to build instead of this one's (Settings.project_root)",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.update(TELEMETRY_OFF)
    args.workdir = args.workdir.resolve()

    from relance import dbt

    bench = Bench(args)
    print(f"machine     {machine()}")
    print(f"project     {bench.settings.dbt_project_dir} (dbt project); relance from {ROOT}")
    print(f"work dir    {bench.work}")
    bench.prepare()
    bench.use_grid()
    next_as_of = AS_OF + timedelta(days=NEXT_RUN_DAYS)
    full_vars = dbt.dbt_vars(bench.settings, AS_OF)
    print(f"dbt vars    {json.dumps(full_vars)}; incremental run: as_of_date {next_as_of.isoformat()}")
    print(f"memory      duckdb_memory_limit = {bench.settings.duckdb_memory_limit} (profile written from Settings)")
    print(
        f"load        {os.getloadavg()[0]:.1f} now (1-min load average; above the core count, times include CPU waits)"
    )

    bench.fresh_warehouse()
    steps = [bench.dbt_step("parse", bench.dbt_args(["parse"], AS_OF))]
    print()
    print_step(steps[-1], "")

    # the daily pre-scoring build (stage "features"), dbt unit tests included as before
    full = bench.dbt_step("full", bench.dbt_args(["build"], AS_OF, stage="features"))
    steps.append(full)
    snapshots: dict[str, dict[date, int]] = {}
    if full.returncode == 0:
        inv = (full.run_results or {}).get("metadata", {}).get("invocation_id")
        full.rows, snapshots["full"], _ = bench.features(inv)
    print_step(full)

    if full.returncode == 0:
        incr = bench.dbt_step("incremental", bench.dbt_args(["build"], next_as_of, stage="features"))
        steps.append(incr)
        if incr.returncode == 0:
            inv = (incr.run_results or {}).get("metadata", {}).get("invocation_id")
            _, snapshots["incremental"], incr.rows = bench.features(inv)
            incr.notes.append("rows = feature rows stamped with this run's dbt_invocation_id (rows it (re)built)")
        print_step(incr)

    settings = bench.duckdb_settings(next_as_of) if full.returncode == 0 else "not read (full build failed)"

    if args.upstream:
        bench.fresh_warehouse()
        up = bench.dbt_step("upstream", bench.dbt_args(["run"], AS_OF, extra=("--select", "+ml_invoice_features")))
        steps.append(up)
        if up.returncode == 0:
            up.rows, _, _ = bench.features(None)
        print_step(up)

    print(f"\nDuckDB in dbt: {settings}")
    print(f"warehouse    {_mib(bench.warehouse.stat().st_size):,.0f} MiB after the last step")
    for name, per_date in snapshots.items():
        dates = ", ".join(f"{d:%Y-%m-%d} {n:,}" for d, n in per_date.items())
        print(
            f"\nml.ml_invoice_features after {name}: {len(per_date)} distinct as_of_date, "
            f"{sum(per_date.values()):,} rows\n  {dates}"
        )
    print("\nslowest dbt nodes (run_results.json execution_time)")
    for step in steps[1:]:
        print_slowest(step, args.top)
    for step in steps:
        if step.returncode != 0:
            print(f"\n{step.name} failed (exit {step.returncode}); last lines of {step.log}:")
            print("\n".join(step.log.read_text().splitlines()[-40:]))
    print(f"\ndbt logs and run_results per step: {bench.logs}")


if __name__ == "__main__":
    main()
