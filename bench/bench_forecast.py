"""Benchmark the 13-week cash-in forecast: its backtest WAPE beside the baselines per currency, time, peak memory.

    .venv/bin/python bench/bench_forecast.py --data-dir /tmp/i14/demo/data        # a demo's data directory
    .venv/bin/python bench/bench_forecast.py --ibm ../shared/data/ibm_accounts_receivable.csv
    .venv/bin/python bench/bench_forecast.py --data-dir data --ibm ../shared/data/ibm_accounts_receivable.csv

``--data-dir``: a warehouse built by ``relance demo`` or ``relance run daily``. Its ``warehouse.duckdb`` is copied
into a scratch directory (the original is never written), the forecast's two relations
(``serving.forecast_open_invoices``, ``serving.forecast_customer_payment_days``) are built there by dbt through
``relance.dbt`` for the as-of date (default: the latest date scored in ``ops.predictions``), then
``models.cashflow.cash_forecast`` runs exactly as the report calls it: the 13 weeks ahead and the backtest of the
last 13 weeks.

``--ibm``: the public IBM accounts-receivable sample imported the way ``relance evaluate`` imports it (profile
``ibm_ar``, a scratch warehouse on a daily as-of grid, target ``late_any``, the backtest's dbt build), the payment
days built by the forecast's relation, then ``models.cashflow.backtest`` at ``--ibm-as-of``. The sample has no
scores for a forecast of its own: the backtest only (each origin fits its model, as on the demo).

Printed per source: the book, the grid, the run-day payers; seconds per step and peak RSS of this process (dbt runs
in it too); per currency the WAPE one week ahead over the last 13 weeks (model, due_date, customer_mean), the
noise floor (the WAPE if every probability were right: the weeks' own randomness), how often the actual fell in the
p10-p90 band, and the same for the 13-week view from the oldest origin. Not a test: nothing passes or fails.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import shutil
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
for _key, _value in {
    "DO_NOT_TRACK": "1",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "GX_ANALYTICS_ENABLED": "false",
}.items():
    os.environ[_key] = _value

from models import cashflow as cf  # noqa: E402
from relance import dbt  # noqa: E402
from relance.settings import Settings  # noqa: E402

FORECAST_MODELS = ("forecast_open_invoices", "forecast_customer_payment_days")


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pct(value: float | None) -> str:
    return "   n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:6.1%}"


def build_forecast_relations(settings: Settings, as_of: date, models: tuple[str, ...] = FORECAST_MODELS) -> float:
    """The forecast's serving relations for ``as_of`` in ``settings``' warehouse (dbt build, data tests on)."""
    t0 = time.perf_counter()
    args = dbt.dbt_args(settings, ["build"], as_of_date=as_of, unit_tests=False, extra=("--select", *models, "--quiet"))
    dbt.run_dbt(settings, args)
    return time.perf_counter() - t0


def wape_table(table: pd.DataFrame, title: str) -> None:
    print(title)
    print(
        f"  {'currency':<8} {'weeks':>5} {'paid/wk':>7} {'actual':>14} {'model':>7} {'due_date':>8} "
        f"{'cust_mean':>9} {'noise':>7} {'in p10-p90':>10}"
    )
    model = cf.wape_by_currency(table)
    due = cf.wape_by_currency(table, "forecast_due_date")
    mean = cf.wape_by_currency(table, "forecast_customer_mean")
    noise = cf.noise_wape_by_currency(table)
    for currency, rows in table.groupby("currency"):
        banded = rows.dropna(subset=["p10"])
        inside = int(((banded["actual"] >= banded["p10"]) & (banded["actual"] <= banded["p90"])).sum())
        print(
            f"  {currency:<8} {len(rows):>5} {rows['paid_invoice_count'].mean():>7.0f} {rows['actual'].sum():>14,.0f} "
            f"{pct(model[currency]):>7} {pct(due[currency]):>8} {pct(mean[currency]):>9} {pct(noise[currency]):>7} "
            f"{inside:>5}/{len(banded):<4}"
        )


def bench_warehouse(
    data_dir: Path,
    *,
    as_of: date | None,
    weeks: int,
    backtest_weeks: int,
    seed: int,
    refit_every: int = 1,
    save: Path | None = None,
) -> None:
    source = data_dir / "warehouse.duckdb"
    if not source.is_file():
        raise SystemExit(f"no warehouse at {source}")
    with tempfile.TemporaryDirectory(prefix="bench-forecast-") as tmp:
        scratch = Path(tmp) / "data"
        scratch.mkdir()
        shutil.copy2(source, scratch / "warehouse.duckdb")
        with duckdb.connect(str(scratch / "warehouse.duckdb"), read_only=True) as con:
            scored = con.execute("select max(as_of_date) from ops.predictions").fetchone()[0]
            dates = [
                r[0]
                for r in con.execute("select distinct as_of_date from ml.ml_invoice_features order by 1").fetchall()
            ]
        as_of = as_of or scored
        if as_of is None:
            raise SystemExit(f"{source} has no scores (ops.predictions is empty): give --as-of")
        settings = Settings(data_dir=scratch)
        build_s = build_forecast_relations(settings, as_of)
        steps = sorted({(b - a).days for a, b in zip(dates, dates[1:], strict=False)})
        with duckdb.connect(str(settings.warehouse)) as con:
            open_book = con.execute(
                "select currency, count(*), sum(open_amount) from serving.forecast_open_invoices "
                "where as_of_date = ? group by 1 order by 1",
                [as_of],
            ).fetchall()
            t0 = time.perf_counter()
            fc = cf.cash_forecast(
                con, as_of, weeks=weeks, backtest_weeks=backtest_weeks, seed=seed, refit_every=refit_every
            )
            total_s = time.perf_counter() - t0
        print(f"\n== {data_dir} (a copy), as of {as_of}, a model fitted every {refit_every} backtest week(s)")
        print("  open: " + "; ".join(f"{c} {n:,} invoice(s) {float(a):,.0f}" for c, n, a in open_book))
        print(f"  feature snapshots: {len(dates)} from {dates[0]} to {dates[-1]}, steps of {steps} day(s)")
        print(
            f"  time: dbt build of the forecast relations {build_s:.1f} s; forecast {fc.timings['forecast_s']:.2f} s; "
            f"backtest {fc.timings['backtest_s']:.1f} s; cash_forecast total {total_s:.1f} s; peak RSS "
            f"{peak_mib():,.0f} MiB"
        )
        for currency, rows in fc.weeks.groupby("currency"):
            first = rows.iloc[0]
            print(
                f"  next {weeks} weeks {currency}: expected {rows['expected'].sum():,.0f} "
                f"(week 1 {first['expected']:,.0f}, p10-p90 {first['p10']:,.0f}-{first['p90']:,.0f})"
            )
        wape_table(fc.backtest, f"  WAPE one week ahead, the last {backtest_weeks} weeks:")
        if not fc.horizon.empty:
            origin = fc.horizon["origin"].iloc[0]
            wape_table(
                fc.horizon, f"  WAPE of the forecast made at {origin} for each of the {backtest_weeks} weeks after:"
            )
        print("  notes:")
        for note in fc.notes:
            print(f"   - {note}")
        if save is not None:
            save.mkdir(parents=True, exist_ok=True)
            for name in ("weeks", "backtest", "horizon"):
                getattr(fc, name).to_csv(save / f"{name}.csv", index=False)
            print(f"  tables written to {save}")


def bench_ibm(csv: Path, *, as_of: date, weeks: int, seed: int, refit_every: int = 1) -> None:
    from flows.import_receivables import import_source  # a flow module: Prefect is imported only here
    from models import backtest as bt

    if not csv.is_file():
        raise SystemExit(f"no IBM sample at {csv}")
    with tempfile.TemporaryDirectory(prefix="bench-forecast-ibm-") as tmp:
        scratch = Path(tmp)
        settings = bt.backtest_settings(Settings(data_dir=scratch), scratch, target_kind="late_over", target_days=0)
        t0 = time.perf_counter()
        with duckdb.connect(str(settings.warehouse)) as con:
            report = import_source(con, csv, profile="ibm_ar", gx_dir=None, flow_run_id=None, data_docs=False)
            if not report.success:
                raise SystemExit(f"{csv} fails its data contracts")
            ledger_end = con.execute(
                "select greatest((select max(issue_date) from raw.invoices), (select max(payment_date) "
                "from raw.payments))"
            ).fetchone()[0]
        import_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        build_as_of = bt.build_as_of_date(as_of, ledger_end)
        dbt.run_dbt(settings, [*dbt.backtest_build_args(settings, build_as_of), "--quiet"])
        build_s = time.perf_counter() - t0
        days_s = build_forecast_relations(settings, as_of, ("forecast_customer_payment_days",))  # no scores here
        with duckdb.connect(str(settings.warehouse)) as con:
            t0 = time.perf_counter()
            frame = bt.load_backtest_frame(con, train_rows="all")
            run = cf.backtest(con, as_of, weeks=weeks, seed=seed, frame=frame, refit_every=refit_every)
            backtest_s = time.perf_counter() - t0
            payers = len(cf.load_payment_days(con, as_of))
        print(f"\n== IBM sample {csv.name}, backtest at {as_of} (features built to {build_as_of}, daily grid)")
        print(
            f"  time: import {import_s:.1f} s; dbt features (daily grid) {build_s:.1f} s; payment days {days_s:.1f} s; "
            f"backtest {backtest_s:.1f} s ({len(run.snapshots)} fit(s), frame {len(frame):,} rows); peak RSS "
            f"{peak_mib():,.0f} MiB; run-day payers at {as_of}: {payers}"
        )
        wape_table(run.table, f"  WAPE one week ahead, the last {weeks} weeks:")
        if not run.horizon.empty:
            origin = run.horizon["origin"].iloc[0]
            wape_table(run.horizon, f"  WAPE of the forecast made at {origin} for each of the {weeks} weeks after:")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, action="append", default=[], help="a demo's data dir (repeatable)")
    parser.add_argument("--as-of", type=date.fromisoformat, default=None, help="default: the latest scored date")
    parser.add_argument("--ibm", type=Path, default=None, help="the IBM accounts-receivable CSV")
    parser.add_argument("--ibm-as-of", type=date.fromisoformat, default=date(2013, 11, 30))
    parser.add_argument("--weeks", type=int, default=13)
    parser.add_argument("--backtest-weeks", type=int, default=13)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--refit-every", type=int, default=1, help="backtest weeks between two model fits")
    parser.add_argument("--save", type=Path, default=None, help="write weeks/backtest/horizon CSVs here")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    if not args.data_dir and args.ibm is None:
        parser.error("give --data-dir and/or --ibm")
    for data_dir in args.data_dir:
        save = None if args.save is None else args.save / data_dir.resolve().parent.name
        bench_warehouse(
            data_dir,
            as_of=args.as_of,
            weeks=args.weeks,
            backtest_weeks=args.backtest_weeks,
            seed=args.seed,
            refit_every=args.refit_every,
            save=save,
        )
    if args.ibm is not None:
        bench_ibm(
            args.ibm, as_of=args.ibm_as_of, weeks=args.backtest_weeks, seed=args.seed, refit_every=args.refit_every
        )


if __name__ == "__main__":
    main()
