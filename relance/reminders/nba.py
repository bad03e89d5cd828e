"""Next best action: one channel per customer, maximising expected cash minus cost under the negotiators' capacity.

Input: one candidate row per (customer, allowed channel), with the customer's ``stakes`` (its total due) and
``p_paid_14`` (the response model's probability that the contact is followed by payment within 14 days, or the
scenario's default). For each candidate::

    expected_cash = stakes * p_paid_14
    action_cost   = ChannelCosts.cost(channel)   # a call: call_minutes * negotiator_cost_per_minute
    net_value     = expected_cash - action_cost

Each customer gets its best-net channel, except that calls are rationed by ``capacity_minutes`` (the day's
negotiator minutes). The allocation is greedy on the call's *marginal* gain over the customer's best non-call
channel (per minute; every call takes ``ChannelCosts.call_minutes``, so this is ranking by gain): calls go in
decreasing gain while minutes remain, and a customer who does not get one falls back to its best other channel.
With equal call lengths this greedy choice is exactly optimal (choosing at most k calls to maximise a sum of
independent gains is picking the k largest positive ones).

Decisions a collections manager would expect, documented because the issue is silent:

* **Every customer gets exactly one row.** The engine already decided to contact these customers (scenario step
  due, rules passed), so a customer whose best net value is <= 0 still gets its best-net channel (often the
  cheapest), flagged ``is_value_positive = False`` so the engine or the report can hold it back.
* A customer whose *only* allowed channel is a call is called in the same ranking as the others when minutes
  remain (even at a negative net value: it is the only way to reach it), after every call with a positive gain.
  When none remain its row has ``channel = None`` (nothing can be done today) and ``why`` says so.
* Ties: among a customer's channels, the first in ``CHANNEL_ORDER`` (cheapest first) wins; among calls of equal
  gain, the smaller ``customer_id`` (compared as text). The result is sorted by ``customer_id``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

CHANNEL_ORDER: tuple[str, ...] = ("email", "sms", "letter", "call")
REQUIRED_COLUMNS: tuple[str, ...] = ("customer_id", "channel", "stakes", "p_paid_14")
OUTPUT_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "channel",  # None only for a call-only customer when no negotiator minutes are left
    "stakes",
    "p_paid_14",
    "expected_cash",
    "action_cost",
    "net_value",
    "is_value_positive",
    "why",
    "call_minutes",  # negotiator minutes this action takes (0 unless a call)
    "call_rank",  # 1 = the most valuable call of the day (the call list's priority); <NA> for other channels
    "lost_call_to_capacity",  # the call was this customer's best action, but the day's minutes ran out
)
CURRENCY_SIGNS = {"EUR": "€", "GBP": "£", "USD": "$", "CHF": "CHF"}


@dataclass(frozen=True)
class ChannelCosts:
    """Cost of one action per channel, in the stakes' currency. A call costs the negotiator's minutes."""

    email: float = 0.02
    sms: float = 0.07
    letter: float = 1.80
    call_minutes: float = 8.0
    negotiator_cost_per_minute: float = 0.60

    def __post_init__(self) -> None:
        for name in ("email", "sms", "letter", "call_minutes", "negotiator_cost_per_minute"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"ChannelCosts.{name} must be a finite number >= 0, got {value!r}")

    def cost(self, channel: str) -> float:
        if channel == "call":
            return self.call_minutes * self.negotiator_cost_per_minute
        if channel in ("email", "sms", "letter"):
            return float(getattr(self, channel))
        raise ValueError(f"unknown channel {channel!r}; expected one of {CHANNEL_ORDER}")

    def minutes(self, channel: str) -> float:
        return self.call_minutes if channel == "call" else 0.0


def _calls_that_fit(capacity_minutes: float, call_minutes: float, wanted: int) -> int:
    """The largest n <= wanted with n * call_minutes <= capacity_minutes (exactly, in floating point)."""
    if call_minutes <= 0:
        return wanted
    n = min(wanted, int(math.floor(capacity_minutes / call_minutes)))
    while n > 0 and n * call_minutes > capacity_minutes:
        n -= 1
    while n < wanted and (n + 1) * call_minutes <= capacity_minutes:
        n += 1
    return n


def _money(value: float, currency: str | None) -> str:
    sign = CURRENCY_SIGNS.get((currency or "EUR").upper(), (currency or "").upper())
    digits = 2 if abs(value) < 10 else 0
    return f"{value:+,.{digits}f} {sign}".replace(",", "\u202f")


def _validate(candidates: pd.DataFrame, capacity_minutes: float) -> pd.DataFrame:
    missing = [c for c in REQUIRED_COLUMNS if c not in candidates.columns]
    if missing:
        raise ValueError(f"candidates lack column(s) {missing}; need {list(REQUIRED_COLUMNS)}")
    try:
        capacity = float(capacity_minutes)
    except (TypeError, ValueError):
        capacity = math.nan
    if not (math.isfinite(capacity) and capacity >= 0):
        raise ValueError(f"capacity_minutes must be a finite number >= 0, got {capacity_minutes!r}")
    frame = candidates.reset_index(drop=True).copy()
    frame["customer_id"] = frame["customer_id"].astype(str)
    frame["channel"] = frame["channel"].astype(str)
    unknown = sorted(set(frame["channel"]) - set(CHANNEL_ORDER))
    if unknown:
        raise ValueError(f"unknown channel(s) {unknown}; expected one of {list(CHANNEL_ORDER)}")
    frame["stakes"] = pd.to_numeric(frame["stakes"], errors="coerce").astype("float64")
    frame["p_paid_14"] = pd.to_numeric(frame["p_paid_14"], errors="coerce").astype("float64")
    bad_p = ~frame["p_paid_14"].between(0.0, 1.0)
    if bad_p.any():
        raise ValueError(f"p_paid_14 must be in [0, 1]: {frame.loc[bad_p, ['customer_id', 'channel']].head(5)}")
    bad_stakes = ~(frame["stakes"].ge(0.0) & np.isfinite(frame["stakes"]))
    if bad_stakes.any():
        raise ValueError(f"stakes must be finite and >= 0: {frame.loc[bad_stakes, ['customer_id', 'stakes']].head(5)}")
    duplicated = frame.duplicated(["customer_id", "channel"], keep=False)
    if duplicated.any():
        raise ValueError(
            "one candidate row per (customer_id, channel): duplicates for "
            f"{sorted(set(frame.loc[duplicated, 'customer_id']))[:5]}"
        )
    return frame


def choose_actions(candidates: pd.DataFrame, *, capacity_minutes: float, costs: ChannelCosts) -> pd.DataFrame:
    """One row per customer of ``candidates``: the chosen channel and its value (``OUTPUT_COLUMNS``; any other
    candidate column, e.g. tone or currency, is carried from the chosen row). See the module docstring."""
    frame = _validate(candidates, capacity_minutes)
    extra = [c for c in frame.columns if c not in (*REQUIRED_COLUMNS, *OUTPUT_COLUMNS)]
    if frame.empty:
        return pd.DataFrame(columns=[*OUTPUT_COLUMNS, *extra])

    frame["expected_cash"] = frame["stakes"] * frame["p_paid_14"]
    frame["action_cost"] = frame["channel"].map(costs.cost).astype("float64")
    frame["net_value"] = frame["expected_cash"] - frame["action_cost"]
    frame["_order"] = frame["channel"].map(CHANNEL_ORDER.index)
    # best first within a customer: highest net value, then the channel order
    frame = frame.sort_values(["customer_id", "net_value", "_order"], ascending=[True, False, True], kind="stable")
    is_call = frame["channel"].eq("call")
    first_other = frame.loc[~is_call].groupby("customer_id", sort=True).head(1)
    other_idx = pd.Series(first_other.index, index=first_other["customer_id"])
    call_idx = pd.Series(frame.index[is_call], index=frame.loc[is_call, "customer_id"])
    customers = pd.Index(sorted(frame["customer_id"].unique()), name="customer_id")
    net = frame["net_value"]

    # calls ranked by gain over the customer's best non-call channel (a call-only customer: over doing nothing)
    other_net = pd.Series(net.reindex(other_idx.to_numpy()).to_numpy(), index=other_idx.index)
    gain = pd.Series(net.reindex(call_idx.to_numpy()).to_numpy(), index=call_idx.index)
    call_only = ~gain.index.isin(other_idx.index)
    gain = gain - other_net.reindex(gain.index).fillna(0.0)
    ranking = pd.DataFrame({"customer_id": gain.index, "gain": gain.to_numpy(), "call_only": call_only})
    ranking = ranking.loc[(ranking["gain"] > 0) | ranking["call_only"]]
    ranking = ranking.sort_values(["gain", "customer_id"], ascending=[False, True], kind="stable")
    n_calls = _calls_that_fit(capacity_minutes, costs.call_minutes, len(ranking))
    granted = pd.Series(np.arange(1, len(ranking) + 1), index=ranking["customer_id"]).iloc[:n_calls]

    chosen_idx = other_idx.reindex(customers)
    chosen_idx.loc[granted.index] = call_idx.reindex(granted.index).to_numpy()
    reachable = chosen_idx.notna()
    chosen = frame.loc[chosen_idx[reachable].astype(frame.index.dtype).to_numpy()].set_index("customer_id")
    call_net = pd.Series(net.reindex(call_idx.to_numpy()).to_numpy(), index=call_idx.index).reindex(customers)

    out = pd.DataFrame(index=customers)
    out["channel"] = pd.Series(list(chosen["channel"].reindex(customers)), index=customers, dtype=object)
    out.loc[~reachable, "channel"] = None
    out["stakes"] = frame.groupby("customer_id", sort=True)["stakes"].first()
    for column in ("p_paid_14", "expected_cash", "action_cost", "net_value"):
        out[column] = chosen[column].reindex(customers)
    unreachable = ~reachable.to_numpy()
    out.loc[unreachable, ["expected_cash", "action_cost", "net_value"]] = 0.0
    out["is_value_positive"] = out["net_value"].gt(0).to_numpy() & reachable.to_numpy()
    out["call_minutes"] = np.where(out["channel"].eq("call"), costs.call_minutes, 0.0)
    out["call_rank"] = granted.reindex(customers).astype("Int64")
    out["lost_call_to_capacity"] = call_net.notna() & out["channel"].ne("call") & (call_net > out["net_value"])
    out.loc[unreachable, "lost_call_to_capacity"] = True
    calls_by_customer = frame.loc[is_call].set_index("customer_id")
    for column in extra:  # carried from the chosen row (a customer left without action: from its call row)
        out[column] = chosen[column].reindex(customers).where(reachable, calls_by_customer[column].reindex(customers))
    # the best channel not chosen, to say what the choice was weighed against
    alt = frame.loc[frame["channel"].to_numpy() != out["channel"].reindex(frame["customer_id"]).to_numpy()]
    alt = alt.groupby("customer_id", sort=True).head(1).set_index("customer_id").reindex(customers)
    currency = out["currency"] if "currency" in out.columns else pd.Series(None, index=customers, dtype=object)
    out["why"] = [
        _why(*args)
        for args in zip(
            out["channel"],
            out["net_value"],
            alt["channel"],
            alt["net_value"],
            out["lost_call_to_capacity"],
            call_net,
            currency,
            strict=True,
        )
    ]
    return out.reset_index()[[*OUTPUT_COLUMNS, *extra]]


def _why(
    channel: str | None,
    net: float,
    alt_channel: str | None,
    alt_net: float,
    lost_call: bool,
    call_net: float,
    currency: str | None,
) -> str:
    """The short reason a collector reads beside the chosen action."""
    currency = currency if isinstance(currency, str) else None
    if not isinstance(channel, str):
        return (
            f"no action: a call is the only allowed channel ({_money(call_net, currency)} net) and no negotiator "
            "minutes are left today"
        )
    if lost_call:
        why = (
            f"{channel}: {_money(net, currency)} expected net (a call would give {_money(call_net, currency)} but "
            "no negotiator minutes were left for it today)"
        )
    elif not isinstance(alt_channel, str):
        why = f"{channel}: {_money(net, currency)} expected net (the only allowed channel)"
    else:
        why = f"{channel}: {_money(net, currency)} expected net vs {alt_channel} {_money(alt_net, currency)}"
    if net <= 0:
        why += "; no allowed channel has a positive expected value"
    return why
