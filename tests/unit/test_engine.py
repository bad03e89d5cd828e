"""The reminder engine on tiny worklists: one message per customer, reactions change the next step, every decision
has a rule or a reason, the holdout is reproducible."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pandas as pd
import pytest

from relance.reminders.engine import EngineConfig, decide, group_reminder_key, holdout_draw
from relance.reminders.scenarios import load_default_scenarios, parse_scenarios

AS_OF = date(2026, 10, 30)
SCENARIOS = load_default_scenarios()
NO_HOLDOUT = parse_scenarios(
    """\
version: 1
scenarios:
  - name: standard
    steps:
      - {name: pre_due, day: -3, channels: [email], tone: preventive, when: {p_late: {min: 0.5}}}
      - {name: first, day: 3, channels: [email], tone: cordial}
      - {name: second, day: 14, channels: [email, letter], tone: firm}
      - {name: notice, day: 30, channels: [letter], tone: formal_notice}
    repeat: {every_days: 14, max_times: 2, channels: [email], tone: firm}
    escalation: {broken_promise_channels: [call, letter], negotiator_min_due: 5000, bounce_fallback: [sms, letter]}
""",
    "test.yaml",
)


def inv(invoice: str, customer: str, days: int, amount: float = 500.0, **extra) -> dict:
    row = {
        "invoice_id": invoice,
        "customer_id": customer,
        "customer_name": f"Client {customer}",
        "customer_type": "B2B",
        "email": f"{customer.lower()}@example.com",
        "phone": "+33199001234",
        "currency": "EUR",
        "open_amount": amount,
        "amount": amount,
        "due_date": AS_OF - timedelta(days=days),
        "days_overdue": days,
        "is_disputed": False,
        "p_late": 0.6,
        "sector_section": "C",
        "has_open_procedure": False,
    }
    return row | extra


def run(rows, contacts=None, scenarios=NO_HOLDOUT, sent=frozenset(), config=None, as_of=AS_OF):
    return decide(
        pd.DataFrame(rows),
        pd.DataFrame(contacts or []),
        as_of_date=as_of,
        scenarios=scenarios,
        config=config or EngineConfig(),
        sent_keys=sent,
    )


def decision(result, customer: str) -> dict:
    row = result.decisions.set_index("customer_id").loc[customer]
    return {**row.to_dict(), "reasons": json.loads(row["reasons"])}


def test_one_message_per_customer_groups_its_overdue_invoices_at_the_level_of_the_most_advanced() -> None:
    result = run([inv("F1", "C1", 20, 1000.0), inv("F2", "C1", 5, 250.5), inv("F3", "C1", -10, 99.0)])
    assert len(result.plan) == 1
    msg = result.plan.iloc[0]
    assert (msg.step, msg.invoice_id, msg.invoice_count) == ("second", "F1", 2)
    assert msg.open_amount == pytest.approx(1250.5)
    statement = json.loads(msg.statement)
    assert [line["invoice_id"] for line in statement] == ["F1", "F2"], "not-yet-due F3 is not in the statement"
    assert msg.reminder_key == group_reminder_key("C1", "standard", "second", "F1")
    assert decision(result, "C1")["decision"] == "send"


def test_disputed_invoices_leave_the_statement_and_an_all_disputed_customer_is_paused() -> None:
    result = run([inv("F1", "C1", 20, is_disputed=True), inv("F2", "C1", 5), inv("F3", "C2", 20, is_disputed=True)])
    assert json.loads(result.plan.set_index("customer_id").loc["C1", "invoice_ids"]) == ["F2"]
    assert decision(result, "C2")["rule"] == "dispute_pause"


def test_a_promise_pauses_until_its_date_plus_grace_then_a_broken_promise_escalates_once() -> None:
    rows = [inv("F1", "C1", 20)]
    active = [{"customer_id": "C1", "promise_status": "active", "promise_date": AS_OF - timedelta(days=2)}]
    paused = run(rows, active)
    assert paused.plan.empty
    d = decision(paused, "C1")
    assert (d["decision"], d["rule"]) == ("pause", "promise_pause")
    assert str(AS_OF + timedelta(days=1)) in d["reasons"][-1], "paused until promise date + 3 days"

    promised = AS_OF - timedelta(days=6)
    broken = [{"customer_id": "C1", "promise_status": "broken", "promise_date": promised}]
    escalated = run(rows, broken)
    msg = escalated.plan.iloc[0]
    assert (msg.step, msg.channel, msg.tone) == ("broken_promise", "call", "firm")
    assert msg.reminder_key == group_reminder_key("C1", "standard", "broken_promise", str(promised))
    # once followed up, the scenario's own step comes back
    again = run(rows, broken, sent={msg.reminder_key})
    assert again.plan.iloc[0].step == "second"


def test_insolvency_do_not_contact_and_materiality_are_decisions_with_their_rule() -> None:
    result = run(
        [inv("F1", "C1", 20, has_open_procedure=True), inv("F2", "C2", 20), inv("F3", "C3", 20, amount=9.99)],
        [{"customer_id": "C2", "suppressed_channels": "*"}],
    )
    assert result.plan.empty
    assert decision(result, "C1")["rule"] == "insolvency_stop"
    assert decision(result, "C2")["rule"] == "do_not_contact"
    assert (decision(result, "C3")["decision"], decision(result, "C3")["rule"]) == ("wait", "materiality")


def test_a_step_goes_once_the_next_waits_for_its_day_and_the_last_repeats_up_to_its_limit() -> None:
    rows = [inv("F1", "C1", 20)]
    first = run(rows).plan.iloc[0]
    sent = {first.reminder_key}
    waiting = run(rows, sent=sent)
    assert waiting.plan.empty
    assert "next (notice) on day 30" in decision(waiting, "C1")["reasons"][-1]
    # day 45: the notice (day 30) is sent, the first repeat (every 14 d) is due on day 44
    late = [inv("F1", "C1", 45)]
    notice = run(late).plan.iloc[0]
    assert notice.step == "notice"
    repeat = run(late, sent={notice.reminder_key}).plan.iloc[0]
    assert (repeat.step, repeat.channel, repeat.tone) == ("notice_repeat_1", "email", "firm")
    keys = {notice.reminder_key, repeat.reminder_key}
    keys.add(run([inv("F1", "C1", 60)], sent=keys).plan.iloc[0].reminder_key)
    done = run([inv("F1", "C1", 75)], sent=keys)
    assert done.plan.empty
    assert "every repeat sent (2)" in decision(done, "C1")["reasons"][-1]


def test_the_key_of_a_step_does_not_depend_on_the_day_or_the_row_order() -> None:
    rows = [inv("F1", "C1", 20), inv("F2", "C1", 16), inv("F9", "C2", 4)]
    today = run(rows)
    tomorrow = run([{**r, "days_overdue": r["days_overdue"] + 1} for r in reversed(rows)], as_of=AS_OF)
    assert set(today.plan.reminder_key) == set(tomorrow.plan.reminder_key)


def test_an_opened_email_or_a_partial_payment_moves_the_next_step_later() -> None:
    rows = [inv("F1", "C1", 16)]  # step 'second' is day 14
    assert run(rows).plan.iloc[0].step == "second"
    for flag in ("is_opened_since_last_contact", "is_partial_payment_since_last_contact"):
        shifted = run(rows, [{"customer_id": "C1", flag: True}])
        msg = shifted.plan.iloc[0]
        assert msg.step == "first", flag  # 16 - 5 = 11 < 14
        assert any("cadence 5 d later" in r for r in json.loads(msg.reasons))


def test_nothing_within_min_days_of_the_last_contact() -> None:
    contact = [{"customer_id": "C1", "last_contact_at": pd.Timestamp(AS_OF - timedelta(days=2))}]
    result = run([inv("F1", "C1", 20)], contact)
    assert result.plan.empty
    assert decision(result, "C1")["rule"] == "min_days_between_messages"


def test_a_bounce_switches_channel_and_high_stakes_go_to_a_negotiator_within_capacity() -> None:
    bounced = run([inv("F1", "C1", 5)], [{"customer_id": "C1", "bounced_channels": "email"}])
    msg = bounced.plan.iloc[0]
    assert msg.channel == "letter", "sms is not enabled: the next fallback"
    assert any("email bounced: letter instead" in r for r in json.loads(msg.reasons))

    big = [inv("F1", "C1", 20, 9000.0), inv("F2", "C2", 20, 7000.0), inv("F3", "C3", 20, 800.0)]
    config = EngineConfig(call_capacity_minutes=8.0)  # one call
    result = run(big, config=config).plan.set_index("customer_id")
    assert result.loc["C1", "channel"] == "call", "the largest exposure gets the negotiator's time"
    assert result.loc["C2", "channel"] == "email", "no minutes left: the step's own channel"
    assert result.loc["C3", "channel"] == "email", "under negotiator_min_due: no call"
    assert result.loc["C1", "recipient"] == "+33199001234"


def test_no_reachable_channel_is_a_stop_never_a_silent_drop() -> None:
    result = run([inv("F1", "C1", 5, email="not-an-address")], config=EngineConfig(enabled_channels=("email",)))
    assert result.plan.empty
    assert (decision(result, "C1")["decision"], decision(result, "C1")["rule"]) == ("stop", "no_channel")


def test_pre_due_only_for_likely_late_payers_and_only_when_nothing_is_overdue() -> None:
    assert run([inv("F1", "C1", -2, p_late=0.7)]).plan.iloc[0].step == "pre_due"
    assert run([inv("F1", "C1", -2, p_late=0.2)]).plan.empty
    assert run([inv("F1", "C1", -2, p_late=0.9), inv("F2", "C1", 4)]).plan.iloc[0].step == "first"


def test_holdout_arms_are_a_pure_function_of_salt_scenario_and_customer() -> None:
    rows = [inv(f"F{i}", f"C{i:03d}", 20) for i in range(400)]
    result = run(rows, scenarios=SCENARIOS)
    arms = result.assignments.set_index("customer_id")["arm"]
    share = (arms == "holdout").mean()
    assert 0.02 < share < 0.09, share  # 5 % of 400
    held = arms[arms == "holdout"].index
    assert not result.plan["customer_id"].isin(held).any()
    assert set(result.decisions.set_index("customer_id").loc[held, "decision"]) == {"holdout"}
    again = run(list(reversed(rows)), scenarios=SCENARIOS).assignments.set_index("customer_id")["arm"]
    assert again.sort_index().equals(arms.sort_index())
    assert holdout_draw("s", "a", "C1") == holdout_draw("s", "a", "C1") != holdout_draw("t", "a", "C1")


def test_every_customer_gets_exactly_one_decision_and_sends_match_the_plan() -> None:
    rows = [inv("F1", "C1", 20), inv("F2", "C1", 4), inv("F3", "C2", -1), inv("F4", "C3", 3, amount=0.0)]
    result = run(rows)
    assert sorted(result.decisions.customer_id) == ["C1", "C2", "C3"]
    sends = result.decisions[result.decisions.decision == "send"]
    assert set(sends.reminder_key) == set(result.plan.reminder_key)
    assert decision(result, "C3")["decision"] == "nothing_due"


def test_with_a_response_model_the_channel_is_the_next_best_action() -> None:
    """History where a call works far better on construction firms (the demo's hidden model): the engine calls the
    construction firm and emails the other one, and says what each action is worth."""
    from relance.reminders.response_model import fit_response_model
    from tests.unit.test_response_model import synthetic_history

    model = fit_response_model(synthetic_history(4000), min_rows=500)
    assert model is not None and {"email", "call"} <= set(model.channels)
    rows = [
        inv("F1", "C1", 20, 6000.0, sector_section="F", size_band="small"),
        inv("F2", "C2", 20, 25.0, sector_section="M", size_band="medium"),
    ]
    scenarios = parse_scenarios(
        "version: 1\nscenarios:\n  - name: s\n    steps:\n"
        "      - {name: first, day: 3, channels: [email, call], tone: cordial}\n",
        "nba.yaml",
    )
    result = decide(
        pd.DataFrame(rows), None, as_of_date=AS_OF, scenarios=scenarios, config=EngineConfig(), response_model=model
    )
    plan = result.plan.set_index("customer_id")
    assert plan.loc["C1", "channel"] == "call"
    assert plan.loc["C2", "channel"] == "email", "a call costs more than it can bring on 25 EUR"
    assert plan["expected_cash"].notna().all() and plan["action_cost"].notna().all()
    assert any("next best action" in r for r in json.loads(plan.loc["C1", "reasons"]))


def test_a_formal_notice_stays_a_letter_even_for_high_stakes() -> None:
    result = run([inv("F1", "C1", 35, 9000.0)])
    msg = result.plan.iloc[0]
    assert (msg.step, msg.tone, msg.channel) == ("notice", "formal_notice", "letter")


def test_a_second_run_the_same_day_sees_the_first_runs_sends_through_the_ledger() -> None:
    rows = [inv("F1", "C1", 20)]
    first = run(rows).plan.iloc[0]
    # the contact state is built as of dawn: it does not know this morning's send; the ledger does
    later = decide(
        pd.DataFrame(rows),
        None,
        as_of_date=AS_OF,
        scenarios=NO_HOLDOUT,
        sent_keys={first.reminder_key},
        last_sends={"C1": pd.Timestamp(f"{AS_OF} 06:05")},
    )
    assert later.plan.empty
    assert decision(later, "C1")["decision"] == "wait"
    # a broken promise followed up this morning does not fall through to the scenario's step the same day
    broken = [{"customer_id": "C1", "promise_status": "broken", "promise_date": AS_OF - timedelta(days=9)}]
    escalation = run(rows, broken).plan.iloc[0]
    again = decide(
        pd.DataFrame(rows),
        pd.DataFrame(broken),
        as_of_date=AS_OF,
        scenarios=NO_HOLDOUT,
        sent_keys={escalation.reminder_key},
        last_sends={"C1": pd.Timestamp(f"{AS_OF} 06:05", tz="UTC")},
    )
    assert again.plan.empty
    assert decision(again, "C1")["rule"] == "min_days_between_messages"
    without_ledger = run(rows, broken, sent={escalation.reminder_key})
    assert without_ledger.plan.iloc[0].step == "second", "what the same-day rerun did before it read the ledger"


def test_a_dispute_raised_on_the_phone_pauses_the_customer() -> None:
    result = run([inv("F1", "C1", 20)], [{"customer_id": "C1", "last_call_outcome": "dispute"}])
    assert result.plan.empty
    assert decision(result, "C1")["rule"] == "dispute_pause"


def test_a_text_message_only_to_a_mobile_number() -> None:
    scenarios = parse_scenarios(
        "version: 1\nscenarios:\n  - name: s\n    steps:\n"
        "      - {name: first, day: 3, channels: [sms, email], tone: cordial}\n",
        "sms.yaml",
    )
    rows = [inv("F1", "C1", 5, phone="+33612345678"), inv("F2", "C2", 5, phone="+33199001234")]
    config = EngineConfig(enabled_channels=("email", "sms", "letter", "call"))
    plan = run(rows, scenarios=scenarios, config=config).plan.set_index("customer_id")
    assert plan.loc["C1", "channel"] == "sms"
    assert plan.loc["C2", "channel"] == "email", "a landline cannot receive an SMS"
