"""Day numbers for the vectorised simulation: days since 1970-01-01 as numpy arrays, and the calendar on them
(months, weekdays, month ends, the 10th/25th run days of batch payers)."""

from __future__ import annotations

from datetime import date

import numpy as np

EPOCH = date(1970, 1, 1)
NEVER = 10_000_000  # day number standing for "never" (year ~29000), safe to add offsets to in int32/int64
SECONDS_PER_DAY = 86_400


def day_number(d: date) -> int:
    """Days since 1970-01-01."""
    return (d - EPOCH).days


def month_start_months_before(end: date, months: int) -> date:
    """First day of the month ``months - 1`` months before end's month: ``months`` calendar months in all."""
    idx = end.year * 12 + end.month - 1 - (months - 1)
    return date(idx // 12, idx % 12 + 1, 1)


def end_of_month(days: np.ndarray) -> np.ndarray:
    d = days.astype("datetime64[D]")
    return ((d.astype("datetime64[M]") + 1).astype("datetime64[D]") - 1).astype(np.int64)


def month(days: np.ndarray) -> np.ndarray:
    return (days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12 + 1).astype(np.int8)


def day_of_month(days: np.ndarray) -> np.ndarray:
    d = days.astype("datetime64[D]")
    return (d - d.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1


def next_weekday(days: np.ndarray) -> np.ndarray:
    """Move Saturdays and Sundays to the following Monday (1970-01-01 was a Thursday)."""
    wd = (days + 3) % 7
    return days + np.where(wd == 5, 2, np.where(wd == 6, 1, 0))


def next_run_day(days: np.ndarray) -> np.ndarray:
    """Batch payers pay on the 10th and 25th: the first run day on or after ``days``."""
    dom = day_of_month(days)
    first = days - dom + 1
    nxt = end_of_month(days) + 1 + 9
    return np.where(dom <= 10, first + 9, np.where(dom <= 25, first + 24, nxt))


def last_run_day(days: np.ndarray) -> np.ndarray:
    """The last run day (10th or 25th) on or before ``days``."""
    dom = day_of_month(days)
    first = days - dom + 1
    prev_month_first = end_of_month(first - 1) - day_of_month(first - 1) + 1
    return np.where(dom >= 25, first + 24, np.where(dom >= 10, first + 9, prev_month_first + 24))
