"""The cash-in forecast and its backtest on a real DuckDB warehouse built by the project's own dbt runs.

The session's demo export (tests/conftest.py: 200 customers, 3,000 invoices over the 12 months to 2026-10-31) in a
copy of its raw warehouse; the daily run's two builds through relance.dbt (features on a 28-day grid, then, after
the day's scores are written to ops.predictions, the serving stage that the daily run builds after scoring): the
forecast's input relations must come out of that stage. Scores come from a model fitted by the backtest's own
``fit_relance`` on what was known before the as-of date, as the daily training would. Connections are read-write:
the configuration of dbt's own in-process connection. Checks: the input relation is the open book; the forecast's
weeks and bands; each backtest week's actual recomputed from the ledger by SQL; the WAPE arithmetic; the model
beats paying on the due date; and nothing learnt after an origin moves its forecast.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from models import cashflow as cf
from models.backtest import fit_relance, load_backtest_frame, training_rows
from models.contract import PREDICTION, QUANTILE_COLUMNS
from models.features import load_scoring_frame
from relance import dbt, ops
from relance.settings import Settings
from relance.warehouse import ensure_schemas
from tests.conftest import DEMO_AS_OF, DbtInvoke, copy_warehouse

pytestmark = pytest.mark.integration

AS_OF = DEMO_AS_OF
GRID = {"snapshot_interval_days": 28, "history_start_days": 120}  # a coarser grid than weekly: origins fall between
WEEKS = 13


@pytest.fixture(scope="module")
def warehouse(demo_raw_warehouse: Path, tmp_path_factory: pytest.TempPathFactory, dbt_invoke: DbtInvoke) -> Path:
    data = tmp_path_factory.mktemp("cashflow") / "data"
    path = copy_warehouse(demo_raw_warehouse, data)
    settings = Settings(data_dir=data, **GRID)
    with duckdb.connect(str(path)) as con:
        ensure_schemas(con)
    dbt.run_dbt(settings, dbt.daily_build_args(settings, AS_OF), invoke=dbt_invoke)
    with duckdb.connect(str(path)) as con:
        frame = load_backtest_frame(con, train_rows="all")
        predict = fit_relance(training_rows(frame, AS_OF, train_rows="all"))
        rows = load_scoring_frame(con, AS_OF)
        preds = rows[["invoice_id", "as_of_date"]].join(predict(rows)[[PREDICTION, *QUANTILE_COLUMNS]])
        preds = preds.assign(
            target_name=frame["target_name"].iloc[0],
            model_name="payment_delay",
            model_version="7",
            model_run_id="run-7",
        )
        ops.upsert_predictions(
            con, preds, dbt_invocation_id="inv-1", flow_run_id="flow-1", scored_at=datetime(2026, 10, 31, 7)
        )
    dbt.run_dbt(settings, dbt.serving_build_args(settings, AS_OF), invoke=dbt_invoke)
    return path


@pytest.fixture(scope="module")
def forecast(warehouse: Path) -> cf.CashForecast:
    with duckdb.connect(str(warehouse)) as con:
        return cf.cash_forecast(con, AS_OF, weeks=WEEKS, backtest_weeks=WEEKS, simulations=500)


def test_the_input_relation_is_the_open_book_with_the_days_scores(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse)) as con:
        book = con.execute(
            "select currency, count(*), sum(open_amount) from marts.invoices where is_open group by 1 order by 1"
        ).fetchall()
        forecast_input = con.execute(
            "select currency, count(*), sum(open_amount) from serving.forecast_open_invoices "
            "where as_of_date = ? group by 1 order by 1",
            [AS_OF],
        ).fetchall()
        scored = con.execute(
            "select count(*) filter (where is_scored), count(*) filter (where days_late_p50 is not null), "
            "count(distinct model_version) from serving.forecast_open_invoices"
        ).fetchone()
        features = con.execute("select count(*) from ml.ml_invoice_features where as_of_date = ?", [AS_OF])
        features = features.fetchone()[0]
        run_days = con.execute(
            "select count(distinct customer_id), count(distinct as_of_date) from serving.forecast_customer_payment_days"
        ).fetchone()
    assert forecast_input == book and book
    assert scored == (features, features, 1)
    assert run_days[0] > 0 and run_days[1] > 1  # the demo's payment runs, known on several snapshots


def test_the_weeks_ahead(forecast: cf.CashForecast, warehouse: Path) -> None:
    weeks = forecast.weeks
    with duckdb.connect(str(warehouse)) as con:
        open_by_currency = dict(
            con.execute("select currency, sum(open_amount) from marts.invoices where is_open group by 1").fetchall()
        )
    assert set(weeks["currency"]) == set(open_by_currency)
    for currency, rows in weeks.groupby("currency"):
        assert rows["week"].tolist() == list(range(1, WEEKS + 1))
        assert rows["week_start"].iloc[0] == AS_OF + timedelta(days=1)
        assert rows["week_end"].iloc[-1] == AS_OF + timedelta(days=7 * WEEKS)
        assert rows["expected"].sum() <= float(open_by_currency[currency]) + 1e-6
    assert (weeks["expected"] >= 0).all()
    assert ((weeks["p10"] <= weeks["p50"]) & (weeks["p50"] <= weeks["p90"])).all()
    assert weeks.loc[weeks["currency"] == "EUR", "expected"].sum() > 0
    assert any("independently" in n for n in forecast.notes)
    assert any("model version 7" in n for n in forecast.notes)


def test_each_backtest_week_against_the_ledger(forecast: cf.CashForecast, warehouse: Path) -> None:
    table = forecast.backtest
    eur = table.loc[table["currency"] == "EUR"]
    assert len(eur) == WEEKS
    assert eur["week_end"].iloc[-1] == AS_OF
    assert (eur["origin"] == eur["week_start"] - timedelta(days=1)).all()
    assert (eur["snapshot_date"] <= eur["origin"]).all()
    assert (eur["model_snapshot_date"] == eur["snapshot_date"]).all()  # refit_every=1: each snapshot its own fit
    assert eur["snapshot_date"].nunique() < WEEKS  # a 28-day grid: several weeks share a snapshot
    with duckdb.connect(str(warehouse)) as con:
        for row in table.itertuples(index=False):
            expected = con.execute(
                """select coalesce(sum(p.allocated_amount), 0)
                from intermediate.int_payments_allocated_to_invoices p
                join ml.ml_invoice_features f on f.invoice_id = p.invoice_id and f.as_of_date = ?
                where f.currency = ? and p.payment_date between ? and ?""",
                [row.snapshot_date, row.currency, row.week_start, row.week_end],
            ).fetchone()[0]
            assert row.actual == pytest.approx(float(expected), abs=0.005), row
    assert eur["forecast"].notna().all()
    assert (eur["abs_error"] == (eur["forecast"] - eur["actual"]).abs()).all()
    by_hand = (eur["forecast"] - eur["actual"]).abs().sum() / eur["actual"].sum()
    assert forecast.wape["EUR"] == pytest.approx(by_hand)
    assert set(forecast.baselines) == {"due_date", "customer_mean"}
    assert forecast.wape["EUR"] < forecast.baselines["due_date"]["EUR"]
    for name, by_currency in forecast.baselines.items():
        column = f"forecast_{name}"
        assert by_currency["EUR"] == pytest.approx((eur[column] - eur["actual"]).abs().sum() / eur["actual"].sum())


def test_the_thirteen_week_view_from_the_oldest_origin(forecast: cf.CashForecast) -> None:
    horizon = forecast.horizon.loc[forecast.horizon["currency"] == "EUR"]
    assert horizon["weeks_ahead"].tolist() == list(range(1, WEEKS + 1))
    assert horizon["origin"].nunique() == 1 and horizon["origin"].iloc[0] == AS_OF - timedelta(days=7 * WEEKS)
    first = forecast.backtest.loc[forecast.backtest["currency"] == "EUR"].iloc[0]
    assert horizon["forecast"].iloc[0] == pytest.approx(first["forecast"])  # week 1 is the backtest's first week
    assert not math.isnan(forecast.horizon_wape["EUR"])


def test_what_is_learnt_after_an_origin_never_reaches_its_forecast(warehouse: Path) -> None:
    """The last week's origin (as_of - 7) reads the 28-day grid's latest snapshot before it. Every label observed on
    or after that snapshot rewritten (late becomes on time and back, days late +100, settled a year later) and every
    later snapshot dropped: the forecast and its baselines do not move (the actual does not depend on the frame)."""
    with duckdb.connect(str(warehouse)) as con:
        frame = load_backtest_frame(con, train_rows="all")
        before = cf.backtest(con, AS_OF, weeks=1, simulations=200, frame=frame).table
        snapshot = pd.Timestamp(before["snapshot_date"].iloc[0])
        future = frame.loc[frame["as_of_date"] <= snapshot].copy()
        news = future["label_observed_date"] >= snapshot
        assert (news & (future["as_of_date"] < snapshot)).any()  # rows a leaky origin would have trained on
        future.loc[news, "is_late"] = 1 - future.loc[news, "is_late"]
        future.loc[news, "days_late"] = future.loc[news, "days_late"] + 100
        future.loc[news, "settled_date"] = future.loc[news, "settled_date"] + pd.Timedelta(days=365)
        after = cf.backtest(con, AS_OF, weeks=1, simulations=200, frame=future.reset_index(drop=True)).table
    pd.testing.assert_frame_equal(before, after)
    assert np.isfinite(before["forecast"]).all()


def test_fewer_fits_use_an_earlier_model(warehouse: Path) -> None:
    """refit_every=4 over 4 weeks: one fit, on the first origin's snapshot, used by the later origins too."""
    with duckdb.connect(str(warehouse)) as con:
        run = cf.backtest(con, AS_OF, weeks=4, simulations=100, refit_every=4)
        with pytest.raises(ValueError, match="refit_every"):
            cf.backtest(con, AS_OF, weeks=4, refit_every=0)
    eur = run.table.loc[run.table["currency"] == "EUR"]
    assert len(run.snapshots) == 1 and eur["model_snapshot_date"].nunique() == 1
    assert eur["model_snapshot_date"].iloc[0] == eur["snapshot_date"].iloc[0] == run.snapshots[0]
    assert (eur["model_snapshot_date"] <= eur["snapshot_date"]).all() and eur["forecast"].notna().all()
