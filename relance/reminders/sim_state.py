"""One arm of ``relance simulate``: what has happened so far (contacts, answers, promises, payments), how the
generator's hidden response model answers a day's contacts, and the frames the engine reads, built from that
state as of a day and nothing later.

The frames have the columns of the warehouse relations they stand in for: :meth:`ArmState.worklist` for
``serving.collection_worklist``, :meth:`ArmState.contact_state` for ``serving.customer_contact_state``,
:meth:`ArmState.response_history` for ``serving.reminder_response_history``. Everything is vectorised over
invoices and customers; the only Python loops are over a day's messages when they are turned into rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from relance.demo.behaviour import PROMISE_P, response_p, sigmoid
from relance.demo.days import NEVER, SECONDS_PER_DAY
from relance.demo.reference import CHANNELS, TONES
from relance.reminders.sim_world import World, to_date

#: P(an e-mail that reached its recipient is opened): the open is an 'open' event the next day reads.
P_OPEN = 0.45
#: A promise is kept with P = sigmoid(KEEP_BIAS - z): about 60 % for an average payer, less for a late one.
KEEP_BIAS = 0.5
#: Call outcomes when the call was not answered by a payment or a promise: reached, voicemail, no answer.
CALL_OUTCOME_CUTS = (0.45, 0.80)
PROMISE_GRACE_DAYS = 3  # dbt var promise_grace_days
P_LATE_TARGET = "unpaid_30d_after_due"
P_LATE_SHRINK = 5.0  # pseudo-invoices of the segment's rate in a customer's late rate
RISK_GRADE_CUTS = (0.15, 0.30, 0.50, 0.70)  # A < 0.15 <= B < 0.30 <= C < 0.50 <= D < 0.70 <= E
PARIS = ZoneInfo("Europe/Paris")
RUN_TIME = time(9, 0)  # the daily run sends at 09:00 Paris time
CALL_TIME = time(10, 30)  # negotiators call from the call list mid-morning
CHANNEL_INDEX = {name: i for i, name in enumerate(CHANNELS)}
FIRM_TONES = ("firm", "formal_notice")  # the hidden model knows 'firm'; a formal notice answers at least as well


def moment(day: int, at: time) -> int:
    """Seconds since the epoch (UTC) of a Paris wall-clock time on a day number."""
    local = datetime.combine(to_date(day), at, tzinfo=PARIS)
    return int(local.astimezone(UTC).timestamp())


@dataclass
class Messages:
    """A day's delivered messages (one row each) and the invoices each covers (one row per message x invoice)."""

    cust: np.ndarray
    channel: np.ndarray  # index into CHANNELS
    tone: np.ndarray  # object: tone names
    at: np.ndarray  # delivery moment, seconds UTC
    step: np.ndarray  # object
    row_msg: np.ndarray  # per covered invoice: message index
    row_inv: np.ndarray

    @classmethod
    def empty(cls) -> Messages:
        e = np.zeros(0, dtype=np.int64)
        return cls(e, e, np.zeros(0, dtype=object), e, np.zeros(0, dtype=object), e, e)

    def __len__(self) -> int:
        return len(self.cust)


@dataclass
class _Log:
    """Append-only columns, concatenated on demand."""

    chunks: dict[str, list[np.ndarray]] = field(default_factory=dict)
    _cache: dict[str, np.ndarray] | None = None

    def append(self, **cols: np.ndarray) -> None:
        for k, v in cols.items():
            self.chunks.setdefault(k, []).append(np.asarray(v))
        self._cache = None

    def cols(self) -> dict[str, np.ndarray]:
        if self._cache is None:
            self._cache = {k: np.concatenate(v) for k, v in self.chunks.items()}
        return self._cache

    def __len__(self) -> int:
        chunks = next(iter(self.chunks.values()), [])
        return int(sum(len(c) for c in chunks))


class ArmState:
    """Everything that happened in one arm: starts from the warm-up (shared) and diverges with the contacts."""

    def __init__(self, world: World, name: str):
        self.world = world
        self.name = name
        self.settle = world.settle0.copy()
        self.prior = np.zeros(world.n_invoices, dtype=np.int64)  # contacts so far on each invoice
        # contacts: one row per message; rows: one per (message, invoice)
        self.contacts = _Log()
        self.rows = _Log()
        self.promises = _Log()
        self.n_window_contacts = 0
        self._load_legacy()

    # --- the warm-up's history ------------------------------------------------------------------------------
    def _load_legacy(self) -> None:
        w, lg = self.world, self.world.legacy
        inv = lg["inv"].astype(np.int64)
        order = np.lexsort((inv, lg["sent"]))
        inv, sent = inv[order], lg["sent"][order].astype(np.int64)
        channel, tone = lg["channel"][order].astype(np.int64), np.asarray(TONES, dtype=object)[lg["tone"][order]]
        day = sent // SECONDS_PER_DAY
        n = len(inv)
        # prior contacts on the invoice: rank of the reminder among the invoice's reminders
        prior = np.zeros(n, dtype=np.int64)
        by_inv = np.lexsort((sent, inv))
        first = np.r_[True, inv[by_inv][1:] != inv[by_inv][:-1]]
        run_start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
        prior[by_inv] = np.arange(n) - run_start
        np.add.at(self.prior, inv, 1)
        self.contacts.append(
            cust=w.cust[inv],
            day=day,
            at=sent,
            channel=channel,
            tone=tone,
            step=np.full(n, "legacy", dtype=object),
            source=np.full(n, "legacy", dtype=object),
            window=np.zeros(n, dtype=bool),
            bounced=np.zeros(n, dtype=bool),
            opened=np.zeros(n, dtype=bool),
            call_outcome=np.full(n, None, dtype=object),
        )
        self.rows.append(
            msg=np.arange(n),
            inv=inv,
            overdue=day - w.due[inv],
            open_cents=w.open_cents(inv, day),
            prior=prior,
        )
        promised = lg["response"][order] == 1
        p_idx = np.flatnonzero(promised)
        self.promises.append(
            cust=w.cust[inv[p_idx]],
            made=(lg["responded"][order][p_idx] // SECONDS_PER_DAY).astype(np.int64),
            until=lg["promised"][order][p_idx].astype(np.int64),
            cents=self.rows.cols()["open_cents"][p_idx],
            source=np.full(len(p_idx), "reminder", dtype=object),
        )

    # --- what is known as of a day -------------------------------------------------------------------------
    def open_mask(self, day: int) -> np.ndarray:
        """Invoices on the books and unpaid on the morning of ``day`` (issued before it, settled on or after)."""
        w = self.world
        return (w.issue < day) & (self.settle >= day)

    def paid_by_credit_note(self) -> np.ndarray:
        w = self.world
        return w.cn_drawn & w.cn_full & (w.cn_day <= self.settle)

    def net_cents(self) -> np.ndarray:
        """What the customer pays (the amount net of a credit note issued by the settle day)."""
        w = self.world
        return w.amount - np.where(w.cn_drawn & (w.cn_day <= self.settle), w.cn_cents, 0)

    def late_rate(self, day: int) -> np.ndarray:
        """Each customer's share of invoices unpaid 30 days after due, among those whose label is known on
        ``day`` (due + 30 < day), shrunk towards its segment's (customer type x sector) rate, itself shrunk
        towards the book's. Known facts only: no ground truth."""
        w = self.world
        known = w.due + 30 < day
        late = (self.settle > w.due + 30) & known
        n_c = np.bincount(w.cust[known], minlength=w.n_customers).astype(float)
        k_c = np.bincount(w.cust[late], minlength=w.n_customers).astype(float)
        overall = (k_c.sum() + 1.0) / (n_c.sum() + 2.0)
        seg = _segment_codes(w)
        n_s = np.bincount(seg, weights=n_c)
        k_s = np.bincount(seg, weights=k_c)
        seg_rate = (k_s + P_LATE_SHRINK * overall) / (n_s + P_LATE_SHRINK)
        return (k_c + P_LATE_SHRINK * seg_rate[seg]) / (n_c + P_LATE_SHRINK)

    def worklist(self, day: int) -> pd.DataFrame:
        """``serving.collection_worklist`` on ``day``: one row per open invoice, with an honest p_late (the
        customer's known late rate; 1.0 once an invoice is more than 30 days overdue, which is then a fact)."""
        w = self.world
        inv = np.flatnonzero(self.open_mask(day))
        open_cents = w.open_cents(inv, day)
        keep = open_cents > 0
        inv, open_cents = inv[keep], open_cents[keep]
        cust = w.cust[inv]
        overdue = day - w.due[inv]
        rate = self.late_rate(day)
        p_late = np.where(overdue > 30, 1.0, rate[cust])
        grade = np.asarray(list("ABCDE"), dtype=object)[np.searchsorted(RISK_GRADE_CUTS, rate[cust], side="right")]
        disputed = w.disputed[inv] & (w.dispute_opened[inv] < day) & (w.dispute_resolved[inv] >= day)
        bucket = np.select(
            [overdue <= 0, overdue <= 30, overdue <= 60, overdue <= 90], ["not_due", "1-30", "31-60", "61-90"], "90+"
        )
        return pd.DataFrame(
            {
                "invoice_id": w.invoice_ids[inv],
                "customer_id": w.customer_ids[cust],
                "customer_name": w.c.names[cust],
                "customer_type": w.customer_type[cust],
                "sector_section": w.sector[cust],
                "size_band": w.size_band[cust],
                "country_code": w.country[cust],
                "language": w.language[cust],
                "email": w.c.emails[cust],
                "phone": w.c.phones[cust],
                "currency": w.currency[cust],
                "amount": w.amount[inv] / 100.0,
                "open_amount": open_cents / 100.0,
                "issue_date": pd.to_datetime(w.issue[inv], unit="D").date,
                "due_date": pd.to_datetime(w.due[inv], unit="D").date,
                "days_overdue": overdue,
                "aging_bucket": bucket,
                "is_disputed": disputed,
                "p_late": p_late,
                "target_name": P_LATE_TARGET,
                "risk_grade": grade,
                "has_open_procedure": w.known_insolvency_day[cust] <= day,
                "reminder_count": self.prior[inv],
                "model_version": "simulation",
                "model_run_id": f"sim-{self.name}",
                "reason_1": None,
                "reason_2": None,
                "reason_3": None,
                "predicted_payment_date": None,
                "predicted_payment_date_p10": None,
                "predicted_payment_date_p90": None,
                "_inv": inv,
            }
        )

    def _payments_before(self, day: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(customer, day, cents) of every payment booked before ``day``, sorted by customer then day."""
        w = self.world
        paid = (self.settle < day) & ~self.paid_by_credit_note()
        inv = np.flatnonzero(paid)
        cust, pday, cents = w.cust[inv], self.settle[inv], self.net_cents()[inv]
        order = np.lexsort((pday, cust))
        return cust[order], pday[order], cents[order]

    def promise_status(self, day: int) -> dict[str, np.ndarray]:
        """Every promise made before ``day``: its status then ('kept', 'active', 'broken'), by the dbt rules."""
        p = self.promises.cols()
        made = p["made"] < day
        pc, pmade, puntil, pcents = p["cust"][made], p["made"][made], p["until"][made], p["cents"][made]
        cust, pday, cents = self._payments_before(day)
        key = cust * (4 * NEVER) + pday
        cum = np.r_[0, np.cumsum(cents)]
        hi_day = np.minimum(puntil + PROMISE_GRACE_DAYS, day - 1)
        hi = np.searchsorted(key, pc * (4 * NEVER) + hi_day, side="right")
        lo = np.searchsorted(key, pc * (4 * NEVER) + pmade, side="left")
        paid = np.where(hi > lo, cum[hi] - cum[lo], 0)
        kept = paid >= pcents
        active = ~kept & (puntil + PROMISE_GRACE_DAYS >= day)
        status = np.where(kept, "kept", np.where(active, "active", "broken")).astype(object)
        return {
            "cust": pc,
            "made": pmade,
            "until": puntil,
            "cents": pcents,
            "source": p["source"][made],
            "status": status,
        }

    def contact_state(self, day: int) -> pd.DataFrame:
        """``serving.customer_contact_state`` as of ``day``: one row per customer, from contacts, promises,
        payments, disputes and provider events known before that day."""
        w = self.world
        n = w.n_customers
        c = self.contacts.cols()
        before = c["day"] < day
        idx = np.flatnonzero(before)
        order = idx[np.lexsort((c["at"][idx], c["cust"][idx]))]
        last = np.full(n, -1, dtype=np.int64)
        last[c["cust"][order]] = order  # the latest contact of each customer (sorted ascending, last write wins)
        has = last >= 0
        li = np.where(has, last, 0)
        last_at = np.where(has, c["at"][li], -1)
        last_day = np.where(has, c["day"][li], -1)
        last_channel = np.where(has, np.asarray(CHANNELS, dtype=object)[c["channel"][li]], None)
        recent = before & (c["day"] >= day - 7)
        n7 = np.bincount(c["cust"][recent], minlength=n)
        opened_last = has & c["opened"][li] & (c["day"][li] < day)
        bounce = before & c["bounced"] & (c["day"] >= day - 180)
        bounced = np.bincount(c["cust"][bounce], minlength=n) > 0
        calls = before & (c["source"] == "call")
        ci = np.flatnonzero(calls)
        ci = ci[np.lexsort((c["at"][ci], c["cust"][ci]))]
        last_call = np.full(n, -1, dtype=np.int64)
        last_call[c["cust"][ci]] = ci
        hc = last_call >= 0
        lci = np.where(hc, last_call, 0)

        # payments, disputes, open overdue invoices
        pcust, pday, _ = self._payments_before(day)
        last_pay = np.full(n, -1, dtype=np.int64)
        np.maximum.at(last_pay, pcust, pday)
        paid_since = (last_pay >= 0) & has & (last_pay >= last_day)
        open_now = self.open_mask(day)
        overdue_open = np.bincount(w.cust[open_now & (w.due < day)], minlength=n) > 0
        disputed_now = open_now & w.disputed & (w.dispute_opened < day) & (w.dispute_resolved >= day)
        has_dispute = np.bincount(w.cust[disputed_now], minlength=n) > 0

        # promises: the latest made before the day, and the broken ones of the last 365 days
        ps = self.promise_status(day)
        porder = np.lexsort((ps["made"], ps["cust"]))
        latest = np.full(n, -1, dtype=np.int64)
        latest[ps["cust"][porder]] = porder
        hp = latest >= 0
        lp = np.where(hp, latest, 0)
        broken_recent = (ps["status"] == "broken") & (ps["made"] >= day - 365)
        broken_count = np.bincount(ps["cust"][broken_recent], minlength=n)

        def ts(seconds: np.ndarray, mask: np.ndarray) -> pd.Series:
            return pd.Series(pd.to_datetime(np.where(mask, seconds, 0), unit="s")).where(mask)

        def dt(days: np.ndarray, mask: np.ndarray) -> pd.Series:
            return pd.Series(pd.to_datetime(np.where(mask, days, 0), unit="D").date).where(mask)

        return pd.DataFrame(
            {
                "customer_id": w.customer_ids,
                "last_contact_at": ts(last_at, has),
                "last_contact_channel": last_channel,
                "contacts_last_7d": n7,
                "promise_made_at": ts(ps["made"][lp] * SECONDS_PER_DAY + 12 * 3600, hp),
                "promise_date": dt(ps["until"][lp], hp),
                "promise_amount": pd.Series(ps["cents"][lp] / 100.0).where(hp),
                "promise_source": pd.Series(ps["source"][lp]).where(hp),
                "promise_status": pd.Series(ps["status"][lp]).where(hp),
                "broken_promise_count": broken_count,
                "has_open_dispute": has_dispute,
                "last_payment_date": dt(last_pay, last_pay >= 0),
                "is_paid_since_last_contact": paid_since,
                "is_partial_payment_since_last_contact": paid_since & overdue_open,
                "is_opened_since_last_contact": opened_last,
                "bounced_channels": np.where(bounced, "email", None),
                "suppressed_channels": None,
                "last_call_outcome": pd.Series(c["call_outcome"][lci]).where(hc),
                "last_call_at": ts(c["at"][lci], hc),
            }
        )

    def response_history(self, day: int) -> pd.DataFrame:
        """``serving.reminder_response_history`` as of ``day``: one row per (contact, invoice) sent at least 14
        days before the as-of midnight, labelled paid within 14 days of the send (so known before the day)."""
        w = self.world
        c, r = self.contacts.cols(), self.rows.cols()
        msg = r["msg"]
        sent_day = c["day"][msg]
        keep = c["at"][msg] <= (day - 14) * SECONDS_PER_DAY  # sent_at <= as_of - 14 days, as in dbt
        msg, inv = msg[keep], r["inv"][keep]
        cust = c["cust"][msg]
        return pd.DataFrame(
            {
                "contact_id": msg,
                "source": c["source"][msg],
                "customer_id": w.customer_ids[cust],
                "invoice_id": w.invoice_ids[inv],
                "sent_at": pd.to_datetime(c["at"][msg], unit="s"),
                "channel": np.asarray(CHANNELS, dtype=object)[c["channel"][msg]],
                "tone": c["tone"][msg],
                "days_overdue_at_send": r["overdue"][keep],
                "amount": r["open_cents"][keep] / 100.0,
                "customer_type": w.customer_type[cust],
                "sector_section": w.sector[cust],
                "size_band": w.size_band[cust],
                "country_code": w.country[cust],
                "prior_contacts": r["prior"][keep],
                "is_paid_within_14d": self.settle[inv] <= sent_day[keep] + 14,
            }
        )

    # --- a day's contacts and how the customers answer them -------------------------------------------------
    def deliver(self, day: int, msgs: Messages) -> dict[str, int]:
        """Record a day's delivered messages and apply the hidden response model; returns counts of answers.

        One uniform per customer and day (``Draws.u``): invoice i covered by any message that day is paid if
        u < p_i, where p_i is the generator's :func:`~relance.demo.behaviour.response_p` for that message's
        channel, tone and the invoice's days overdue, so several messages on one day do not multiply the chance.
        The payment arrives 1-7 days later (never before a dispute's release, never after the day it would have
        come anyway). Otherwise, below p_max + PROMISE_P[channel of p_max], a promise covering the customer's
        contacted overdue invoices, dated 3-14 days ahead, kept with P = sigmoid(KEEP_BIAS - z) (then paid 0-3
        days before its date), else broken. Nothing answers an e-mail to a dead address or a contact after an
        insolvency judgment.
        """
        w, dr = self.world, self.world.draws
        k = w.day_index(day)
        n_msg = len(msgs)
        if n_msg == 0:
            return {"paid_invoices": 0, "promises": 0}
        # rows, with a reachable flag per message
        cust_m = msgs.cust
        dead = (msgs.channel == CHANNEL_INDEX["email"]) & w.bad_email[cust_m]
        reachable = ~dead & (day < w.c.insolvency_day[cust_m])
        inv = msgs.row_inv
        m = msgs.row_msg
        cust = w.cust[inv]
        overdue = day - w.due[inv]
        z = w.z(inv, day)
        ch = msgs.channel[m]
        p = response_p(ch, w.c, cust, overdue, z, "cordial")
        firm = np.isin(msgs.tone[m], FIRM_TONES)
        p_firm = response_p(ch, w.c, cust, overdue, z, "firm")
        p = np.where(firm, p_firm, p)
        live = reachable[m] & (self.settle[inv] > day)
        p = np.where(live, p, 0.0)
        u = dr.u[cust, k]
        paid = u < p
        pay_day = np.maximum(day + dr.lag[cust, k], w.release[inv])
        self.settle[inv[paid]] = np.minimum(self.settle[inv[paid]], pay_day[paid])

        # per customer: any payment, the best p and its channel -> a promise
        n = w.n_customers
        any_paid = np.bincount(cust[paid], minlength=n) > 0
        pmax = np.zeros(n)
        np.maximum.at(pmax, cust, p)
        best_ch = np.zeros(n, dtype=np.int64)
        is_best = (p == pmax[cust]) & live
        best_ch[cust[is_best]] = ch[is_best]
        overdue_live = np.bincount(cust[live & (overdue > 0)], minlength=n) > 0
        u_c = dr.u[:, k]
        promise_c = ~any_paid & overdue_live & (u_c >= pmax) & (u_c < pmax + PROMISE_P[best_ch])
        covered = promise_c[cust] & live & (overdue > 0) & ~paid
        promisers = np.flatnonzero(promise_c)
        if len(promisers):
            until = day + dr.promise_days[promisers, k]
            cents = np.bincount(cust[covered], weights=w.open_cents(inv[covered], day), minlength=n)[promisers]
            by_call = np.zeros(n, dtype=bool)
            by_call[msgs.cust[msgs.channel == CHANNEL_INDEX["call"]]] = True
            self.promises.append(
                cust=promisers,
                made=np.full(len(promisers), day, dtype=np.int64),
                until=until.astype(np.int64),
                cents=np.round(cents).astype(np.int64),
                source=np.where(by_call[promisers], "call", "reminder").astype(object),
            )
            zc = w.c.z_at(promisers, np.full(len(promisers), day))
            kept_c = np.zeros(n, dtype=bool)
            kept_c[promisers] = dr.keep_u[promisers, k] < sigmoid(KEEP_BIAS - zc)
            until_c = np.zeros(n, dtype=np.int64)
            until_c[promisers] = until
            kept_rows = covered & kept_c[cust]
            ki = inv[kept_rows]
            kc = cust[kept_rows]
            kday = np.maximum(np.maximum(until_c[kc] - dr.keep_gap[kc, k], day + 1), w.release[ki])
            self.settle[ki] = np.minimum(self.settle[ki], kday)

        # the messages themselves: opens, bounces, call outcomes
        opened = ~dead & (msgs.channel == CHANNEL_INDEX["email"]) & (dr.open_u[cust_m, k] < P_OPEN)
        is_call = msgs.channel == CHANNEL_INDEX["call"]
        call_u = dr.call_u[cust_m, k]
        outcome = np.where(
            any_paid[cust_m],
            "paid",
            np.where(
                promise_c[cust_m],
                "promise",
                np.where(
                    call_u < CALL_OUTCOME_CUTS[0],
                    "reached",
                    np.where(call_u < CALL_OUTCOME_CUTS[1], "voicemail", "no_answer"),
                ),
            ),
        ).astype(object)
        first_msg = len(self.contacts)
        self.contacts.append(
            cust=cust_m,
            day=np.full(n_msg, day, dtype=np.int64),
            at=msgs.at.astype(np.int64),
            channel=msgs.channel.astype(np.int64),
            tone=msgs.tone,
            step=msgs.step,
            source=np.where(is_call, "call", "relance").astype(object),
            window=np.ones(n_msg, dtype=bool),
            bounced=dead,
            opened=opened,
            call_outcome=np.where(is_call, outcome, None),
        )
        self.rows.append(
            msg=first_msg + m,
            inv=inv,
            overdue=overdue,
            open_cents=w.open_cents(inv, day),
            prior=self.prior[inv],
        )
        np.add.at(self.prior, inv, 1)
        self.n_window_contacts += n_msg
        return {"paid_invoices": int(paid.sum()), "promises": int(len(promisers))}


def _segment_codes(w: World) -> np.ndarray:
    """Customer type x sector as one integer per customer."""
    return np.where(w.c.is_b2b, w.c.section.astype(np.int64) + 1, 0)


def first_run_on_or_after(run_days: np.ndarray, days: np.ndarray) -> np.ndarray:
    """The first business day of the window on or after each day (NEVER when past the window)."""
    i = np.searchsorted(run_days, days, side="left")
    return np.where(i < len(run_days), run_days[np.minimum(i, len(run_days) - 1)], NEVER)


__all__ = ["ArmState", "Messages", "first_run_on_or_after", "moment"]
