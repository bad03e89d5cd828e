"""The cash-in forecast's pure steps on tiny frames: an invoice's payment-date distribution from its quantiles (the
weekly split, conditioning on being open, the classifier's cap, payment runs), the bands, WAPE, the backtest's
origins and what an origin may know. The end-to-end run on a built warehouse: tests/integration/
test_cashflow_backtest.py."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from models import cashflow as cf
from models.backtest import training_rows

ORIGIN = date(2026, 11, 1)
AMOUNT = 1000.0


def _invoice(due: date, q10: float, q50: float, q90: float, **extra: object) -> pd.DataFrame:
    row = {
        "invoice_id": "I1",
        "customer_id": "C1",
        "currency": "EUR",
        "due_date": pd.Timestamp(due),
        "open_amount": AMOUNT,
        "days_late_p10": q10,
        "days_late_p50": q50,
        "days_late_p90": q90,
        "p_late": np.nan,
        "target_name": None,
        **extra,
    }
    return pd.DataFrame([row])


def _weeks(frame: pd.DataFrame, weeks: int = 8, payment_days: dict | None = None) -> pd.DataFrame:
    windows = cf.week_windows(ORIGIN, weeks)
    daily = cf.payment_distribution(frame, ORIGIN, weeks * cf.WEEK_DAYS, payment_days)
    return cf.weekly_table(frame, daily, ORIGIN, windows, simulations=200)


def test_week_windows_start_the_day_after_the_origin() -> None:
    windows = cf.week_windows(ORIGIN, 2)
    assert windows["week_start"].tolist() == [date(2026, 11, 2), date(2026, 11, 9)]
    assert windows["week_end"].tolist() == [date(2026, 11, 8), date(2026, 11, 15)]
    assert cf.backtest_origins(date(2026, 10, 31), 3) == [date(2026, 10, 10), date(2026, 10, 17), date(2026, 10, 24)]


def test_one_invoice_splits_by_its_quantiles() -> None:
    """Due on the origin, days late p10 7.5 / p50 14.5 / p90 21.5: the CDF is 0 at 0.5 (the lower tail is as long
    as p50 - p10), so weeks 1-4 (days late 1-7, 8-14, 15-21, 22-28) get 10 %, 40 %, 40 %, 10 %."""
    table = _weeks(_invoice(ORIGIN, 7.5, 14.5, 21.5))
    assert table["expected"].round(6).tolist() == [100.0, 400.0, 400.0, 100.0, 0.0, 0.0, 0.0, 0.0]
    assert table["invoice_count"].tolist() == [0, 1, 0, 0, 0, 0, 0, 0]  # the median day (14) is in week 2


def test_a_certain_date_lands_in_its_week() -> None:
    """All three quantiles 3 days late on a due date 10 days out: paid on day 13, week 2."""
    table = _weeks(_invoice(ORIGIN + timedelta(days=10), 3, 3, 3))
    assert table["expected"].tolist() == [0.0, AMOUNT, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert table.loc[1, ["p10", "p50", "p90"]].tolist() == [AMOUNT, AMOUNT, AMOUNT]


def test_an_open_invoice_is_never_paid_before_the_day_after_the_origin() -> None:
    """30 days overdue, quantiles saying 2..9 days late: all in the past, so it is paid the day after (week 1); with
    half its mass after the origin, that half is all the conditional distribution has."""
    past = _weeks(_invoice(ORIGIN - timedelta(days=30), 2, 5, 9))
    assert past["expected"].tolist()[:2] == [AMOUNT, 0.0]
    # due on the origin - 14.5: days late 14.5 = p50, so half the mass is before the origin and is renormalised
    half = _weeks(_invoice(ORIGIN - timedelta(days=14), 7.5, 14.5, 21.5))
    assert half["expected"].sum() == pytest.approx(AMOUNT)
    assert half["expected"].iloc[0] == pytest.approx(AMOUNT * 0.4 / 0.5 * 7 / 7, rel=1e-9)


def test_the_classifier_caps_what_is_paid_by_its_date() -> None:
    """unpaid_7d_after_due with p_late 0.95: only 5 % paid by due + 7 (the quantiles say 10 %), the other 5 %
    spread evenly over the 60 days after; p_late 0.5 (50 % paid by then) asks for less than the quantiles give:
    no change."""
    capped = _weeks(_invoice(ORIGIN, 7.5, 14.5, 21.5, p_late=0.95, target_name="unpaid_7d_after_due"), weeks=13)
    moved_per_week = 0.05 * 7 / cf.LATE_SPREAD_DAYS * AMOUNT
    assert capped["expected"].iloc[0] == pytest.approx(50.0)
    assert capped["expected"].iloc[1] == pytest.approx(400.0 + moved_per_week)
    assert capped["expected"].sum() == pytest.approx(AMOUNT)
    loose = _weeks(_invoice(ORIGIN, 7.5, 14.5, 21.5, p_late=0.5, target_name="unpaid_7d_after_due"))
    assert loose["expected"].round(6).tolist()[:4] == [100.0, 400.0, 400.0, 100.0]


def test_target_dates_by_kind() -> None:
    overdue = np.array([-5.0, 10.0])
    assert cf.target_horizon_days("unpaid_30d_after_due", overdue).tolist() == [30.0, 40.0]
    assert cf.target_horizon_days("unpaid_30d_after_as_of", overdue).tolist() == [25.0, 40.0]
    late = cf.target_horizon_days("late_over_5d", np.array([-5.0, 5.0]))
    assert late[0] == 5.0 and math.isnan(late[1])
    assert np.isnan(cf.target_horizon_days(None, overdue)).all()


def test_without_quantiles_the_due_date_or_the_next_day() -> None:
    frame = pd.concat(
        [
            _invoice(ORIGIN + timedelta(days=10), np.nan, np.nan, np.nan),
            _invoice(ORIGIN - timedelta(days=10), np.nan, np.nan, np.nan).assign(invoice_id="I2"),
        ],
        ignore_index=True,
    )
    assert _weeks(frame)["expected"].tolist()[:3] == [AMOUNT, AMOUNT, 0.0]


def test_a_payment_run_customer_is_paid_on_its_nearest_run_day() -> None:
    """The invoice of the one-invoice split, its customer paying on the 10th: days up to 24 November go to
    10 November (week 2), from the 25th (15 days from both) to 10 December (week 6)."""
    table = _weeks(_invoice(ORIGIN, 7.5, 14.5, 21.5), payment_days={"C1": (10,)})
    by_nov_24 = 0.9 + 0.1 * 2 / 7  # days late up to 23.5
    expected = [0.0, by_nov_24, 0.0, 0.0, 0.0, 1 - by_nov_24, 0.0, 0.0]
    assert table["expected"].tolist() == pytest.approx([AMOUNT * p for p in expected])
    # another customer's run days do not move it
    elsewhere = _weeks(_invoice(ORIGIN, 7.5, 14.5, 21.5), payment_days={"C9": (10,)})
    assert elsewhere["expected"].round(6).tolist()[:4] == [100.0, 400.0, 400.0, 100.0]


def test_run_days_and_the_nearest_one() -> None:
    mask = cf.run_days_mask(ORIGIN, 61, (31,))  # November has 30 days: its last day stands in for the 31st
    days = [ORIGIN + timedelta(days=int(i) + 1) for i in np.flatnonzero(mask)]
    assert days == [date(2026, 11, 30), date(2026, 12, 31)]
    assert cf.nearest_run_day(np.array([False, True, False, False, True])).tolist() == [1, 1, 1, 4, 4]
    assert cf.nearest_run_day(np.array([True, False, True])).tolist() == [0, 2, 2]  # a tie goes to the later day
    assert cf.nearest_run_day(np.array([False, False])).tolist() == [-1, -1]


def test_bands_are_ordered_and_centred_on_the_expectation() -> None:
    rng = np.random.default_rng(3)
    n = 60
    q50 = rng.uniform(-5, 40, n)
    frame = pd.DataFrame(
        {
            "invoice_id": [f"I{i}" for i in range(n)],
            "customer_id": [f"C{i % 7}" for i in range(n)],
            "currency": ["EUR"] * (n - 5) + ["GBP"] * 5,
            "due_date": [pd.Timestamp(ORIGIN) + pd.Timedelta(days=int(d)) for d in rng.integers(-20, 30, n)],
            "open_amount": rng.lognormal(7, 1, n),
            "days_late_p10": q50 - rng.uniform(0, 10, n),
            "days_late_p50": q50,
            "days_late_p90": q50 + rng.uniform(0, 30, n),
            "p_late": rng.uniform(0, 1, n),
            "target_name": "unpaid_30d_after_due",
        }
    )
    windows = cf.week_windows(ORIGIN, 13)
    daily = cf.payment_distribution(frame, ORIGIN, 13 * 7)
    table = cf.weekly_table(frame, daily, ORIGIN, windows, simulations=4000, seed=1)
    assert len(table) == 26 and set(table["currency"]) == {"EUR", "GBP"}
    assert (table["p10"] <= table["p50"]).all() and (table["p50"] <= table["p90"]).all()
    eur = frame["currency"] == "EUR"
    sims = cf.simulate_totals(
        frame.loc[eur, "open_amount"].to_numpy(), cf.window_sums(daily[eur.to_numpy()], ORIGIN, windows), seed=1
    )
    assert sims.mean(axis=0) == pytest.approx(table.loc[table["currency"] == "EUR", "expected"].to_numpy(), rel=0.05)
    assert table["expected"].sum() <= frame["open_amount"].sum() + 1e-6
    assert (daily >= 0).all() and (daily.sum(axis=1) <= 1 + 1e-9).all()


def test_wape_arithmetic() -> None:
    assert cf.wape([110, 80], [100, 100]) == pytest.approx(0.15)
    assert math.isnan(cf.wape([5.0], [0.0]))
    assert math.isnan(cf.wape([], []))
    table = pd.DataFrame(
        {
            "currency": ["EUR", "EUR", "EUR", "GBP"],
            "forecast": [90.0, 130.0, np.nan, 4.0],
            "actual": [100.0, 100.0, 500.0, 0.0],
        }
    )
    out = cf.wape_by_currency(table)
    assert out["EUR"] == pytest.approx(0.2)  # the week without a forecast is left out, not counted as 0
    assert math.isnan(out["GBP"])


def test_snapshot_for_takes_the_latest_on_or_before() -> None:
    snaps = [pd.Timestamp("2026-10-03"), pd.Timestamp("2026-10-31")]
    assert cf.snapshot_for(date(2026, 10, 30), snaps) == pd.Timestamp("2026-10-03")
    assert cf.snapshot_for(date(2026, 10, 31), snaps) == pd.Timestamp("2026-10-31")
    assert cf.snapshot_for(date(2026, 10, 2), snaps) is None


class _QuantileModel:
    """A fitted model's stand-in: p_late and quantiles from each row's features only (days_to_due)."""

    def predict_frame(self, df: pd.DataFrame, *, reasons: bool = True) -> pd.DataFrame:
        to_due = df["days_to_due"].to_numpy(dtype=float)
        floor = 1.0 - to_due
        out = pd.DataFrame(index=df.index)
        out["p_late"] = 0.3
        out["days_late_p10"] = np.maximum(floor, 0.0)
        out["days_late_p50"] = np.maximum(floor, 6.0)
        out["days_late_p90"] = np.maximum(floor, 20.0)
        return out


def _history() -> pd.DataFrame:
    """Feature rows of three invoices on three snapshots (09-12, 10-03, 10-10), as load_backtest_frame returns
    them: A settles on 09-20, B on 10-15, C is still open."""
    s0, s1, s2 = pd.Timestamp("2026-09-12"), pd.Timestamp("2026-10-03"), pd.Timestamp("2026-10-10")
    rows = [
        # invoice, as_of, issue, due, settled, label observed, days late, late, open, customer mean
        ("A", s0, "2026-08-01", "2026-09-01", "2026-09-20", "2026-09-20", 19, 1, 300.0, np.nan),
        ("B", s0, "2026-09-01", "2026-10-01", "2026-10-15", "2026-10-15", 14, 1, 500.0, np.nan),
        ("B", s1, "2026-09-01", "2026-10-01", "2026-10-15", "2026-10-15", 14, 1, 500.0, 3.0),  # settled after s1
        ("C", s1, "2026-09-15", "2026-10-20", None, "2026-11-19", np.nan, 0, 800.0, np.nan),
        ("B", s2, "2026-09-01", "2026-10-01", "2026-10-15", "2026-10-15", 14, 1, 500.0, 3.0),
        ("C", s2, "2026-09-15", "2026-10-20", None, "2026-11-19", np.nan, 0, 800.0, np.nan),
    ]
    frame = pd.DataFrame(
        rows,
        columns=[
            "invoice_id",
            "as_of_date",
            "issue_date",
            "due_date",
            "settled_date",
            "label_observed_date",
            "days_late",
            "is_late",
            "open_amount_ccy",
            "hist_mean_days_late",
        ],
    )
    for col in ("issue_date", "due_date", "settled_date", "label_observed_date"):
        frame[col] = pd.to_datetime(frame[col])
    frame["customer_id"] = "C1"
    frame["currency"] = "EUR"
    frame["target_name"] = "unpaid_30d_after_due"
    frame["days_to_due"] = (frame["due_date"] - frame["as_of_date"]).dt.days
    return frame


def _origin_forecast(frame: pd.DataFrame, snapshot: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    origin = snapshot.date()
    train = training_rows(frame, origin, train_rows="all")
    rows = cf.origin_rows(frame, snapshot)
    out = cf.scored_windows(
        rows,
        _QuantileModel(),
        origin,
        cf.week_windows(origin, 4),
        train=train,
        payment_days={},
        payments=pd.DataFrame({"invoice_id": [], "payment_date": pd.to_datetime([]), "paid": []}),
        simulations=100,
        seed=0,
    )
    return train, rows, out


def test_what_happens_after_an_origin_does_not_change_its_forecast() -> None:
    """B is open on 10-03 and settles on 10-15: its label, its days late, a later snapshot and C's outcome are all
    learnt after the origin. Changing them changes nothing the 10-03 forecast (nor its baselines) reads."""
    frame = _history()
    s1 = pd.Timestamp("2026-10-03")
    train, rows, forecast = _origin_forecast(frame, s1)
    assert train["invoice_id"].tolist() == ["A"]  # B's label (10-15) is not observed on 10-03
    assert rows["invoice_id"].tolist() == ["B", "C"] and rows["open_amount"].tolist() == [500.0, 800.0]
    assert forecast["forecast"].sum() > 0

    future = frame.copy()
    late_news = future["label_observed_date"] >= s1
    future.loc[late_news, ["days_late", "is_late"]] = [400.0, 0]
    future.loc[late_news & future["settled_date"].notna(), "settled_date"] = pd.Timestamp("2027-06-30")
    future = pd.concat([future, future.loc[future["as_of_date"] == pd.Timestamp("2026-10-10")].assign(
        as_of_date=pd.Timestamp("2026-10-17"), open_amount_ccy=1.0
    )])  # fmt: skip
    train2, rows2, forecast2 = _origin_forecast(future.reset_index(drop=True), s1)
    pd.testing.assert_frame_equal(train, train2)
    pd.testing.assert_frame_equal(rows.drop(columns=["days_late", "is_late", "settled_date"]),
                                  rows2.drop(columns=["days_late", "is_late", "settled_date"]))  # fmt: skip
    pd.testing.assert_frame_equal(forecast, forecast2)


def test_training_rows_at_a_later_origin_see_only_labels_observed_before_it() -> None:
    frame = _history()
    train = training_rows(frame, date(2026, 10, 10), train_rows="all")
    # A as of 09-12 (observed 09-20); B's rows (observed 10-15, after the origin) and C's (not known) are out
    assert train["invoice_id"].tolist() == ["A"]
    assert train["days_late"].tolist() == [19.0]
    # on 10-17, B's label is known: its 09-12 and 10-03 rows train, its 10-10 row too, each weighted 1/3
    later = training_rows(frame, date(2026, 10, 17), train_rows="all")
    assert sorted(later["invoice_id"]) == ["A", "B", "B", "B"]
