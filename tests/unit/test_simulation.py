"""``relance simulate``: the world both arms share, the fixed 7/21/45 schedule, the hidden response model in the
loop (a reminder never delays a payment, same-day messages do not multiply the chance), honest inputs for the
engine, the audit of a bad schedule, and the figures."""

from __future__ import annotations

import dataclasses
import io
import time
from datetime import UTC, date, datetime

import numpy as np
import pytest
from rich.console import Console

from relance.demo import behaviour
from relance.demo.days import day_number
from relance.reminders.engine import EngineConfig
from relance.reminders.rules import Contact, ContactRules, CustomerFacts
from relance.reminders.scenarios import load_default_scenarios
from relance.reminders.sim_state import CHANNEL_INDEX, ArmState, Messages, first_run_on_or_after, moment
from relance.reminders.sim_world import build_world
from relance.reminders.simulation import (
    FIXED_STEPS,
    ArmsRun,
    clustered_rate_difference,
    count_violations,
    render,
    run_arms,
    run_simulation,
)

START = date(2026, 9, 1)
SMALL = dict(n_customers=60, n_invoices=1200, start=START, days=20, warmup_months=12, seed=7)


def _world(**overrides):
    return build_world(**{**SMALL, **overrides})


@pytest.fixture(scope="module")
def run() -> ArmsRun:
    world = _world(days=60)
    return run_arms(
        world, scenarios=load_default_scenarios(), config=EngineConfig(), rules=ContactRules(), refit_every_days=7
    )


def _window_rows(state: ArmState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(invoice, send day, step name) of every window contact row of an arm."""
    c, r = state.contacts.cols(), state.rows.cols()
    in_window = c["window"][r["msg"]]
    msg = r["msg"][in_window]
    return r["inv"][in_window], c["day"][msg], c["step"][msg]


def test_world_has_an_open_book_in_every_aging_bucket_and_a_history():
    w = _world(n_customers=200, n_invoices=4000)
    open_ = (w.issue < w.start) & (w.settle0 >= w.start)
    overdue = w.start - w.due[open_]
    counts = np.histogram(overdue, [-10_000, 0, 30, 60, 90, 10_000_000])[0]
    assert (counts > 0).all(), counts
    sent_day = w.legacy["sent"] // 86_400
    assert len(sent_day) > 500 and sent_day.max() < w.start  # the legacy process stopped at the window
    assert (w.settle0 <= w.base_settle).all()  # warm-up reminders only bring payments earlier


def test_the_world_is_a_pure_function_of_its_arguments():
    a, b, c = _world(), _world(), _world(seed=8)
    assert np.array_equal(a.settle0, b.settle0) and np.array_equal(a.draws.u, b.draws.u)
    assert not np.array_equal(a.draws.u, c.draws.u)


def test_both_arms_share_the_settle_days_and_differ_only_where_they_made_contact(run: ArmsRun):
    w = run.world
    for state in (run.fixed_state, run.engine_state):
        # a reminder never delays a payment
        assert (state.settle <= w.settle0).all()
    contacted = np.zeros(w.n_invoices, dtype=bool)
    for state in (run.fixed_state, run.engine_state):
        contacted[_window_rows(state)[0]] = True
    untouched = ~contacted
    assert np.array_equal(run.fixed_state.settle[untouched], w.settle0[untouched])
    assert np.array_equal(run.engine_state.settle[untouched], w.settle0[untouched])
    # and contacts did change something in each arm
    assert (run.fixed_state.settle < w.settle0).any() and (run.engine_state.settle < w.settle0).any()


def test_fixed_arm_sends_email_email_letter_on_the_first_business_day_after_7_21_45(run: ArmsRun):
    w, state = run.world, run.fixed_state
    inv, day, step = _window_rows(state)
    assert len(inv) > 20
    c = state.contacts.cols()
    window = c["window"]
    assert set(c["step"][window]) <= {f"fixed_{s[0]}" for s in FIXED_STEPS}
    offset = np.array([int(s.split("_")[1]) for s in step])
    channel_of = {f"fixed_{d}": CHANNEL_INDEX[ch] for d, ch, _ in FIXED_STEPS}
    assert (c["channel"][window] == np.array([channel_of[s] for s in c["step"][window]])).all()
    never_disputed = ~w.disputed[inv]
    expected = first_run_on_or_after(w.run_days, w.due[inv] + offset)
    assert np.array_equal(day[never_disputed], expected[never_disputed])
    # one contact per invoice and step, one message per invoice
    pairs = set(zip(inv.tolist(), offset.tolist(), strict=True))
    assert len(pairs) == len(inv)
    # complete: every undisputed invoice open on the day its +7 step falls gets it
    due7 = first_run_on_or_after(w.run_days, w.due + 7)
    in_window = (w.due + 7 >= w.start) & (due7 <= w.end)
    disputed_then = w.disputed & (w.dispute_opened < due7) & (w.dispute_resolved >= due7)
    open_then = (w.issue < due7) & (state.settle >= due7) & ~disputed_then
    want = set(np.flatnonzero(in_window & open_then).tolist())
    got = set(inv[offset == 7].tolist())
    assert want == got


def test_engine_arm_breaks_no_rule_and_the_fixed_arm_is_audited_honestly(run: ArmsRun):
    rules = ContactRules()
    engine = count_violations(run.world, run.engine_state, run.engine.audit_log, rules)
    fixed = count_violations(run.world, run.fixed_state, run.fixed.audit_log, rules)
    assert len(run.engine.audit_log) > 0
    assert engine == []
    assert {v.rule for v in fixed} & {"frequency_cap", "min_gap"}  # per-invoice e-mails pile up


def test_audit_counts_a_deliberately_bad_schedule():
    w = _world()
    state = ArmState(w, "bad")
    cid = str(w.customer_ids[0])
    facts = CustomerFacts(cid, str(w.customer_type[0]), "FR", total_due=500.0)
    insolvent = dataclasses.replace(facts, in_insolvency=True)
    night = datetime.fromtimestamp(moment(w.start, datetime.min.time()) + 2 * 3600, tz=UTC)  # 02:00 Paris
    morning = datetime.fromtimestamp(moment(w.start, datetime.min.time()) + 9 * 3600, tz=UTC)
    log = [
        (Contact(cid, "sms", night), facts),
        (Contact(cid, "email", morning), facts),
        (Contact(cid, "letter", morning.replace(minute=5)), insolvent),
    ]
    rules = {v.rule for v in count_violations(w, state, log, ContactRules())}
    assert {"quiet_hours", "min_gap", "frequency_cap", "insolvency_stop"} <= rules


def _open_invoices_of_one_customer(w, state: ArmState, day: int, n: int) -> tuple[int, np.ndarray]:
    open_ = state.open_mask(day) & ~w.disputed & (w.settle0 > day + 30) & (w.due < day)
    open_ &= w.c.insolvency_day[w.cust] > day + 60
    counts = np.bincount(w.cust[open_], minlength=w.n_customers)
    cust = int(np.flatnonzero(counts >= n)[0])
    return cust, np.flatnonzero(open_ & (w.cust == cust))[:n]


def test_a_paid_answer_brings_the_payment_forward_by_the_lag_never_later():
    w = _world()
    day = int(w.run_days[0])
    k = w.day_index(day)
    state = ArmState(w, "t")
    cust, inv = _open_invoices_of_one_customer(w, state, day, 2)
    w.draws.u[cust, k] = 0.0  # answers anything
    w.draws.lag[cust, k] = 5
    state.settle[inv[1]] = day + 2  # would have been paid in 2 days anyway
    msgs = Messages(
        cust=np.array([cust]),
        channel=np.array([CHANNEL_INDEX["letter"]]),
        tone=np.array(["cordial"], dtype=object),
        at=np.array([moment(day, datetime.min.time())]),
        step=np.array(["s"], dtype=object),
        row_msg=np.array([0, 0]),
        row_inv=inv,
    )
    state.deliver(day, msgs)
    assert state.settle[inv[0]] == day + 5
    assert state.settle[inv[1]] == day + 2


def test_several_messages_on_one_day_do_not_multiply_the_chance_of_payment():
    w = _world()
    day = int(w.run_days[0])
    grouped, separate = ArmState(w, "g"), ArmState(w, "s")
    cust, inv = _open_invoices_of_one_customer(w, grouped, day, 3)
    email = CHANNEL_INDEX["email"]
    at = moment(day, datetime.min.time())
    one = Messages(
        np.array([cust]), np.array([email]), np.array(["cordial"], dtype=object), np.array([at]),
        np.array(["s"], dtype=object), np.zeros(3, dtype=np.int64), inv,
    )  # fmt: skip
    three = Messages(
        np.full(3, cust), np.full(3, email), np.full(3, "cordial", dtype=object), np.full(3, at),
        np.full(3, "s", dtype=object), np.arange(3), inv,
    )  # fmt: skip
    for u in (0.0, 0.5, 0.999):
        grouped.settle[:] = w.settle0
        separate.settle[:] = w.settle0
        w.draws.u[cust, w.day_index(day)] = u
        grouped.deliver(day, one)
        separate.deliver(day, three)
        assert np.array_equal(grouped.settle, separate.settle)


def test_engine_inputs_use_only_what_is_known_before_the_day():
    w = _world()
    state = ArmState(w, "t")
    day = int(w.run_days[5])
    before = (state.late_rate(day), state.worklist(day), state.contact_state(day), state.response_history(day))
    # change the future: every invoice whose label or payment is not known yet is now paid much later
    state.settle[state.settle >= day] += 400
    after = (state.late_rate(day), state.worklist(day), state.contact_state(day), state.response_history(day))
    assert np.array_equal(before[0], after[0])
    assert before[1].drop(columns="_inv").equals(after[1].drop(columns="_inv"))
    assert before[2].equals(after[2])
    assert before[3].equals(after[3])
    assert len(before[3]) > 500
    assert (before[3]["sent_at"] <= np.datetime64("1970-01-01") + np.timedelta64(day - 14, "D")).all()


def test_contact_state_reads_promises_payments_and_bounces():
    w = _world()
    state = ArmState(w, "t")
    day = int(w.run_days[0])
    cust, inv = _open_invoices_of_one_customer(w, state, day, 1)
    k = w.day_index(day)
    others = (w.cust == cust) & (state.settle >= day)
    state.settle[others] = np.maximum(state.settle[others], day + 60)  # nothing else paid meanwhile
    w.draws.keep_u[cust, k] = 1.0  # the promise will be broken
    msgs = Messages(
        np.array([cust]), np.array([CHANNEL_INDEX["call"]]), np.array(["firm"], dtype=object),
        np.array([moment(day, datetime.min.time())]), np.array(["s"], dtype=object), np.array([0]), inv,
    )  # fmt: skip
    p = behaviour.response_p(
        np.array([CHANNEL_INDEX["call"]]), w.c, w.cust[inv], day - w.due[inv], w.z(inv, day), "firm"
    )[0]
    w.draws.u[cust, k] = p + 0.5 * behaviour.PROMISE_P[CHANNEL_INDEX["call"]]  # promise, not paid
    state.deliver(day, msgs)
    until = day + int(w.draws.promise_days[cust, k])
    row = state.contact_state(day + 1).iloc[cust]
    assert row["promise_status"] == "active" and row["promise_source"] == "call"
    assert row["last_call_outcome"] == "promise"
    assert row["last_contact_channel"] == "call"
    later = state.contact_state(until + 4).iloc[cust]
    assert later["promise_status"] == "broken" and later["broken_promise_count"] >= 1
    # a dead e-mail address bounces, visible the next day
    w.bad_email[cust] = True
    email = Messages(
        np.array([cust]), np.array([CHANNEL_INDEX["email"]]), np.array(["firm"], dtype=object),
        np.array([moment(day + 1, datetime.min.time())]), np.array(["s"], dtype=object), np.array([0]), inv,
    )  # fmt: skip
    state.deliver(day + 1, email)
    assert state.contact_state(day + 1).iloc[cust]["bounced_channels"] is None
    assert state.contact_state(day + 2).iloc[cust]["bounced_channels"] == "email"


def test_clustered_rate_difference_matches_the_wald_interval_with_one_unit_per_cluster():
    success = np.array([1, 1, 0, 1, 0, 0, 1, 0, 0, 0], dtype=bool)
    treated = np.array([True] * 4 + [False] * 6)
    groups, diff, low, high = clustered_rate_difference(success, np.arange(10), treated)
    assert groups["treatment"][0] == pytest.approx(0.75) and groups["holdout"][0] == pytest.approx(1 / 6)
    se = np.sqrt(0.75 * 0.25 / 3 + (1 / 6) * (5 / 6) / 5)  # sample variances (m - 1) / m
    assert diff == pytest.approx(0.75 - 1 / 6)
    assert (low, high) == pytest.approx((diff - 1.96 * se, diff + 1.96 * se))
    # copies of a customer's outcome add no information: the same interval (a per-invoice Wald would narrow)
    _, _, low2, high2 = clustered_rate_difference(
        np.repeat(success, 3), np.repeat(np.arange(10), 3), np.repeat(treated, 3)
    )
    assert high2 - low2 == pytest.approx(high - low)  # same clusters, same information


def test_small_simulation_is_deterministic_fast_and_renders():
    t0 = time.perf_counter()
    a = run_simulation(days=20, customers=60, invoices=1200, seed=3)
    assert time.perf_counter() - t0 < 20
    b = run_simulation(days=20, customers=60, invoices=1200, seed=3)
    assert dataclasses.replace(a, seconds=0) == dataclasses.replace(b, seconds=0)
    assert a.engine.violations_total == 0
    assert a.fixed.contacts_total > 0 and a.engine.contacts_total > 0
    assert a.fixed.contacts_total == sum(a.fixed.contacts.values())
    assert a.engine.sales == a.fixed.sales and a.engine.best_possible_dso_days == a.fixed.best_possible_dso_days
    out = io.StringIO()
    Console(file=out, width=200).print(render(a))
    text = out.getvalue()
    assert "DSO" in text and "rule violations" in text and "fixed 7/21/45" in text


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="days"):
        run_simulation(days=0)
    with pytest.raises(ValueError, match="customers"):
        run_simulation(customers=-1)


def test_business_days_skip_weekends_and_french_holidays():
    w = _world(start=date(2026, 11, 1), days=14)
    days = set(w.run_days.tolist())
    assert day_number(date(2026, 11, 11)) not in days  # Armistice
    assert day_number(date(2026, 11, 7)) not in days  # Saturday
    assert day_number(date(2026, 11, 10)) in days
