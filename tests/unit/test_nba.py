"""Next best action: the most valuable channel per customer, calls rationed by negotiator minutes."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relance.reminders.nba import OUTPUT_COLUMNS, ChannelCosts, choose_actions

COSTS = ChannelCosts()  # call: 8 min x 0.60 = 4.80


def cands(*rows: tuple[str, str, float, float]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "channel", "stakes", "p_paid_14"])


def by_customer(result: pd.DataFrame) -> pd.DataFrame:
    return result.set_index("customer_id")


def test_call_goes_to_the_largest_gain_and_the_others_fall_back_to_their_best_channel():
    candidates = cands(
        ("builder", "email", 4000, 0.10),  # +399.98
        ("builder", "call", 4000, 0.35),  # +1395.20: gain 995.22 over email
        ("shop", "email", 3000, 0.10),  # +299.98
        ("shop", "letter", 3000, 0.15),  # +448.20
        ("shop", "call", 3000, 0.30),  # +895.20: gain 447.00 over the letter
        ("cafe", "email", 200, 0.20),  # +39.98
        ("cafe", "call", 200, 0.30),  # +55.20: gain 15.22
    )
    out = by_customer(choose_actions(candidates, capacity_minutes=8, costs=COSTS))
    assert list(out.reset_index().columns) == list(OUTPUT_COLUMNS)
    assert out["channel"].to_dict() == {"builder": "call", "cafe": "email", "shop": "letter"}
    assert out.loc["builder", "expected_cash"] == pytest.approx(1400.0)
    assert out.loc["builder", "action_cost"] == pytest.approx(4.80)
    assert out.loc["builder", "net_value"] == pytest.approx(1395.20)
    assert out.loc["builder", "call_rank"] == 1 and out.loc["builder", "call_minutes"] == 8.0
    assert out.loc["builder", "why"] == "call: +1\u202f395 € expected net vs email +400 €"
    assert out.loc["shop", "lost_call_to_capacity"] and out.loc["cafe", "lost_call_to_capacity"]
    assert "a call would give +895 €" in out.loc["shop", "why"]
    assert out["call_minutes"].sum() == 8.0

    more = by_customer(choose_actions(candidates, capacity_minutes=23.9, costs=COSTS))  # two calls fit, not three
    assert more["channel"].to_dict() == {"builder": "call", "cafe": "email", "shop": "call"}
    assert more.loc[["builder", "shop"], "call_rank"].tolist() == [1, 2]
    assert more["call_minutes"].sum() == 16.0


def test_a_call_that_is_not_worth_its_minutes_is_not_made_even_with_capacity():
    candidates = cands(("a", "email", 100, 0.20), ("a", "call", 100, 0.24))  # +19.98 vs +19.20
    out = by_customer(choose_actions(candidates, capacity_minutes=480, costs=COSTS))
    assert out.loc["a", "channel"] == "email"
    assert not out.loc["a", "lost_call_to_capacity"]
    assert out["call_minutes"].sum() == 0


def test_a_customer_without_positive_value_still_gets_its_best_channel_flagged():
    candidates = cands(("tiny", "email", 0.05, 0.1), ("tiny", "letter", 0.05, 0.5), ("ok", "email", 500, 0.2))
    out = by_customer(choose_actions(candidates, capacity_minutes=0, costs=COSTS))
    assert out.loc["tiny", "channel"] == "email"  # the least negative: -0.015 vs -1.775
    assert out.loc["tiny", "net_value"] == pytest.approx(0.005 - 0.02)
    assert not out.loc["tiny", "is_value_positive"]
    assert "no allowed channel has a positive expected value" in out.loc["tiny", "why"]
    assert out.loc["ok", "is_value_positive"]
    assert out.loc["ok", "why"] == "email: +100 € expected net (the only allowed channel)"


def test_a_call_only_customer_is_called_when_minutes_remain_else_gets_no_action():
    candidates = cands(("x", "call", 50, 0.05), ("y", "email", 9000, 0.1), ("y", "call", 9000, 0.3))
    out = by_customer(choose_actions(candidates, capacity_minutes=16, costs=COSTS))
    # y's call gain (1795) ranks first; x is called with the remaining minutes though its net is negative
    assert out.loc["y", "call_rank"] == 1 and out.loc["x", "call_rank"] == 2
    assert out.loc["x", "channel"] == "call" and not out.loc["x", "is_value_positive"]
    out = by_customer(choose_actions(candidates, capacity_minutes=8, costs=COSTS))
    assert out.loc["x", "channel"] is None
    assert out.loc["x", "lost_call_to_capacity"] and out.loc["x", "net_value"] == 0.0
    assert out.loc["x", "why"].startswith("no action: a call is the only allowed channel")


def test_ties_are_broken_by_customer_id_then_channel_order_whatever_the_input_order():
    candidates = cands(
        ("b", "call", 1000, 0.5),
        ("b", "email", 1000, 0.1),
        ("a", "email", 1000, 0.1),
        ("a", "call", 1000, 0.5),
        ("c", "sms", 1000, 0.1),  # sms and email worth the same gross: email is cheaper
        ("c", "email", 1000, 0.1),
        ("d", "letter", 1000, 0.1),
        ("d", "sms", 1000, 0.1 + (1.80 - 0.07) / 1000),  # exactly equal net: sms first in channel order
    )
    first = choose_actions(candidates, capacity_minutes=8, costs=COSTS)
    out = by_customer(first)
    assert out.loc["a", "channel"] == "call" and out.loc["b", "channel"] == "email"
    assert out.loc["c", "channel"] == "email"
    assert out.loc["d", "channel"] == "sms"
    assert first["customer_id"].tolist() == ["a", "b", "c", "d"]
    for seed in range(3):
        shuffled = choose_actions(candidates.sample(frac=1.0, random_state=seed), capacity_minutes=8, costs=COSTS)
        pd.testing.assert_frame_equal(shuffled, first)


def test_other_columns_are_carried_and_currency_is_shown():
    candidates = cands(("a", "email", 1000, 0.1), ("a", "sms", 1000, 0.2)).assign(
        tone=["cordial", "firm"], currency="GBP"
    )
    out = by_customer(choose_actions(candidates, capacity_minutes=0, costs=COSTS))
    assert out.loc["a", "tone"] == "firm"
    assert out.loc["a", "why"] == "sms: +200 £ expected net vs email +100 £"


@pytest.mark.parametrize(
    ("rows", "capacity", "message"),
    [
        ([("a", "fax", 1, 0.1)], 8, "unknown channel"),
        ([("a", "email", 1, 1.5)], 8, "p_paid_14 must be in"),
        ([("a", "email", -1, 0.5)], 8, "stakes must be"),
        ([("a", "email", 1, 0.5), ("a", "email", 2, 0.5)], 8, "one candidate row per"),
        ([("a", "email", 1, 0.5)], -1, "capacity_minutes"),
    ],
)
def test_invalid_candidates_are_refused(rows, capacity, message):
    with pytest.raises(ValueError, match=message):
        choose_actions(cands(*rows), capacity_minutes=capacity, costs=COSTS)


def test_costs_are_validated():
    with pytest.raises(ValueError, match="negotiator_cost_per_minute"):
        ChannelCosts(negotiator_cost_per_minute=-1)
    assert ChannelCosts().cost("call") == pytest.approx(4.8)


# --- properties: capacity, one row per customer, optimality against brute force -------------------------------

NON_CALL = ("email", "sms", "letter")


@st.composite
def instances(draw, *, allow_call_only: bool):
    n = draw(st.integers(1, 6))
    rows = []
    for i in range(n):
        others = draw(st.lists(st.sampled_from(NON_CALL), unique=True, min_size=0 if allow_call_only else 1))
        has_call = draw(st.booleans()) or not others
        stakes = draw(st.floats(0, 20_000, allow_nan=False))
        for channel in (*others, *(("call",) if has_call else ())):
            p = draw(st.floats(0, 1, allow_nan=False))
            rows.append((f"c{i:02d}", channel, stakes, p))
    minutes = draw(st.integers(1, 15))
    capacity = draw(st.floats(0, 60, allow_nan=False))
    costs = ChannelCosts(call_minutes=float(minutes), negotiator_cost_per_minute=draw(st.floats(0, 2)))
    return cands(*rows), capacity, costs


def best_total(candidates: pd.DataFrame, capacity: float, costs: ChannelCosts) -> float:
    """Brute force: every set of customers that fits the minutes gets its call, the others their best non-call."""
    net = candidates.assign(net=candidates["stakes"] * candidates["p_paid_14"] - candidates["channel"].map(costs.cost))
    other = net.loc[net["channel"] != "call"].groupby("customer_id")["net"].max()
    call = net.loc[net["channel"] == "call"].set_index("customer_id")["net"]
    best = -np.inf
    for k in range(len(call) + 1):
        if k * costs.call_minutes > capacity:
            break
        for chosen in itertools.combinations(call.index, k):
            total = call.loc[list(chosen)].sum() + other.drop(list(chosen)).sum()
            best = max(best, total)
    return float(best)


@settings(max_examples=60, deadline=None)
@given(instances(allow_call_only=False))
def test_greedy_allocation_is_optimal_and_respects_capacity(instance):
    candidates, capacity, costs = instance
    out = choose_actions(candidates, capacity_minutes=capacity, costs=costs)
    assert out["customer_id"].tolist() == sorted(candidates["customer_id"].unique())
    assert out["call_minutes"].sum() <= capacity
    allowed = set(zip(candidates["customer_id"], candidates["channel"], strict=True))
    assert all((c, ch) in allowed for c, ch in zip(out["customer_id"], out["channel"], strict=True))
    total = out["net_value"].sum()
    assert total == pytest.approx(best_total(candidates, capacity, costs), rel=1e-9, abs=1e-6)
    no_calls = choose_actions(candidates.loc[candidates["channel"] != "call"], capacity_minutes=0, costs=costs)
    assert total >= no_calls["net_value"].sum() - 1e-6


@settings(max_examples=40, deadline=None)
@given(instances(allow_call_only=True))
def test_capacity_holds_and_every_customer_gets_one_row_with_call_only_customers(instance):
    candidates, capacity, costs = instance
    out = choose_actions(candidates, capacity_minutes=capacity, costs=costs)
    assert out["customer_id"].tolist() == sorted(candidates["customer_id"].unique())
    assert out["call_minutes"].sum() <= capacity
    ranks = sorted(int(r) for r in out["call_rank"].dropna())
    assert ranks == list(range(1, len(ranks) + 1))
    assert (out["channel"] == "call").sum() == len(ranks)
    # a customer left without action is call-only, and only because the minutes ran out
    idle = out.loc[out["channel"].isna(), "customer_id"]
    channels = candidates.groupby("customer_id")["channel"].apply(set)
    assert all(channels[c] == {"call"} for c in idle)
    if len(idle):
        assert (len(ranks) + 1) * costs.call_minutes > capacity
