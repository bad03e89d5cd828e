"""Legacy dunning, the process the demo's history was collected under: five steps (preventive e-mail at due-3,
cordial at +7 and +21, firm at +45 and +75) on channels drawn from a segment-dependent mix.

A reminder is sent only while the invoice is unpaid, not while a dispute is open nor after an insolvency
judgment; its answer follows the response model of :mod:`relance.demo.behaviour`. Because reminder randomness is
independent of the base delay, each early step also gives a closed-form factor of the ground truth.
"""

from __future__ import annotations

import numpy as np

from relance.demo.behaviour import PAID_LAG_S, PROMISE_P, STEPS, TRUTH_STEPS, choice_by_row, response_p
from relance.demo.customers import Customers
from relance.demo.days import SECONDS_PER_DAY, next_weekday
from relance.demo.reference import CHANNELS, TONES


def dunning_step(
    s: int,
    c: Customers,
    cust: np.ndarray,
    due: np.ndarray,
    settle: np.ndarray,
    disputes: tuple[np.ndarray, np.ndarray, np.ndarray],
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Legacy dunning step ``s`` (:data:`STEPS`): (new settle day, the reminders sent, truth factor).

    A reminder goes on a weekday, while unpaid, not during a dispute nor after an insolvency judgment; its answer
    is 'paid' (settles within a week), a promise, a dispute (when one opens within 10 days) or nothing. The truth
    factor is 1 - P(step sent and answered 'paid'), for the early steps whose payment lands by due+30 (else 1).
    """
    offset, tone, q_b2b, q_b2c, mix_b2b, mix_b2c = STEPS[s]
    n = len(cust)
    is_b2b = c.is_b2b[cust]
    disputed, opened, resolved = disputes
    send_day = next_weekday(due + offset)
    in_pre_dispute = disputed & (send_day >= opened - 10) & (send_day < opened)
    suspended = disputed & (send_day >= opened) & (send_day < resolved)
    allowed = ~suspended & (send_day < c.insolvency_day[cust])
    q = c.preventive[cust].astype(float) if s == 0 else np.where(is_b2b, q_b2b, q_b2c)
    applied = rng.random(n) < q
    cum = np.cumsum(np.array([mix_b2b, mix_b2c]), axis=1)
    channel = choice_by_row(rng, cum[np.where(is_b2b, 0, 1)])
    z_send = c.z_at(cust, send_day)
    overdue = send_day - due
    p_paid = response_p(channel, c, cust, overdue, z_send, tone)
    keep = np.ones(n)
    if s < TRUTH_STEPS:
        mix = np.where(is_b2b[:, None], np.array(mix_b2b)[None, :], np.array(mix_b2c)[None, :])
        expected = np.zeros(n)
        for ch in range(len(CHANNELS)):
            ch_arr = np.full(n, ch)
            expected += mix[:, ch] * response_p(ch_arr, c, cust, overdue, z_send, tone)
        keep = 1.0 - q * expected * (allowed & ~in_pre_dispute)

    sent = applied & allowed & (settle > send_day)
    u = rng.random(n)
    send_sec = send_day * SECONDS_PER_DAY + rng.integers(7 * 3600, 18 * 3600, n)
    paid_lag = rng.integers(*PAID_LAG_S, n)
    promise_lag = rng.integers(600, 2 * SECONDS_PER_DAY, n)
    honour_gap = rng.integers(0, 4, n)
    broken_gap = rng.integers(5, 22, n)
    dispute_sec = opened * SECONDS_PER_DAY + rng.integers(8 * 3600, 18 * 3600, n)

    is_dispute = sent & in_pre_dispute
    is_paid = sent & ~is_dispute & (u < p_paid)
    is_promise = sent & ~is_dispute & ~is_paid & (overdue >= 0) & (u < p_paid + PROMISE_P[channel])
    responded = np.where(
        is_paid,
        send_sec + paid_lag,
        np.where(is_promise, send_sec + promise_lag, np.where(is_dispute, dispute_sec, -1)),
    )
    settle = np.where(is_paid, np.minimum(settle, responded // SECONDS_PER_DAY), settle)
    resp_day = responded // SECONDS_PER_DAY
    honoured = (settle - resp_day >= 1) & (settle - resp_day <= 45)
    promised = np.where(honoured, np.maximum(settle - honour_gap, resp_day + 1), resp_day + broken_gap)
    response = np.where(is_paid, 3, np.where(is_promise, 1, np.where(is_dispute, 2, 0)))  # index into RESPONSES
    idx = np.flatnonzero(sent)
    reminders = {
        "inv": idx,
        "sent": send_sec[idx],
        "channel": channel[idx],
        "tone": np.full(len(idx), TONES.index(tone)),
        "response": response[idx],
        "responded": responded[idx],
        "promised": np.where(is_promise[idx], promised[idx], -1),
    }
    return settle, reminders, keep


def run_dunning(
    c: Customers,
    cust: np.ndarray,
    due: np.ndarray,
    settle: np.ndarray,
    disputes: tuple[np.ndarray, np.ndarray, np.ndarray],
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Every step in turn: (final settle day, the reminders sent (arrays by key), truth factor of the early steps).

    ``truth_keep`` is prod over the early steps of (1 - P(step sent and answered 'paid')).
    """
    sent: list[dict[str, np.ndarray]] = []
    truth_keep = np.ones(len(cust))
    for s in range(len(STEPS)):
        settle, reminders, keep = dunning_step(s, c, cust, due, settle, disputes, rng)
        sent.append(reminders)
        truth_keep *= keep
    return settle, {key: np.concatenate([part[key] for part in sent]) for key in sent[0]}, truth_keep
