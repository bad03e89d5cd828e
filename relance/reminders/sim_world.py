"""The world ``relance simulate`` runs in: the demo generator's customers and invoices, a warm-up under the legacy
dunning process, and every random draw of the window made once, so that both arms live in the same world.

What is shared by the two arms (common random numbers): the customers, the invoices (amounts, due dates, base
delay, disputes, credit notes), the settle day each invoice would have with no reminder after the window opens
(:attr:`World.settle0`: the generator's base settle day, brought forward by the warm-up's legacy reminders), and
the per (customer, window day) draws that decide how a customer answers a contact on that day
(:class:`Draws`). The arms differ only in the contacts they make.

Warm-up: the generator's legacy process (:func:`relance.demo.dunning.run_dunning`: preventive e-mail, +7, +21,
+45, +75 on segment-dependent channels) runs on every invoice but may send only before the window's first day:
it is run on a copy of the customers whose insolvency day is capped at the window start, which is exactly the
generator's own "no reminder from that day on" condition. Its reminders are the history the engine and the
response model start from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, timedelta

import holidays
import numpy as np

from relance.demo.customers import Customers, make_customers
from relance.demo.days import EPOCH, NEVER, day_number, month_start_months_before
from relance.demo.dunning import run_dunning
from relance.demo.issuing import allocate_invoices, draw_issue_days
from relance.demo.reference import SECTION_LETTERS, SIZE_NAMES
from relance.demo.simulate import (
    base_settle_day,
    draw_amounts_and_due,
    draw_base_delay,
    draw_credit_notes,
    draw_disputes,
)

#: GBP amounts are converted at this rate for the figures (the generator draws GBP amounts at 0.85 x the EUR
#: median, i.e. it prices 1 GBP at 1/0.85 EUR).
GBP_TO_EUR = 1.0 / 0.85
#: Share of customers whose e-mail address stops working when the window opens (the accountant left): every
#: e-mail to them bounces, and a bounce is visible the next day.
BAD_EMAIL_SHARE = 0.03
#: The collective procedure is known (BODACC publication) this many days after the judgment.
PROCEDURE_KNOWN_AFTER_DAYS = 7


@dataclass(frozen=True)
class Draws:
    """Per (customer, window day) draws, shape (customers, days): how a customer answers what it gets that day.

    ``u``: the response uniform (invoice i contacted that day is paid if u < p_i: several messages on one day do
    not multiply the chance); ``lag``: days until the payment arrives (1-7); ``promise_days``: how far ahead a
    promise is dated (3-14); ``keep_u``: kept if below P(keep); ``keep_gap``: a kept promise is paid 0-3 days
    before its date; ``call_u``: outcome of an unanswered call (reached, voicemail, no answer); ``open_u``: an
    e-mail is opened if below :data:`P_OPEN`.
    """

    u: np.ndarray
    lag: np.ndarray
    promise_days: np.ndarray
    keep_u: np.ndarray
    keep_gap: np.ndarray
    call_u: np.ndarray
    open_u: np.ndarray


@dataclass(frozen=True)
class World:
    """Customers, invoices (parallel arrays ordered by issue day then customer) and the shared draws."""

    c: Customers
    warm_start: int  # day numbers
    start: int
    end: int
    run_days: np.ndarray  # the window's business days (weekdays, not French public holidays)
    customer_ids: np.ndarray  # object arrays, index = customer
    customer_type: np.ndarray
    sector: np.ndarray
    size_band: np.ndarray
    country: np.ndarray
    currency: np.ndarray
    language: np.ndarray
    bad_email: np.ndarray
    known_insolvency_day: np.ndarray
    # invoices
    invoice_ids: np.ndarray
    cust: np.ndarray
    issue: np.ndarray
    due: np.ndarray
    amount: np.ndarray  # cents, invoice currency
    cn_drawn: np.ndarray
    cn_full: np.ndarray
    cn_day: np.ndarray
    cn_cents: np.ndarray
    disputed: np.ndarray
    dispute_opened: np.ndarray
    dispute_resolved: np.ndarray
    release: np.ndarray  # first day a disputed invoice may be paid (-NEVER when not disputed)
    base_settle: np.ndarray  # the generator's settle day with no dunning at all
    settle0: np.ndarray  # after the warm-up's legacy reminders: what happens with no contact in the window
    eur: np.ndarray  # EUR per unit of the invoice's currency
    legacy: dict[str, np.ndarray]  # the warm-up's reminders (generator keys: inv, sent, channel, tone, response...)
    draws: Draws

    @property
    def n_customers(self) -> int:
        return self.c.n

    @property
    def n_invoices(self) -> int:
        return len(self.cust)

    def day_index(self, day: int) -> int:
        return day - self.start

    def z(self, inv: np.ndarray, day: int | np.ndarray) -> np.ndarray:
        """The hidden propensity of the invoices' customers on a day (ground truth: the response model only)."""
        days = np.broadcast_to(np.asarray(day, dtype=np.int64), inv.shape)
        return self.c.z_at(self.cust[inv], days)

    def open_cents(self, inv: np.ndarray, day: int | np.ndarray) -> np.ndarray:
        """What is still due on ``day`` (before that day's payments): the amount net of a credit note issued
        before it."""
        credited = self.cn_drawn[inv] & (self.cn_day[inv] < day)
        return self.amount[inv] - np.where(credited, self.cn_cents[inv], 0)


def to_date(day: int) -> date:
    return EPOCH + timedelta(days=int(day))


def business_days(start: int, end: int) -> np.ndarray:
    """Weekdays between two day numbers (inclusive) that are not French public holidays."""
    days = np.arange(start, end + 1)
    years = range(to_date(start).year, to_date(end).year + 1)
    closed = {day_number(d) for d in holidays.France(years=years)}
    weekday = (days + 3) % 7 < 5  # 1970-01-01 was a Thursday
    return days[weekday & ~np.isin(days, list(closed))]


def build_world(*, n_customers: int, n_invoices: int, start: date, days: int, warmup_months: int, seed: int) -> World:
    """Draw the world: customers active from ``warmup_months`` before ``start`` to the window's end, their
    invoices, the legacy warm-up, and the window's draws. Same arguments, same world."""

    def rng_for(*key: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(12, *key)))

    s = day_number(start)
    e = s + days - 1
    w = day_number(month_start_months_before(start, warmup_months + 1))
    c = make_customers(n_customers, w, e, rng_for(0))
    issuing = allocate_invoices(c, n_invoices, w, e, rng_for(1))
    cust, issue = draw_issue_days(issuing, w, e, rng_for(2))
    order = np.lexsort((cust, issue))
    cust, issue = cust[order].astype(np.int64), issue[order].astype(np.int64)

    rng = rng_for(3)
    amount, _, due = draw_amounts_and_due(c, cust, issue, rng)
    delay = draw_base_delay(c, cust, due, rng)
    disputes = draw_disputes(issue, rng)
    notes = draw_credit_notes(disputes, issue, amount, rng)
    base = base_settle_day(c, cust, due, delay, disputes, notes, rng)
    # the legacy process sends only before the window opens: the generator stops reminders at an insolvency
    # judgment, so capping that day at the window start is its own stopping rule
    c_warm = dataclasses.replace(c, insolvency_day=np.minimum(c.insolvency_day, s))
    dispute_days = (disputes.disputed, disputes.opened, disputes.resolved)
    settle0, legacy, _ = run_dunning(c_warm, cust, due, base.copy(), dispute_days, rng_for(4))

    n_days = days
    d = rng_for(5)
    shape = (n_customers, n_days)
    draws = Draws(
        u=d.random(shape),
        lag=d.integers(1, 8, shape),
        promise_days=d.integers(3, 15, shape),
        keep_u=d.random(shape),
        keep_gap=d.integers(0, 4, shape),
        call_u=d.random(shape),
        open_u=d.random(shape),
    )
    bad_email = rng_for(6).random(n_customers) < BAD_EMAIL_SHARE

    idx = np.arange(n_customers)
    is_b2b = c.is_b2b
    country = np.where(c.is_gb, "GB", "FR").astype(object)
    sector = np.array([SECTION_LETTERS[i] if i >= 0 else None for i in c.section], dtype=object)
    size_band = np.array([SIZE_NAMES[i] if i >= 0 else None for i in c.size], dtype=object)
    return World(
        c=c,
        warm_start=w,
        start=s,
        end=e,
        run_days=business_days(s, e),
        customer_ids=np.array([f"C{i + 1:06d}" for i in idx], dtype=object),
        customer_type=np.where(is_b2b, "B2B", "B2C").astype(object),
        sector=sector,
        size_band=size_band,
        country=country,
        currency=np.where(c.gbp, "GBP", "EUR").astype(object),
        language=np.where(c.is_gb, "en", "fr").astype(object),
        bad_email=bad_email,
        known_insolvency_day=np.where(c.insolvency_day < NEVER, c.insolvency_day + PROCEDURE_KNOWN_AFTER_DAYS, NEVER),
        invoice_ids=np.array([f"INV-{i + 1:07d}" for i in range(len(cust))], dtype=object),
        cust=cust,
        issue=issue,
        due=due,
        amount=amount,
        cn_drawn=notes.drawn,
        cn_full=notes.full,
        cn_day=notes.day,
        cn_cents=notes.cents,
        disputed=disputes.disputed,
        dispute_opened=disputes.opened,
        dispute_resolved=disputes.resolved,
        release=disputes.release,
        base_settle=base,
        settle0=settle0,
        eur=np.where(c.gbp[cust], GBP_TO_EUR, 1.0),
        legacy=legacy,
        draws=draws,
    )
