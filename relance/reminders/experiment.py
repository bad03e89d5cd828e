"""The causal effect of reminders, from each scenario's randomised holdout.

Each customer entering a scenario is drawn into the holdout (no reminder) or the treatment arm
(:func:`relance.reminders.engine.holdout_draw`, recorded in ``ops.experiment_assignments``). Comparing the share of
customers who paid within 14 days in each arm gives the effect of the scenario's reminders -- an intention-to-treat
effect, unbiased because the arm is random. By channel, the treated customers are split by the channel of their
first message: that split is *not* randomised (the engine chose the channel for a reason), so each channel's
difference with the holdout is the effect of "being treated and reached on that channel", useful to compare, not a
clean causal estimate per channel; the report says so.

Intervals: the difference of two proportions with Newcombe's hybrid score interval (method 10 of Newcombe 1998,
built from Wilson intervals), which behaves at small counts and rates near 0 or 1 where the Wald interval does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

Z95 = 1.959963984540054
EFFECT_COLUMNS: tuple[str, ...] = (
    "group",
    "n_treated",
    "paid_treated",
    "rate_treated",
    "n_holdout",
    "paid_holdout",
    "rate_holdout",
    "effect",
    "ci_low",
    "ci_high",
)


def wilson(paid: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (NaN when n == 0)."""
    if n <= 0:
        return math.nan, math.nan
    p = paid / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Difference:
    effect: float
    low: float
    high: float


def difference(paid_a: int, n_a: int, paid_b: int, n_b: int, z: float = Z95) -> Difference:
    """p_a - p_b with Newcombe's hybrid score interval."""
    if n_a <= 0 or n_b <= 0:
        return Difference(math.nan, math.nan, math.nan)
    p_a, p_b = paid_a / n_a, paid_b / n_b
    l_a, u_a = wilson(paid_a, n_a, z)
    l_b, u_b = wilson(paid_b, n_b, z)
    d = p_a - p_b
    low = d - math.sqrt((p_a - l_a) ** 2 + (u_b - p_b) ** 2)
    high = d + math.sqrt((u_a - p_a) ** 2 + (p_b - l_b) ** 2)
    return Difference(d, low, high)


def holdout_effect(outcomes: pd.DataFrame, z: float = Z95) -> pd.DataFrame:
    """Effect of reminders, overall and by first channel.

    ``outcomes``: one row per (scenario, customer) assignment whose outcome window is over, with ``arm``
    ('treatment' | 'holdout'), ``channel`` (the first message's channel; null for the holdout or a treated customer
    who got none) and ``is_paid`` (paid within the window). Returns :data:`EFFECT_COLUMNS`: the row ``all
    (intention to treat)`` first, then one per channel.
    """
    missing = {"arm", "channel", "is_paid"} - set(outcomes.columns)
    if missing:
        raise ValueError(f"outcomes lack columns {sorted(missing)}")
    paid = outcomes["is_paid"].astype("boolean").fillna(False).astype(bool)
    arm = outcomes["arm"].astype(str)
    hold = paid[arm == "holdout"]
    n_h, k_h = int(hold.size), int(hold.sum())
    rows = []

    def row(group: str, treated: pd.Series) -> dict:
        n_t, k_t = int(treated.size), int(treated.sum())
        diff = difference(k_t, n_t, k_h, n_h, z)
        return {
            "group": group,
            "n_treated": n_t,
            "paid_treated": k_t,
            "rate_treated": k_t / n_t if n_t else math.nan,
            "n_holdout": n_h,
            "paid_holdout": k_h,
            "rate_holdout": k_h / n_h if n_h else math.nan,
            "effect": diff.effect,
            "ci_low": diff.low,
            "ci_high": diff.high,
        }

    treated = arm == "treatment"
    rows.append(row("all (intention to treat)", paid[treated]))
    channels = outcomes.loc[treated, "channel"].fillna("no message").astype(str)
    for channel in sorted(channels.unique()):
        rows.append(row(channel, paid[treated & (outcomes["channel"].fillna("no message").astype(str) == channel)]))
    return pd.DataFrame(rows, columns=list(EFFECT_COLUMNS))
