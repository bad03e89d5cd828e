"""How simulated customers pay and answer reminders: the priors of the base days-late distribution, the legacy
dunning steps, and the model of a reminder being answered by payment (channel x segment x days overdue x
propensity), with the closed-form probabilities the ground truth is computed from.

The delay follows ``shared/reference/risk_data_apis.md`` §4.4 (see :mod:`relance.demo.reference`): on time
(uniform -12..0 days) with P = sigmoid(segment - z), otherwise lognormal around a sector x size x region x
season median. A call works far better than an e-mail on a late construction invoice; B2C answers SMS.
"""

from __future__ import annotations

import numpy as np

from relance.demo.customers import Customers
from relance.demo.days import SECONDS_PER_DAY
from relance.demo.reference import CHANNELS, SECTION_LETTERS, SIZE_NAMES

F_SECTION = SECTION_LETTERS.index("F")

# Legacy dunning steps: (days from due, tone, P(applied) B2B, P(applied) B2C,
#                        channel mix B2B, channel mix B2C) with channels in CHANNELS order.
# Step 0 is applied to customers flagged for preventive e-mails rather than at random.
STEPS: tuple[tuple[int, str, float, float, tuple[float, ...], tuple[float, ...]], ...] = (
    (-3, "preventive", 1.0, 1.0, (1.0, 0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0)),
    (7, "cordial", 0.90, 0.90, (0.90, 0.0, 0.10, 0.0), (0.50, 0.50, 0.0, 0.0)),
    (21, "cordial", 0.85, 0.85, (0.35, 0.0, 0.30, 0.35), (0.30, 0.50, 0.20, 0.0)),
    (45, "firm", 0.80, 0.80, (0.10, 0.0, 0.50, 0.40), (0.0, 0.40, 0.50, 0.10)),
    (75, "firm", 0.70, 0.60, (0.0, 0.0, 0.80, 0.20), (0.0, 0.20, 0.80, 0.0)),
)
TRUTH_STEPS = 3  # steps whose 'paid' answer always lands by due+30 (21 + 2 weekend + <7 days of lag)
PAID_LAG_S = (SECONDS_PER_DAY, 7 * SECONDS_PER_DAY)  # the payment arrives on a later day than the reminder

# Response model: logit P(answer 'paid' within a week) by channel (email, sms, letter, call).
RESP_BASE = np.array([-2.0, -2.2, -1.8, -1.3])
RESP_B2C = np.array([-0.2, 1.3, -0.4, -0.2])
RESP_CONSTRUCTION = np.array([-0.6, -0.2, 0.2, 0.9])
RESP_HOSPITALITY = np.array([0.0, 0.4, 0.0, 0.2])
RESP_LARGE = np.array([0.4, -0.5, 0.2, -0.2])  # medium/large firms: accounts-payable teams read e-mail
RESP_OVERDUE_SLOPE = np.array([0.0, 0.005, 0.012, 0.02])  # per day overdue, capped at 60
RESP_FIRM_TONE = 0.15
RESP_PREVENTIVE = -0.6
RESP_PROPENSITY = -0.6
PROMISE_P = np.array([0.05, 0.05, 0.08, 0.14])

SEASON_DELAY = {1: 1.10, 7: 1.10, 8: 1.40, 12: 1.25}  # by month of the due date: August and year-end slower
SEASON_ON_TIME = {8: -0.30, 12: -0.25}


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def norm_cdf(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF (Abramowitz-Stegun 7.1.26, |error| < 1.5e-7): avoids a scipy dependency."""
    z = np.abs(x) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = 1.0 - poly * np.exp(-z * z)
    return 0.5 * (1.0 + np.sign(x) * erf)


def choice_by_row(rng: np.random.Generator, cumprobs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a (n, k) cumulative-probability matrix."""
    u = rng.random(cumprobs.shape[0])
    return np.minimum((u[:, None] >= cumprobs).sum(axis=1), cumprobs.shape[1] - 1)


def response_p(
    channel: np.ndarray, c: Customers, cust: np.ndarray, overdue: np.ndarray, z: np.ndarray, tone: str
) -> np.ndarray:
    """P(reminder answered 'paid' within a week): channel effects depend on segment and days overdue."""
    sec, b2c = c.section[cust], ~c.is_b2b[cust]
    big = c.size[cust] >= SIZE_NAMES.index("medium")
    logit = (
        RESP_BASE[channel]
        + np.where(b2c, RESP_B2C[channel], 0.0)
        + np.where(sec == F_SECTION, RESP_CONSTRUCTION[channel], 0.0)
        + np.where(sec == SECTION_LETTERS.index("I"), RESP_HOSPITALITY[channel], 0.0)
        + np.where(big, RESP_LARGE[channel], 0.0)
        + RESP_OVERDUE_SLOPE[channel] * np.clip(overdue, 0, 60)
        + np.where(overdue < 0, RESP_PREVENTIVE, 0.0)
        + (RESP_FIRM_TONE if tone == "firm" else 0.0)
        + RESP_PROPENSITY * z
    )
    return sigmoid(logit)


def delay_cdf(x: np.ndarray, p_on: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """P(D <= x) for the base days-late mixture: uniform -12..0 when on time, else max(1, ceil(lognormal))."""
    fx = np.floor(x)
    on = np.clip((fx + 13.0) / 13.0, 0.0, 1.0)
    late = np.where(fx >= 1, norm_cdf((np.log(np.maximum(fx, 1.0)) - mu) / sigma), 0.0)
    return p_on * on + (1.0 - p_on) * late


def channel_effects(c: Customers, cust: np.ndarray, due: np.ndarray) -> dict[str, np.ndarray]:
    """P(a cordial reminder sent 30 days after due on each channel is answered by payment within 7 days)."""
    n = len(cust)
    z30 = c.z_at(cust, due + 30)
    return {
        f"effect_{ch}": response_p(np.full(n, i), c, cust, np.full(n, 30), z30, "cordial")
        for i, ch in enumerate(CHANNELS)
    }
