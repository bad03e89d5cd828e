"""The per-invoice simulation of one block of customers, as named steps in the order they draw from the generator.

1. :func:`draw_amounts_and_due`: amount (cents) and due date (terms, end-of-month terms).
2. :func:`draw_base_delay`: base days late ``D`` (on time, or lognormal late) and write-offs.
3. :func:`draw_disputes`: 2 % disputed, payment held until resolution.
4. :func:`draw_credit_notes`: half of the disputes end with one, plus ~2.5 % commercial gestures.
5. :func:`base_settle_day`: when the invoice would be settled without dunning (insolvency, batch run days).
6. :func:`relance.demo.dunning.run_dunning`: the legacy reminders; an answer 'paid' brings the settle day forward.
7. :func:`reconcile`: credit notes and disputes consistent with the final settle day; what is left to pay.
8. :func:`p_unpaid_30d` and :func:`~relance.demo.behaviour.channel_effects`: the ground truth (no draws).
9. :func:`draw_payment_lines`: one payment per invoice, two instalments for some.

Each step is a pure function of its inputs and the generator, so a test can run one on a few invoices;
:func:`simulate_invoices` runs them in this order, which is what makes a seed give the same block, draw for draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from relance.demo.behaviour import SEASON_DELAY, SEASON_ON_TIME, channel_effects, delay_cdf, sigmoid
from relance.demo.customers import Customers
from relance.demo.days import NEVER, end_of_month, last_run_day, month, next_run_day
from relance.demo.dunning import run_dunning
from relance.demo.reference import (
    DISPUTE_REASONS,
    REGION_NAMES,
    REGIONS,
    SECTION_LETTERS,
    SECTIONS,
    SIZE_BANDS,
    SIZE_NAMES,
)


@dataclass(frozen=True)
class BaseDelay:
    """The base days-late draw and the parameters of its distribution (kept for the closed-form truth)."""

    p_on: np.ndarray  # P(on time)
    mu: np.ndarray  # lognormal location of the days late when late
    sigma: np.ndarray
    days_late: np.ndarray  # D, before disputes and dunning
    p_writeoff: np.ndarray
    written_off: np.ndarray


@dataclass(frozen=True)
class Disputes:
    disputed: np.ndarray
    opened: np.ndarray  # day numbers (drawn for every invoice; meaningful where disputed)
    resolved: np.ndarray
    release: np.ndarray  # first day payment may happen: a few days after resolution, -NEVER when not disputed
    reason: np.ndarray  # index into DISPUTE_REASONS


@dataclass(frozen=True)
class CreditNotes:
    from_dispute: np.ndarray
    gesture: np.ndarray  # a commercial gesture, not linked to a dispute
    day: np.ndarray
    full: np.ndarray  # credits the whole invoice
    cents: np.ndarray

    @property
    def drawn(self) -> np.ndarray:
        """Invoices drawn to get a credit note (before :func:`reconcile` drops those after the settle day)."""
        return self.from_dispute | self.gesture


@dataclass(frozen=True)
class Outcome:
    """The invoice's end state once dunning is over."""

    has_credit_note: np.ndarray
    paid_by_credit_note: np.ndarray
    disputed: np.ndarray
    net_cents: np.ndarray  # what remains to pay after the credit note


def draw_amounts_and_due(
    c: Customers, cust: np.ndarray, issue: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(amount in cents, terms in days, due day): lognormal amounts around a size median, due after the terms."""
    n = len(cust)
    is_b2b, size = c.is_b2b[cust], c.size[cust]
    med_amount = np.array([SIZE_BANDS[s][2] for s in SIZE_NAMES])
    median = np.where(is_b2b, med_amount[np.maximum(size, 0)], 180.0) * np.where(c.gbp[cust], 0.85, 1.0)
    euros = median * np.exp(rng.normal(0.0, 1.0, n) * np.where(is_b2b, 0.9, 0.7))
    amount = np.maximum(np.round(euros * 100.0), 1000).astype(np.int64)
    terms = c.terms[cust].astype(np.int64)
    due = np.where(c.eom[cust], end_of_month(issue), issue) + terms
    return amount, terms, due


def draw_base_delay(c: Customers, cust: np.ndarray, due: np.ndarray, rng: np.random.Generator) -> BaseDelay:
    """On time (uniform -12..0) with P = sigmoid(segment + season - z), else lognormal with median sector x size x
    region x season x exp(0.8 z); a write-off probability growing with z."""
    n = len(cust)
    is_b2b, sec, size, reg = c.is_b2b[cust], c.section[cust], c.size[cust], c.region[cust]
    z_due = c.z_at(cust, due)
    due_month = month(due)
    season = np.ones(n)
    season_on = np.zeros(n)
    for m, mult in SEASON_DELAY.items():
        season[due_month == m] = mult
    for m, adj in SEASON_ON_TIME.items():
        season_on[due_month == m] = adj
    sect_mean = np.array([SECTIONS[s][1] for s in SECTION_LETTERS])
    sect_on = np.array([SECTIONS[s][2] for s in SECTION_LETTERS])
    size_mult = np.array([SIZE_BANDS[s][1] for s in SIZE_NAMES])
    region_mult = np.append(np.array([REGIONS[r][1] for r in REGION_NAMES]), 1.0)  # last: foreign
    late_median = (
        np.where(is_b2b, sect_mean[np.maximum(sec, 0)] * 0.6 * size_mult[np.maximum(size, 0)], 7.0)
        * region_mult[reg]
        * season
        * np.exp(0.8 * z_due)
    )
    mu = np.log(late_median)
    sigma = np.where(is_b2b, 1.0, 0.9)
    p_on = sigmoid(np.where(is_b2b, sect_on[np.maximum(sec, 0)], 0.6) + season_on - 1.0 * z_due)
    on_time = rng.random(n) < p_on
    late_days = np.ceil(np.exp(mu + sigma * rng.normal(0.0, 1.0, n)))
    base_late = np.where(on_time, rng.integers(-12, 1, n), np.clip(late_days, 1, 2000)).astype(np.int64)
    p_writeoff = np.minimum(0.004 * np.exp(z_due), 0.2)
    written_off = rng.random(n) < p_writeoff
    return BaseDelay(p_on, mu, sigma, base_late, p_writeoff, written_off)


def draw_disputes(issue: np.ndarray, rng: np.random.Generator) -> Disputes:
    """2 % of invoices disputed 5-45 days after issue, resolved within 7-90 days (12 %: 150-400)."""
    n = len(issue)
    disputed = rng.random(n) < 0.02
    opened = issue + rng.integers(5, 46, n)
    long_dispute = rng.random(n) < 0.12
    duration = np.where(long_dispute, rng.integers(150, 401, n), rng.integers(7, 91, n))
    resolved = opened + duration
    release = np.where(disputed, resolved + rng.integers(1, 16, n), -NEVER)
    reason = rng.integers(0, len(DISPUTE_REASONS), n)
    return Disputes(disputed, opened, resolved, release, reason)


def draw_credit_notes(
    disputes: Disputes, issue: np.ndarray, amount: np.ndarray, rng: np.random.Generator
) -> CreditNotes:
    """Half of the disputes end with a credit note on resolution; ~2.5 % of other invoices get one 3-40 days
    after issue. A quarter credit the whole amount, the others 10-50 %."""
    n = len(issue)
    from_dispute = disputes.disputed & (rng.random(n) < 0.5)
    gesture = ~from_dispute & (rng.random(n) < 0.025)
    day = np.where(from_dispute, disputes.resolved, issue + rng.integers(3, 41, n))
    full = rng.random(n) < 0.25
    cents = np.where(full, amount, np.round(amount * rng.uniform(0.1, 0.5, n)).astype(np.int64))
    return CreditNotes(from_dispute, gesture, day, full, cents)


def base_settle_day(
    c: Customers,
    cust: np.ndarray,
    due: np.ndarray,
    delay: BaseDelay,
    disputes: Disputes,
    notes: CreditNotes,
    rng: np.random.Generator,
) -> np.ndarray:
    """Settle day before dunning: due + D, not before a dispute's release; never for write-offs and 90 % of what is
    still unpaid at an insolvency judgment; batch payers on their next run day; a full credit note if earlier."""
    n = len(cust)
    base = np.maximum(due + delay.days_late, disputes.release)
    lost_in_insolvency = (base > c.insolvency_day[cust]) & (rng.random(n) < 0.9)
    never = delay.written_off | lost_in_insolvency
    settle = np.where(never, NEVER, np.where(c.batch[cust], next_run_day(base), base))
    return np.where(notes.drawn & notes.full & (notes.day < settle), notes.day, settle)


def reconcile(amount: np.ndarray, settle: np.ndarray, disputes: Disputes, notes: CreditNotes) -> Outcome:
    """A credit note only if issued by the (final) settle day, a dispute only if opened before it; what remains to
    pay is the amount net of the credit note."""
    has_cn = notes.drawn & (notes.day <= settle)
    paid_by_cn = has_cn & notes.full & (notes.day == settle)
    disputed = disputes.disputed & (disputes.opened < settle)
    net = amount - np.where(has_cn, notes.cents, 0)
    return Outcome(has_cn, paid_by_cn, disputed, net)


def p_unpaid_30d(
    c: Customers,
    cust: np.ndarray,
    due: np.ndarray,
    delay: BaseDelay,
    disputes: Disputes,
    notes: CreditNotes,
    truth_keep: np.ndarray,
) -> np.ndarray:
    """P(settle day > due + 30) in closed form: P(base not settled by then) x prod of the early steps' factors."""
    ins_day = c.insolvency_day[cust]
    check_day = due + 30
    run_day = np.where(c.batch[cust], last_run_day(check_day), check_day)
    k = (run_day - due).astype(float)
    release_rel = (disputes.release - due).astype(float)

    def released_cdf(x: np.ndarray) -> np.ndarray:
        return delay_cdf(x, delay.p_on, delay.mu, delay.sigma) * (release_rel <= x)

    k_ins = np.minimum((ins_day - due).astype(float), k)
    p_base_paid = np.where(
        ins_day < run_day,
        released_cdf(k_ins) + 0.1 * (released_cdf(k) - released_cdf(k_ins)),
        released_cdf(k),
    ) * (1.0 - delay.p_writeoff)
    full_cn_in_time = notes.drawn & notes.full & (notes.day <= check_day)
    return np.where(full_cn_in_time, 0.0, (1.0 - p_base_paid) * truth_keep)


def draw_payment_lines(
    c: Customers,
    cust: np.ndarray,
    issue: np.ndarray,
    settle: np.ndarray,
    outcome: Outcome,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(invoice, day, cents) of every payment line: the net amount on the settle day, or two instalments (10 % of
    invoices of 500.00 or more paid 20+ days after issue, not batch payers). Nothing for a full credit note."""
    n = len(cust)
    net = outcome.net_cents
    pays = (settle < NEVER) & ~outcome.paid_by_credit_note
    split = pays & ~c.batch[cust] & (rng.random(n) < 0.10) & (settle - issue >= 20) & (net >= 50_000)
    first_day = np.clip(settle - rng.integers(7, 32, n), issue + 1, settle - 1)
    first_cents = np.round(net * rng.uniform(0.3, 0.7, n)).astype(np.int64)
    i_full, i_split = np.flatnonzero(pays & ~split), np.flatnonzero(split)
    line_inv = np.concatenate([i_full, i_split, i_split])
    line_day = np.concatenate([settle[i_full], first_day[i_split], settle[i_split]])
    line_cents = np.concatenate([net[i_full], first_cents[i_split], net[i_split] - first_cents[i_split]])
    return line_inv, line_day, line_cents


@dataclass(frozen=True)
class SimulatedInvoices:
    """One block's invoices (ordered by issue day, then customer) and everything that happens to them."""

    cust: np.ndarray  # customer index
    issue: np.ndarray  # day numbers
    amount: np.ndarray  # cents
    terms: np.ndarray
    due: np.ndarray
    settle: np.ndarray  # settle day, NEVER if never (may be after end_date)
    delay: BaseDelay
    disputes: Disputes
    notes: CreditNotes
    outcome: Outcome
    reminders: dict[str, np.ndarray]  # every reminder sent, by key (inv, sent, channel, tone, response...)
    p_unpaid: np.ndarray
    effects: dict[str, np.ndarray]
    payment_lines: tuple[np.ndarray, np.ndarray, np.ndarray]  # (invoice, day, cents)


def simulate_invoices(c: Customers, cust: np.ndarray, issue: np.ndarray, rng: np.random.Generator) -> SimulatedInvoices:
    """Run the steps, in order, on the invoices of one block of customers."""
    order = np.lexsort((cust, issue))
    cust, issue = cust[order].astype(np.int64), issue[order].astype(np.int64)
    amount, terms, due = draw_amounts_and_due(c, cust, issue, rng)
    delay = draw_base_delay(c, cust, due, rng)
    disputes = draw_disputes(issue, rng)
    notes = draw_credit_notes(disputes, issue, amount, rng)
    settle = base_settle_day(c, cust, due, delay, disputes, notes, rng)
    dispute_days = (disputes.disputed, disputes.opened, disputes.resolved)
    settle, reminders, truth_keep = run_dunning(c, cust, due, settle, dispute_days, rng)
    outcome = reconcile(amount, settle, disputes, notes)
    p_unpaid = p_unpaid_30d(c, cust, due, delay, disputes, notes, truth_keep)
    payment_lines = draw_payment_lines(c, cust, issue, settle, outcome, rng)
    return SimulatedInvoices(
        cust=cust,
        issue=issue,
        amount=amount,
        terms=terms,
        due=due,
        settle=settle,
        delay=delay,
        disputes=disputes,
        notes=notes,
        outcome=outcome,
        reminders=reminders,
        p_unpaid=p_unpaid,
        effects=channel_effects(c, cust, due),
        payment_lines=payment_lines,
    )
