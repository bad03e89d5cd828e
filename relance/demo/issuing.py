"""When invoices are issued: how many each customer gets (activity x length of its active window) and on which
days (a seasonal issuing intensity: weekends quiet, August and late December slower)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from relance.demo.customers import Customers
from relance.demo.days import day_of_month, month
from relance.demo.reference import SIZE_BANDS, SIZE_NAMES


@dataclass(frozen=True)
class Issuing:
    """Invoices per customer and the day window each customer is active in (invoices are issued inside it)."""

    counts: np.ndarray
    window_start: np.ndarray
    window_end: np.ndarray


def allocate_invoices(c: Customers, n_invoices: int, start: int, end: int, rng: np.random.Generator) -> Issuing:
    """Invoices per customer, proportional to activity x length of the customer's active window.

    A customer is active from its creation (or ``start``) until a few weeks after an insolvency judgment
    (or ``end``).
    """
    activity = np.array([SIZE_BANDS[s][4] for s in SIZE_NAMES])
    weight = rng.lognormal(0.0, 0.8, c.n) * np.where(c.is_b2b, activity[np.maximum(c.size, 0)], 0.4)
    stop_after = rng.integers(0, 46, c.n)
    window_start = np.maximum(start, c.created)
    window_end = np.minimum(end, c.insolvency_day + stop_after)
    window_end = np.maximum(window_end, window_start)
    weight = weight * (window_end - window_start + 1)
    return Issuing(rng.multinomial(n_invoices, weight / weight.sum()), window_start, window_end)


def issue_day_cdf(start: int, end: int) -> np.ndarray:
    """Cumulative issuing intensity per calendar day: weekends quiet, August and late December slower."""
    days = np.arange(start, end + 1)
    wd = (days + 3) % 7
    w = np.where(wd == 5, 0.05, np.where(wd == 6, 0.02, 1.0))
    months = month(days)
    w = w * np.where(months == 8, 0.6, 1.0) * np.where((months == 12) & (day_of_month(days) > 20), 0.5, 1.0)
    return np.concatenate([[0.0], np.cumsum(w)])


def draw_issue_days(issuing: Issuing, start: int, end: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(customer index, issue day) of every invoice, grouped by customer: each day drawn in its customer's window
    with the seasonal intensity (inverse CDF on two small arrays, whatever the number of invoices)."""
    cdf = issue_day_cdf(start, end)
    inv_cust = np.repeat(np.arange(len(issuing.counts), dtype=np.int32), issuing.counts)
    lo_idx = issuing.window_start[inv_cust] - start
    hi_idx = issuing.window_end[inv_cust] - start
    u = cdf[lo_idx] + rng.random(len(inv_cust)) * (cdf[hi_idx + 1] - cdf[lo_idx])
    inv_issue = np.clip(np.searchsorted(cdf, u, side="right") - 1, lo_idx, hi_idx).astype(np.int32) + start
    return inv_cust, inv_issue
