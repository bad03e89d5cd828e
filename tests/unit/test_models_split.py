"""Time split with purge: never random, no snapshot on both sides, no train label window in the test."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.split import SplitError, time_split


def snapshots_frame(dates: list[date], rows_per_snapshot: int = 3) -> pd.DataFrame:
    rows = [
        {"invoice_id": f"INV-{i}-{j}", "as_of_date": pd.Timestamp(d), "x": float(i), "is_late_30d": j % 2}
        for i, d in enumerate(dates)
        for j in range(rows_per_snapshot)
    ]
    # shuffled on purpose: the split must order by date, not trust row order
    return pd.DataFrame(rows).sample(frac=1.0, random_state=3).reset_index(drop=True)


WEEKLY = [date(2026, 1, 5) + timedelta(weeks=i) for i in range(12)]


def assert_honest(split, horizon_days: int) -> None:
    train_dates = set(split.train["as_of_date"])
    test_dates = set(split.test["as_of_date"])
    assert not train_dates & test_dates
    cutoff = pd.Timestamp(split.cutoff_date)
    assert min(test_dates) == cutoff
    assert max(train_dates) < cutoff
    # purge: every training label window (as_of, as_of + horizon] ends on or before the test period starts
    assert (split.train["as_of_date"] + pd.Timedelta(days=horizon_days) <= cutoff).all()


def test_last_snapshots_are_the_test_set_and_label_windows_are_purged() -> None:
    df = snapshots_frame(WEEKLY)
    split = time_split(df, test_fraction=0.25, horizon_days=30)
    assert_honest(split, 30)
    # 12 snapshots * 0.25 -> the last 3 are test; cutoff is the 10th snapshot
    assert split.cutoff_date == WEEKLY[9]
    assert sorted(set(split.test["as_of_date"].dt.date)) == WEEKLY[9:]
    # weekly snapshots within 30 days before the cutoff (28, 21, 14, 7 days) are purged, the rest train
    assert sorted(set(split.train["as_of_date"].dt.date)) == WEEKLY[:5]
    assert split.purged_snapshots == tuple(WEEKLY[5:9])
    assert len(split.train) + len(split.test) + 3 * len(split.purged_snapshots) == len(df)
    w = split.window()
    assert (w["train_end"], w["test_start"], w["cutoff_date"]) == (
        str(WEEKLY[4]),
        str(WEEKLY[9]),
        str(WEEKLY[9]),
    )
    assert (w["n_train_snapshots"], w["n_test_snapshots"], w["n_purged_snapshots"]) == (5, 3, 4)


def test_snapshot_exactly_horizon_days_before_cutoff_is_kept() -> None:
    # label window (d, d + 30] ends on the cutoff itself: observable when the test period starts
    cutoff = date(2026, 3, 31)
    dates = [cutoff - timedelta(days=31), cutoff - timedelta(days=30), cutoff - timedelta(days=29), cutoff]
    split = time_split(snapshots_frame(dates), test_fraction=0.25, horizon_days=30)
    assert sorted(set(split.train["as_of_date"].dt.date)) == dates[:2]
    assert split.purged_snapshots == (dates[2],)
    assert_honest(split, 30)


def test_rows_are_not_shuffled_or_lost_within_parts() -> None:
    df = snapshots_frame(WEEKLY)
    split = time_split(df, horizon_days=0)
    # horizon 0: nothing to purge, every row lands on exactly one side, original order kept
    assert len(split.train) + len(split.test) == len(df)
    assert list(split.train.index) == sorted(split.train.index)
    assert set(split.train.index) | set(split.test.index) == set(df.index)
    assert split.train.index.intersection(split.test.index).empty


def test_accepts_plain_dates_and_is_deterministic() -> None:
    df = snapshots_frame(WEEKLY)
    df["as_of_date"] = df["as_of_date"].dt.date
    a = time_split(df, horizon_days=14)
    b = time_split(df, horizon_days=14)
    pd.testing.assert_frame_equal(a.train, b.train)
    pd.testing.assert_frame_equal(a.test, b.test)
    assert a.window()["train_end"] == str(WEEKLY[7])


def test_too_few_snapshots_is_a_clear_error() -> None:
    with pytest.raises(SplitError, match="at least 2 as-of snapshots"):
        time_split(snapshots_frame([date(2026, 1, 5)]))


def test_purge_leaving_no_training_rows_is_a_clear_error() -> None:
    # four weekly snapshots cannot hold a 30-day gap before the test period
    with pytest.raises(SplitError, match="30-day label window"):
        time_split(snapshots_frame(WEEKLY[:4]), horizon_days=30)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"test_fraction": 0.0}, "test_fraction"),
        ({"test_fraction": 1.0}, "test_fraction"),
        ({"horizon_days": -1}, "horizon_days"),
        ({"date_column": "snapshot"}, "no 'snapshot' column"),
    ],
)
def test_invalid_arguments_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(SplitError, match=message):
        time_split(snapshots_frame(WEEKLY), **kwargs)


def test_missing_dates_are_rejected() -> None:
    df = snapshots_frame(WEEKLY)
    df.loc[0, "as_of_date"] = pd.NaT
    with pytest.raises(SplitError, match="have no as_of_date"):
        time_split(df)


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=15),
    horizon=st.integers(min_value=0, max_value=60),
    test_fraction=st.floats(min_value=0.05, max_value=0.95),
)
def test_any_successful_split_is_honest(gaps: list[int], horizon: int, test_fraction: float) -> None:
    dates = [date(2026, 1, 1)]
    for g in gaps:
        dates.append(dates[-1] + timedelta(days=g))
    df = snapshots_frame(dates, rows_per_snapshot=2)
    try:
        split = time_split(df, test_fraction=test_fraction, horizon_days=horizon)
    except SplitError as exc:
        assert "label window" in str(exc)
        return
    assert_honest(split, horizon)
    assert len(split.test) > 0 and len(split.train) > 0
    # nothing is thrown away except purged snapshots
    kept = set(split.train["as_of_date"].dt.date) | set(split.test["as_of_date"].dt.date)
    assert kept | set(split.purged_snapshots) == set(dates)


def test_rows_whose_label_is_observed_after_the_cutoff_never_train() -> None:
    """An invoice not yet due at its snapshot is labelled only 30 days after its due date: purge it too."""
    snaps = pd.to_datetime(["2026-01-05", "2026-02-02", "2026-03-02", "2026-03-30", "2026-04-27"])
    rows = []
    for i, s in enumerate(snaps):
        for j, due_in in enumerate((-10, 5, 60)):
            due = s + pd.Timedelta(days=due_in)
            rows.append(
                {"as_of_date": s, "invoice_id": f"I{i}{j}", "label_observed_date": max(s, due) + pd.Timedelta(days=30)}
            )
    split = time_split(pd.DataFrame(rows), test_fraction=0.2, horizon_days=30)
    assert not split.train.empty
    assert (pd.to_datetime(split.train["label_observed_date"]) <= pd.Timestamp(split.cutoff_date)).all()
    assert split.purged_rows > 0
    assert split.window()["n_purged_rows"] == split.purged_rows
