"""``relance simulate --days 90``: the reminder engine against a fixed 7/21/45 schedule, in the demo generator's
world, with the generator's hidden response model deciding who pays.

Two arms run day by day from the same world and seed (:mod:`relance.reminders.sim_world`): the **engine**
(:func:`relance.reminders.engine.decide` with the default scenarios, its response model refitted weekly, and
:func:`relance.reminders.rules.check_send` before every contact: a blocked contact is not made) and the **fixed**
schedule a typical dunning module runs (per invoice: an e-mail at +7 days, an e-mail at +21, a letter at +45,
each on the first business day on or after that day; no rules: it only skips invoices under dispute, the usual
"dunning block"). Both are audited with :func:`relance.reminders.rules.audit` on what was delivered.

Assumptions (where the issue is silent, what a collections manager would expect):

* **World**: ``customers`` customers and ``invoices`` invoices issued from ``warmup_months`` before the window to
  its last day, drawn with the generator's own functions (segments, terms, base delay, disputes, credit notes,
  insolvencies). Before the window the generator's legacy process ran (preventive, +7, +21, +45, +75 on mixed
  channels): on day 1 the book holds invoices in every aging bucket and a reminder history (the response model's
  training data, the contact history the rules count). The settle day each invoice would have without any
  contact in the window (:attr:`~relance.reminders.sim_world.World.settle0`) and every random draw of the window
  are shared by the arms (common random numbers): the only difference between the arms is the contacts.
* **Responses**: :meth:`relance.reminders.sim_state.ArmState.deliver`. The generator's ``response_p`` (channel x
  segment x days overdue x propensity, 'firm' tone +0.15; a formal notice counts as firm) with one uniform per
  customer and day; the payment comes 1-7 days later and can only bring a settle day earlier. Promises at
  ``PROMISE_P`` on top, kept with P = sigmoid(0.5 - z). A bounced address (3 % of customers, from the window's
  start) answers nothing; nothing is paid after an insolvency judgment. Opens (45 % of delivered e-mails) only
  feed the contact state. Repeated contacts do not wear out in the hidden model: each is a fresh chance.
* **What the engine sees** is built from the arm's own past only: the worklist with an honest ``p_late`` (the
  customer's share of invoices unpaid 30 days after due among those whose label is known, shrunk to its
  segment's), the contact state (contacts, promises, payments, disputes, bounces and opens known before the day),
  the response history (contacts at least 14 days old). Runs on business days (weekdays, not French public
  holidays); messages go at 09:00 Paris time, calls at 10:30. A collective procedure is known 7 days after the
  judgment (BODACC publication).
* **Figures**, per arm, EUR (GBP at 1/0.85): **DSO** as ``serving.report_dso`` computes it, receivables at the end
  of the window / credit sales of the window x its days; the average-balance DSO (mean daily receivables / daily
  sales); the best possible DSO (only receivables not yet due) and the average days delinquent (DSO minus best);
  the mean days late of invoices due in the window (paid or not, censored at the window's end); cash collected in
  the window; contacts by channel and their cost (``nba.ChannelCosts``); rule violations by rule (audit of the
  delivered contacts, including the legacy contacts of the two weeks before so caps across the window's start
  count); customers contacted more than twice in 7 days. Engine arm: contacts blocked by the rules, and the
  **holdout effect**: each customer's experiment arm as the engine first assigned it in the window (before any of
  its messages), every invoice of those customers falling due in the window (at least 15 days before its end),
  P(settled within 14 days of its first overdue day), treatment minus holdout with a 95 % CI clustered by customer
  (delta method). The 5 % holdout is small: about 40 customers of the default 1,000 give an interval of about
  +-11 points.
* **Ceiling**: reminders can only move overdue receivables, so the DSO cannot fall below the *DSO floor* (not yet
  due + never paid, both arms print it). With the default world the fixed schedule's DSO is about 10 days above
  it: a 15 % lower DSO needs about 80 % of every collectable overdue euro collected by the window's end,
  including invoices that fell due a few days before it.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
from rich.table import Table

from relance.demo.days import NEVER, next_weekday
from relance.demo.reference import CHANNELS
from relance.reminders.engine import EngineConfig, decide
from relance.reminders.nba import ChannelCosts
from relance.reminders.response_model import fit_response_model
from relance.reminders.rules import Contact, ContactRules, CustomerFacts, Violation, audit, check_send
from relance.reminders.scenarios import ScenarioSet, load_default_scenarios
from relance.reminders.sim_state import (
    CALL_TIME,
    CHANNEL_INDEX,
    PROMISE_GRACE_DAYS,
    RUN_TIME,
    ArmState,
    Messages,
    moment,
)
from relance.reminders.sim_world import World, build_world, to_date

log = logging.getLogger(__name__)

DEFAULT_START = date(2026, 9, 1)
#: The fixed schedule: (days after due, channel, tone), per invoice.
FIXED_STEPS: tuple[tuple[int, str, str], ...] = (
    (7, "email", "cordial"),
    (21, "email", "firm"),
    (45, "letter", "formal_notice"),
)
HOLDOUT_HORIZON_DAYS = 14
AUDIT_LOOKBACK_DAYS = 14


@dataclass(frozen=True)
class HoldoutEffect:
    """Treatment minus holdout: P(an invoice unpaid on its first overdue day is settled within 14 days)."""

    treated_rate: float
    holdout_rate: float
    treated_invoices: int
    holdout_invoices: int
    treated_customers: int
    holdout_customers: int
    difference: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class ArmResult:
    """One arm's figures over the window (amounts in EUR)."""

    name: str
    dso_days: float
    dso_average_days: float
    best_possible_dso_days: float
    average_days_delinquent: float
    mean_days_late: float
    receivables_end: float
    overdue_end: float
    never_paid_end: float  # receivables at the end that will never be paid (ground truth: write-offs, insolvency)
    dso_floor_days: float  # DSO if every overdue invoice that can be paid were paid: (not yet due + never) / sales
    cash_collected: float
    sales: float
    contacts: dict[str, int]
    contacts_total: int
    contact_cost: float
    customers_contacted: int
    customers_over_2_in_7d: int
    violations: dict[str, int]
    violations_total: int
    blocked: dict[str, int] = field(default_factory=dict)
    paid_answers: int = 0
    promises: int = 0
    holdout: HoldoutEffect | None = None


@dataclass(frozen=True)
class SimulationResult:
    """Both arms over the same window of the same world."""

    start: date
    end: date
    days: int
    run_days: int
    customers: int
    invoices: int
    seed: int
    engine: ArmResult
    fixed: ArmResult
    model_fits: int
    model_metrics: dict[str, float]
    seconds: float

    @property
    def dso_reduction(self) -> float:
        """Relative DSO reduction of the engine against the fixed schedule (0.15 = 15 % lower)."""
        return 1.0 - self.engine.dso_days / self.fixed.dso_days if self.fixed.dso_days else math.nan

    @property
    def meets_goal(self) -> bool:
        """The issue's goal: DSO at least 15 % lower than the fixed schedule with no more contacts."""
        return self.dso_reduction >= 0.15 and self.engine.contacts_total <= self.fixed.contacts_total


# --------------------------------------------------------------------------------------------------------------
# Customer facts for the rules, both arms


@dataclass
class _DayFacts:
    total_due: np.ndarray  # non-disputed open amount, currency units
    all_disputed: np.ndarray
    in_insolvency: np.ndarray
    promise_until: np.ndarray  # day number, -1 when no active promise

    def facts(self, world: World, cust: int) -> CustomerFacts:
        until = int(self.promise_until[cust])
        return CustomerFacts(
            customer_id=str(world.customer_ids[cust]),
            customer_type=str(world.customer_type[cust]),
            country_code=str(world.country[cust]),
            total_due=float(self.total_due[cust]),
            in_insolvency=bool(self.in_insolvency[cust]),
            promise_until=to_date(until) if until >= 0 else None,
            all_disputed=bool(self.all_disputed[cust]),
        )


def day_facts(state: ArmState, day: int) -> _DayFacts:
    """What the rules know about every customer on ``day`` (the same facts the engine reads)."""
    w = state.world
    n = w.n_customers
    inv = np.flatnonzero(state.open_mask(day))
    cents = w.open_cents(inv, day)
    inv, cents = inv[cents > 0], cents[cents > 0]
    disputed = w.disputed[inv] & (w.dispute_opened[inv] < day) & (w.dispute_resolved[inv] >= day)
    cust = w.cust[inv]
    total_due = np.bincount(cust[~disputed], weights=cents[~disputed] / 100.0, minlength=n)
    any_open = np.bincount(cust, minlength=n) > 0
    all_disputed = any_open & (np.bincount(cust[~disputed], minlength=n) == 0)
    ps = state.promise_status(day)
    order = np.lexsort((ps["made"], ps["cust"]))
    latest = np.full(n, -1, dtype=np.int64)
    latest[ps["cust"][order]] = order
    has = latest >= 0
    li = np.where(has, latest, 0)
    active = has & (ps["status"][li] == "active")
    until = np.where(active, ps["until"][li] + PROMISE_GRACE_DAYS, -1)
    return _DayFacts(total_due, all_disputed, w.known_insolvency_day <= day, until)


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(int(seconds), tz=UTC)


# --------------------------------------------------------------------------------------------------------------
# The arms


class FixedArm:
    """Per invoice, an e-mail at +7, an e-mail at +21, a letter at +45, each on the first business day on or
    after it; a step whose day fell before the window was the legacy process's. Skips disputed invoices only."""

    name = "fixed"

    def __init__(self, world: World, state: ArmState):
        self.world, self.state = world, state
        offsets = np.array([s[0] for s in FIXED_STEPS])
        passed = next_weekday(world.due[:, None] + offsets[None, :]) < world.start
        self.level = passed.sum(axis=1).astype(np.int64)
        self.audit_log: list[tuple[Contact, CustomerFacts]] = []
        self.blocked: Counter[str] = Counter()

    def plan(self, day: int) -> Messages:
        w, st = self.world, self.state
        offsets = np.array([s[0] for s in FIXED_STEPS] + [NEVER])
        open_ = st.open_mask(day) & (w.open_cents(np.arange(w.n_invoices), day) > 0)
        disputed = w.disputed & (w.dispute_opened < day) & (w.dispute_resolved >= day)
        due_step = open_ & ~disputed & (day - w.due >= offsets[self.level])
        inv = np.flatnonzero(due_step)
        if not len(inv):
            return Messages.empty()
        step = self.level[inv]
        self.level[inv] += 1
        channel = np.array([CHANNEL_INDEX[FIXED_STEPS[s][1]] for s in range(len(FIXED_STEPS))])[step]
        tone = np.array([s[2] for s in FIXED_STEPS], dtype=object)[step]
        names = np.array([f"fixed_{s[0]}" for s in FIXED_STEPS], dtype=object)[step]
        at = np.full(len(inv), moment(day, RUN_TIME), dtype=np.int64)
        facts = day_facts(st, day)
        for i, c in enumerate(w.cust[inv]):
            contact = Contact(str(w.customer_ids[c]), CHANNELS[channel[i]], _utc(at[i]))
            self.audit_log.append((contact, facts.facts(w, int(c))))
        idx = np.arange(len(inv))
        return Messages(w.cust[inv], channel, tone, at, names, idx, inv)


class EngineArm:
    """The engine's daily decision, then the rules before each contact; the response model refitted weekly."""

    name = "engine"

    def __init__(
        self,
        world: World,
        state: ArmState,
        *,
        scenarios: ScenarioSet,
        config: EngineConfig,
        rules: ContactRules,
        refit_every_days: int,
        seed: int,
    ):
        self.world, self.state = world, state
        self.scenarios, self.config, self.rules = scenarios, config, rules
        self.refit_every_days, self.seed = refit_every_days, seed
        self.model: Any = None
        self.model_fits = 0
        self.model_metrics: dict[str, float] = {}
        self._fitted_on: int | None = None
        self.sent_keys: set[str] = set()
        self.audit_log: list[tuple[Contact, CustomerFacts]] = []
        self.blocked: Counter[str] = Counter()
        self.decisions: Counter[str] = Counter()
        self.arm_of: dict[int, str] = {}
        self.history: dict[int, list[Contact]] = defaultdict(list)
        c = state.contacts.cols()
        recent = np.flatnonzero(c["day"] >= world.start - AUDIT_LOOKBACK_DAYS)
        for i in recent[np.argsort(c["at"][recent], kind="stable")]:
            cust = int(c["cust"][i])
            self.history[cust].append(
                Contact(str(world.customer_ids[cust]), CHANNELS[c["channel"][i]], _utc(c["at"][i]))
            )

    def _refit(self, day: int) -> None:
        if self._fitted_on is not None and day - self._fitted_on < self.refit_every_days:
            return
        self._fitted_on = day
        model = fit_response_model(self.state.response_history(day), seed=self.seed)
        if model is not None:
            self.model = model
            self.model_fits += 1
            self.model_metrics = dict(model.metrics)

    def plan(self, day: int) -> Messages:
        w, st = self.world, self.state
        self._refit(day)
        worklist = st.worklist(day).drop(columns="_inv")
        contacts = st.contact_state(day)
        out = decide(
            worklist,
            contacts,
            as_of_date=to_date(day),
            scenarios=self.scenarios,
            config=self.config,
            response_model=self.model,
            sent_keys=self.sent_keys,
        )
        dec = out.decisions
        self.decisions.update(dec["decision"].tolist())
        for cid, arm in zip(dec["customer_id"], dec["arm"], strict=True):
            if isinstance(arm, str):
                self.arm_of.setdefault(int(str(cid)[1:]) - 1, arm)
        if out.plan.empty:
            return Messages.empty()
        facts = day_facts(st, day)
        m_cust, m_channel, m_tone, m_at, m_step, r_msg, r_inv = [], [], [], [], [], [], []
        for row in out.plan.itertuples(index=False):
            cust = int(str(row.customer_id)[1:]) - 1
            now = _utc(moment(day, CALL_TIME if row.channel == "call" else RUN_TIME))
            f = facts.facts(w, cust)
            verdict = check_send(row.channel, now, f, self.history[cust], self.rules)
            if not verdict.allowed:
                self.blocked[str(verdict.rule)] += 1
                continue
            at = verdict.deliver_at or now
            contact = Contact(f.customer_id, row.channel, at)
            self.history[cust].append(contact)
            self.audit_log.append((contact, f))
            self.sent_keys.add(str(row.reminder_key))
            invoices = [int(i[4:]) - 1 for i in json.loads(row.invoice_ids)] or [int(str(row.invoice_id)[4:]) - 1]
            r_msg.extend([len(m_cust)] * len(invoices))
            r_inv.extend(invoices)
            m_cust.append(cust)
            m_channel.append(CHANNEL_INDEX[row.channel])
            m_tone.append(row.tone)
            m_at.append(int(at.timestamp()))
            m_step.append(row.step)
        if not m_cust:
            return Messages.empty()
        return Messages(
            np.array(m_cust, dtype=np.int64),
            np.array(m_channel, dtype=np.int64),
            np.array(m_tone, dtype=object),
            np.array(m_at, dtype=np.int64),
            np.array(m_step, dtype=object),
            np.array(r_msg, dtype=np.int64),
            np.array(r_inv, dtype=np.int64),
        )


# --------------------------------------------------------------------------------------------------------------
# Figures


def count_violations(
    world: World, state: ArmState, audit_log: list[tuple[Contact, CustomerFacts]], rules: ContactRules
) -> list[Violation]:
    """Audit the window's delivered contacts with the legacy contacts of the two weeks before (so that a cap
    across the window's start counts); only violations by window contacts are returned."""
    c = state.contacts.cols()
    legacy = np.flatnonzero(~c["window"] & (c["day"] >= world.start - AUDIT_LOOKBACK_DAYS))
    pairs = list(audit_log)
    for i in legacy:
        cust = int(c["cust"][i])
        cid = str(world.customer_ids[cust])
        pairs.append(
            (
                Contact(cid, CHANNELS[c["channel"][i]], _utc(c["at"][i])),
                CustomerFacts(cid, str(world.customer_type[cust]), str(world.country[cust]), total_due=1e12),
            )
        )
    start = _utc(moment(world.start, datetime.min.time()))
    return [v for v in audit(pairs, rules) if v.contact.at >= start]


def _over_2_in_7d(audit_log: list[tuple[Contact, CustomerFacts]]) -> int:
    by_cust: dict[str, list[datetime]] = defaultdict(list)
    for contact, _ in audit_log:
        by_cust[contact.customer_id].append(contact.at)
    n = 0
    for moments in by_cust.values():
        moments.sort()
        if any(b - a < pd.Timedelta(days=7) for a, b in zip(moments, moments[2:], strict=False)):
            n += 1
    return n


def clustered_rate_difference(
    success: np.ndarray, cluster: np.ndarray, treated: np.ndarray
) -> tuple[dict[str, tuple[float, float, int, int]], float, float, float]:
    """Success rate of the treated and the control units, and treated minus control with a 95 % CI clustered by
    ``cluster`` (delta method for a ratio of cluster totals: var(r) = sum_c (y_c - r n_c)^2 / (m (m-1) nbar^2)).

    Returns ({'treatment'|'holdout': (rate, standard error, units, clusters)}, difference, ci_low, ci_high); a
    group without units has rate nan."""
    out: dict[str, tuple[float, float, int, int]] = {}
    for name, mine in (("treatment", treated), ("holdout", ~treated)):
        if not mine.any():
            out[name] = (math.nan, math.nan, 0, 0)
            continue
        clusters, y = np.unique(cluster[mine], return_inverse=True)
        n_c = np.bincount(y).astype(float)
        y_c = np.bincount(y, weights=success[mine].astype(float))
        r = float(y_c.sum() / n_c.sum())
        m = len(clusters)
        var = float(((y_c - r * n_c) ** 2).sum() / (m * (m - 1) * n_c.mean() ** 2)) if m > 1 else math.nan
        out[name] = (r, math.sqrt(var), int(mine.sum()), m)
    diff = out["treatment"][0] - out["holdout"][0]
    se = math.sqrt(out["treatment"][1] ** 2 + out["holdout"][1] ** 2)
    return out, diff, diff - 1.96 * se, diff + 1.96 * se


def holdout_effect(world: World, state: ArmState, arm_of: dict[int, str]) -> HoldoutEffect | None:
    """Treatment minus holdout: P(an invoice still unpaid on its first overdue day is settled within the next
    14 days), 95 % CI clustered by customer (:func:`clustered_rate_difference`).

    Units: invoices of customers with an arm whose first overdue day falls in the window at least 14 days before
    its end. Arms are the engine's first assignment in the window (before any of the customer's messages there).
    Conditioning on "still unpaid" leaves out treated invoices a preventive message got paid before the due
    date: that makes the estimate conservative (the treated rate is measured on slightly harder invoices).
    None when either group is empty."""
    arm = np.full(world.n_customers, "", dtype=object)
    for c, a in arm_of.items():
        arm[c] = a
    first_overdue = world.due + 1
    eligible = (first_overdue >= world.start) & (first_overdue + HOLDOUT_HORIZON_DAYS <= world.end)
    eligible &= np.isin(arm[world.cust], ["treatment", "holdout"]) & (state.settle >= first_overdue)
    inv = np.flatnonzero(eligible)
    success = state.settle[inv] <= first_overdue[inv] + HOLDOUT_HORIZON_DAYS
    treated = arm[world.cust[inv]] == "treatment"
    if not treated.any() or treated.all():
        return None
    groups, diff, low, high = clustered_rate_difference(success, world.cust[inv], treated)
    t, h = groups["treatment"], groups["holdout"]
    return HoldoutEffect(
        treated_rate=t[0],
        holdout_rate=h[0],
        treated_invoices=t[2],
        holdout_invoices=h[2],
        treated_customers=t[3],
        holdout_customers=h[3],
        difference=diff,
        ci_low=low,
        ci_high=high,
    )


def arm_figures(
    world: World,
    state: ArmState,
    arm: FixedArm | EngineArm,
    rules: ContactRules,
    costs: ChannelCosts,
    answers: Counter[str],
) -> ArmResult:
    w, s, e = world, world.start, world.end
    days = e - s + 1
    net = state.net_cents() * w.eur / 100.0
    settle = state.settle
    by_cn = state.paid_by_credit_note()
    sales = float((w.amount * w.eur / 100.0)[(w.issue >= s) & (w.issue <= e)].sum())
    daily_sales = sales / days
    open_end = (w.issue <= e) & (settle > e)
    receivables_end = float(net[open_end].sum())
    current_end = float(net[open_end & (w.due >= e)].sum())
    never_end = float(net[open_end & (w.due < e) & (settle >= NEVER)].sum())
    # receivables at the end of each day of the window: invoice i counts on days [issue, settle)
    lo = np.clip(w.issue - s, 0, days)
    hi = np.clip(settle - s, 0, days)
    diff = np.zeros(days + 1)
    np.add.at(diff, lo[hi > lo], net[hi > lo])
    np.add.at(diff, hi[hi > lo], -net[hi > lo])
    daily_ar = np.cumsum(diff)[:days]
    due_in = (w.due >= s) & (w.due <= e) & ~by_cn
    late = np.maximum(np.minimum(settle[due_in], e + 1) - w.due[due_in], 0)
    paid_in = (settle >= s) & (settle <= e) & ~by_cn
    window = list(arm.audit_log)
    channels = Counter(c.channel for c, _ in window)
    violations = count_violations(w, state, window, rules)
    by_rule = Counter(v.rule for v in violations)
    holdout = holdout_effect(w, state, arm.arm_of) if isinstance(arm, EngineArm) else None
    dso = receivables_end / daily_sales if daily_sales else math.nan
    best = current_end / daily_sales if daily_sales else math.nan
    return ArmResult(
        name=arm.name,
        dso_days=dso,
        dso_average_days=float(daily_ar.mean() / daily_sales) if daily_sales else math.nan,
        best_possible_dso_days=best,
        average_days_delinquent=dso - best,
        mean_days_late=float(late.mean()) if len(late) else math.nan,
        receivables_end=receivables_end,
        overdue_end=receivables_end - current_end,
        never_paid_end=never_end,
        dso_floor_days=(current_end + never_end) / daily_sales if daily_sales else math.nan,
        cash_collected=float(net[paid_in].sum()),
        sales=sales,
        contacts={ch: int(channels.get(ch, 0)) for ch in CHANNELS},
        contacts_total=len(window),
        contact_cost=float(sum(costs.cost(ch) * n for ch, n in channels.items())),
        customers_contacted=len({c.customer_id for c, _ in window}),
        customers_over_2_in_7d=_over_2_in_7d(window),
        violations=dict(sorted(by_rule.items())),
        violations_total=len(violations),
        blocked=dict(sorted(arm.blocked.items())),
        paid_answers=answers["paid_invoices"],
        promises=answers["promises"],
        holdout=holdout,
    )


# --------------------------------------------------------------------------------------------------------------
# The run


@dataclass
class ArmsRun:
    """Both arms after the window: their policies (contacts, audit logs, blocks) and states (settle days...)."""

    world: World
    fixed: FixedArm
    fixed_state: ArmState
    engine: EngineArm
    engine_state: ArmState
    answers: dict[str, Counter[str]]


def run_arms(
    world: World,
    *,
    scenarios: ScenarioSet,
    config: EngineConfig,
    rules: ContactRules,
    refit_every_days: int = 7,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> ArmsRun:
    """The daily loop: on each business day of the window, each arm plans, delivers, and its customers answer."""
    fixed_state, engine_state = ArmState(world, "fixed"), ArmState(world, "engine")
    fixed = FixedArm(world, fixed_state)
    engine = EngineArm(
        world,
        engine_state,
        scenarios=scenarios,
        config=config,
        rules=rules,
        refit_every_days=refit_every_days,
        seed=seed,
    )
    answers: dict[str, Counter[str]] = {"fixed": Counter(), "engine": Counter()}
    total = len(world.run_days)
    for i, day in enumerate(world.run_days):
        for arm, state in ((fixed, fixed_state), (engine, engine_state)):
            answers[arm.name].update(state.deliver(int(day), arm.plan(int(day))))
        if progress is not None:
            progress(i + 1, total)
    return ArmsRun(world, fixed, fixed_state, engine, engine_state, answers)


def run_simulation(
    days: int = 90,
    customers: int = 1000,
    invoices: int = 20_000,
    seed: int = 42,
    start: date | None = None,
    *,
    warmup_months: int = 12,
    scenarios: ScenarioSet | None = None,
    config: EngineConfig | None = None,
    rules: ContactRules | None = None,
    costs: ChannelCosts | None = None,
    refit_every_days: int = 7,
    progress: Callable[[int, int], None] | None = None,
) -> SimulationResult:
    """Run both arms for ``days`` days from ``start`` (default 2026-09-01) and return their figures.

    ``invoices`` are issued over the warm-up and the window together. ``progress(done, total)`` is called after
    each business day (both arms). Same arguments, same result."""
    if not isinstance(days, int) or days < 1:
        raise ValueError(f"days must be a positive integer, got {days!r}")
    if not isinstance(customers, int) or customers < 1:
        raise ValueError(f"customers must be a positive integer, got {customers!r}")
    if not isinstance(invoices, int) or invoices < 1:
        raise ValueError(f"invoices must be a positive integer, got {invoices!r}")
    if not isinstance(warmup_months, int) or warmup_months < 1:
        raise ValueError(f"warmup_months must be a positive integer, got {warmup_months!r}")
    t0 = time.perf_counter()
    start = start or DEFAULT_START
    rules = rules or ContactRules()
    costs = costs or ChannelCosts()
    config = config or EngineConfig(costs=costs, materiality_min=rules.materiality_min)
    world = build_world(
        n_customers=customers, n_invoices=invoices, start=start, days=days, warmup_months=warmup_months, seed=seed
    )
    run = run_arms(
        world,
        scenarios=scenarios or load_default_scenarios(),
        config=config,
        rules=rules,
        refit_every_days=refit_every_days,
        seed=seed,
        progress=progress,
    )
    fixed, fixed_state, engine, engine_state = run.fixed, run.fixed_state, run.engine, run.engine_state
    answers = run.answers
    total = len(world.run_days)
    result = SimulationResult(
        start=start,
        end=to_date(world.end),
        days=days,
        run_days=total,
        customers=customers,
        invoices=world.n_invoices,
        seed=seed,
        engine=arm_figures(world, engine_state, engine, rules, costs, answers["engine"]),
        fixed=arm_figures(world, fixed_state, fixed, rules, costs, answers["fixed"]),
        model_fits=engine.model_fits,
        model_metrics=engine.model_metrics,
        seconds=time.perf_counter() - t0,
    )
    log.info(
        "simulation %s..%s: DSO engine %.1f d vs fixed %.1f d (%.1f %% lower), contacts %d vs %d, %.1f s",
        result.start, result.end, result.engine.dso_days, result.fixed.dso_days, 100 * result.dso_reduction,
        result.engine.contacts_total, result.fixed.contacts_total, result.seconds,
    )  # fmt: skip
    return result


# --------------------------------------------------------------------------------------------------------------
# Rendering


def _money(x: float) -> str:
    return f"{x:,.0f} EUR"


def render(result: SimulationResult) -> Table:
    """The two arms side by side (a rich table; its caption holds the holdout effect and the goal)."""
    e, f = result.engine, result.fixed
    table = Table(
        title=(
            f"Simulation {result.start} to {result.end} ({result.days} days, {result.run_days} business days), "
            f"{result.customers} customers, {result.invoices} invoices, seed {result.seed}"
        )
    )
    table.add_column("figure")
    table.add_column("engine", justify="right")
    table.add_column("fixed 7/21/45", justify="right")
    table.add_column("engine - fixed", justify="right")

    def row(label: str, a: float, b: float, fmt: Callable[[float], str], pct: bool = False) -> None:
        delta = a - b
        text = fmt(delta) if not pct else f"{fmt(delta)} ({(a / b - 1) * 100:+.1f} %)" if b else fmt(delta)
        table.add_row(label, fmt(a), fmt(b), text)

    days = lambda x: f"{x:.1f} d"  # noqa: E731
    count = lambda x: f"{x:,.0f}"  # noqa: E731
    row("DSO (receivables at end / sales x days)", e.dso_days, f.dso_days, days, pct=True)
    row("DSO, average balance", e.dso_average_days, f.dso_average_days, days, pct=True)
    row("best possible DSO (not yet due only)", e.best_possible_dso_days, f.best_possible_dso_days, days)
    row("DSO floor (not yet due + never paid)", e.dso_floor_days, f.dso_floor_days, days)
    row("average days delinquent", e.average_days_delinquent, f.average_days_delinquent, days, pct=True)
    row("mean days late, invoices due in window", e.mean_days_late, f.mean_days_late, days, pct=True)
    row("cash collected", e.cash_collected, f.cash_collected, _money, pct=True)
    row("overdue receivables at end", e.overdue_end, f.overdue_end, _money, pct=True)
    row("  of which never paid (write-offs, insolvency)", e.never_paid_end, f.never_paid_end, _money)
    row("contacts", e.contacts_total, f.contacts_total, count, pct=True)
    for ch in CHANNELS:
        row(f"  {ch}", e.contacts[ch], f.contacts[ch], count)
    row("contact cost", e.contact_cost, f.contact_cost, lambda x: f"{x:,.2f} EUR")
    row("customers contacted", e.customers_contacted, f.customers_contacted, count)
    row("customers contacted > 2 times in 7 days", e.customers_over_2_in_7d, f.customers_over_2_in_7d, count)
    row("invoices paid after a contact", e.paid_answers, f.paid_answers, count)
    row("promises to pay", e.promises, f.promises, count)
    row("rule violations (audit)", e.violations_total, f.violations_total, count)
    for rule in sorted(set(e.violations) | set(f.violations)):
        row(f"  {rule}", e.violations.get(rule, 0), f.violations.get(rule, 0), count)
    table.add_row("contacts blocked by the rules", count(sum(e.blocked.values())), "-", "")
    for rule, n in e.blocked.items():
        table.add_row(f"  {rule}", count(n), "-", "")
    caption = [
        f"DSO {100 * result.dso_reduction:.1f} % lower than the fixed schedule with "
        f"{'no more' if e.contacts_total <= f.contacts_total else 'more'} contacts: goal (15 %, no more contacts) "
        f"{'met' if result.meets_goal else 'not met'}."
    ]
    h = e.holdout
    if h is not None:
        caption.append(
            "Holdout effect (an invoice unpaid when it falls due, paid within 14 days): treated "
            f"{100 * h.treated_rate:.1f} % "
            f"({h.treated_invoices} invoices, {h.treated_customers} customers) vs holdout {100 * h.holdout_rate:.1f} % "
            f"({h.holdout_invoices}, {h.holdout_customers}): {100 * h.difference:+.1f} points, 95 % CI "
            f"[{100 * h.ci_low:+.1f}, {100 * h.ci_high:+.1f}]."
        )
    caption.append(f"Response model fitted {result.model_fits} times; {result.seconds:.0f} s.")
    table.caption = " ".join(caption)
    return table


__all__ = [
    "ArmResult",
    "ArmsRun",
    "EngineArm",
    "FixedArm",
    "HoldoutEffect",
    "SimulationResult",
    "clustered_rate_difference",
    "count_violations",
    "day_facts",
    "holdout_effect",
    "render",
    "run_arms",
    "run_simulation",
]
