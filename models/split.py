"""Time-based train/test split over as-of snapshots, with a purge of label windows.

A row observed at ``as_of_date = d`` has a label that becomes known on its ``label_observed_date`` (at the
earliest ``d + horizon_days``; later for an invoice not yet due). The last snapshots form the test set; its
first date is the cutoff. A training row is kept only if its label was observable by the cutoff
(``d + horizon_days <= cutoff`` and, when the frame has it, ``label_observed_date <= cutoff``), so no training
label peeks into the test period. Rows that fall in the gap are dropped (neither train nor test). Never random.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import date

import pandas as pd

logger = logging.getLogger(__name__)


class UntrainableData(ValueError):  # noqa: N818 -- a condition of the data, not a programming error
    """The labelled data cannot train or honestly evaluate a classifier: too little history, too few rows, a
    single class. The daily run catches this one (and only this one): it keeps the current champion or falls
    back to the best baseline (``models.train.train_and_maybe_promote``). Anything else is a bug and raises."""


class SplitError(ValueError):
    """The frame cannot be split honestly: bad arguments or columns (a bug: raises), or ``TooLittleHistory``."""


class TooLittleHistory(SplitError, UntrainableData):
    """Too few as-of snapshots, or the purge leaves no training row: wait for more history."""


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    test: pd.DataFrame
    cutoff_date: date  # first test snapshot; every training label window ends on or before it
    horizon_days: int
    purged_snapshots: tuple[date, ...] = ()
    date_column: str = "as_of_date"
    purged_rows: int = 0

    def window(self) -> dict[str, str | int]:
        """Data window for logging: date ranges, row and snapshot counts."""
        tr = pd.to_datetime(self.train[self.date_column])
        te = pd.to_datetime(self.test[self.date_column])
        return {
            "train_start": str(tr.min().date()),
            "train_end": str(tr.max().date()),
            "test_start": str(te.min().date()),
            "test_end": str(te.max().date()),
            "cutoff_date": str(self.cutoff_date),
            "horizon_days": self.horizon_days,
            "n_train": len(self.train),
            "n_test": len(self.test),
            "n_train_snapshots": int(tr.nunique()),
            "n_test_snapshots": int(te.nunique()),
            "n_purged_snapshots": len(self.purged_snapshots),
            "n_purged_rows": self.purged_rows,
        }


def time_split(
    df: pd.DataFrame,
    test_fraction: float = 0.25,
    horizon_days: int = 30,
    *,
    date_column: str = "as_of_date",
    observed_column: str = "label_observed_date",
) -> Split:
    """Split ``df`` by snapshot date: the last ``ceil(n_snapshots * test_fraction)`` snapshots are test.

    Training keeps the earlier snapshots ``d`` with ``d + horizon_days <= cutoff`` (purge), and within them only
    the rows whose ``observed_column`` (if the frame has it) is on or before the cutoff. Row order within
    each part is preserved. Raises ``TooLittleHistory`` (a ``SplitError`` and an ``UntrainableData``) when there
    are fewer than two snapshots or when the purge leaves no training row; plain ``SplitError`` for bad arguments.
    """
    if not 0.0 < test_fraction < 1.0:
        raise SplitError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if horizon_days < 0:
        raise SplitError(f"horizon_days must be >= 0, got {horizon_days}")
    if date_column not in df.columns:
        raise SplitError(f"frame has no {date_column!r} column; columns: {list(df.columns)}")
    if df[date_column].isna().any():
        raise SplitError(f"{int(df[date_column].isna().sum())} row(s) have no {date_column}")

    dates = pd.to_datetime(df[date_column]).dt.normalize()
    snapshots = sorted(dates.unique())
    n = len(snapshots)
    if n < 2:
        raise TooLittleHistory(
            f"need at least 2 as-of snapshots for a time split, got {n}; build more history with dbt"
        )
    n_test = min(n - 1, max(1, math.ceil(n * test_fraction)))
    cutoff = pd.Timestamp(snapshots[n - n_test])
    horizon = pd.Timedelta(days=horizon_days)
    train_snaps = [s for s in snapshots[: n - n_test] if s + horizon <= cutoff and s < cutoff]
    purged = tuple(pd.Timestamp(s).date() for s in snapshots[: n - n_test] if s not in set(train_snaps))
    if not train_snaps:
        raise TooLittleHistory(
            f"no training snapshot ends its {horizon_days}-day label window by the test cutoff "
            f"{cutoff.date()} ({n} snapshots from {pd.Timestamp(snapshots[0]).date()} to "
            f"{pd.Timestamp(snapshots[-1]).date()}, "
            f"{n_test} for test); need snapshots at least {horizon_days} days before the test period"
        )

    train_mask = dates.isin(train_snaps).to_numpy(copy=True)
    purged_rows = 0
    if observed_column in df.columns:
        observed_ok = (pd.to_datetime(df[observed_column]).dt.normalize() <= cutoff).to_numpy()
        purged_rows = int((train_mask & ~observed_ok).sum())
        train_mask &= observed_ok
        if not train_mask.any():
            raise TooLittleHistory(
                f"no training row has its label observed by the test cutoff {cutoff.date()} "
                f"({observed_column}); need more history before the test period"
            )
    test_mask = (dates >= cutoff).to_numpy()
    split = Split(
        train=df.loc[train_mask].copy(),
        test=df.loc[test_mask].copy(),
        cutoff_date=cutoff.date(),
        horizon_days=horizon_days,
        purged_snapshots=purged,
        date_column=date_column,
        purged_rows=purged_rows,
    )
    logger.info(
        "time split: %d train snapshots, %d test snapshots from %s, %d purged (%s), %d rows purged",
        len(train_snaps),
        n_test,
        cutoff.date(),
        len(purged),
        ", ".join(map(str, purged)) or "none",
        purged_rows,
    )
    return split
