"""The reminder engine: one decision per customer and day, from its scenario, its reactions and the models.

For every customer with open invoices (``serving.collection_worklist``) and what it did lately
(``serving.customer_contact_state``), :func:`decide` says ``send`` (one message, grouping every invoice it owes into
a statement of account, at the level of its most advanced invoice), ``wait`` (nothing due yet, a step already sent,
too soon after the last contact, too small to chase), ``pause`` (a promise to pay until its date plus a grace period,
every invoice disputed), ``stop`` (collective procedure, do not contact, no way to reach it) or ``holdout`` (drawn
into the scenario's randomised control group). Every decision carries its reasons; the daily flow writes them to
``ops.reminder_decisions``, so "why did this customer get (or not get) a letter?" has an answer.

The order of the checks, per customer (each is a rule of the scenario or a fact from dbt):

1. insolvency (``has_open_procedure``): stop, by law (L622-21); ``do_not_contact`` (suppressed on every channel):
   stop;
2. nothing owed once disputed invoices are left out: pause (disputes are a human matter) or nothing due;
3. the scenario: the first of the set whose ``when`` matches the customer (type, country, sector, amounts,
   exposure, risk grade, predicted days late), and its experiment arm (a pure function of a salt, the scenario and
   the customer: reproducible, recorded in ``ops.experiment_assignments``);
4. materiality (total due under the threshold): wait; an active promise: pause; holdout arm: no message;
5. a broken promise not yet followed up: an escalation message (its key includes the promise date: once per
   promise);
6. otherwise the most advanced step reached by the most advanced invoice, moved ``cadence_shift_days`` later when
   an email was opened or a partial payment came in since the last contact; a step is sent once per (customer,
   scenario, step, lead invoice) -- the ledger refuses a key twice -- and after the last step the scenario's
   ``repeat`` cadence applies; nothing within ``min_days_between_messages`` of the last contact.

The channel: the step's allowed channels, minus those disabled, suppressed or without a recipient; a channel that
bounced is replaced by the scenario's fallback; a professional customer owing at least ``negotiator_min_due`` can
be called. With a channel-response model (:mod:`relance.reminders.response_model`, enough history), the
next-best-action optimiser (:mod:`relance.reminders.nba`) picks, for all customers at once, the channel maximising
expected cash collected within 14 days minus its cost, under the negotiators' daily minutes; without one, the
step's first channel, calls by priority up to capacity and the next channel for the others.

The rules checked just before each send (quiet hours, frequency caps, ...) are :mod:`relance.reminders.rules`: the
plan may be right in the morning and wrong at the moment of sending.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from relance.channels.sms import is_mobile
from relance.ops import PLAN_COLUMNS
from relance.reminders.nba import ChannelCosts, choose_actions
from relance.reminders.policy import _as_date, reminder_key
from relance.reminders.scenarios import Scenario, ScenarioSet, Step

log = logging.getLogger(__name__)

#: Columns the engine cannot work without (``serving.collection_worklist`` has them all).
REQUIRED_COLUMNS: tuple[str, ...] = (
    "invoice_id",
    "customer_id",
    "customer_name",
    "customer_type",
    "email",
    "phone",
    "currency",
    "open_amount",
    "due_date",
    "days_overdue",
    "is_disputed",
    "p_late",
)
#: Carried from the lead invoice to the plan when the worklist has them (rendering, call list, lineage).
CARRIED_COLUMNS: tuple[str, ...] = (
    "sector_section",
    "size_band",
    "country_code",
    "language",
    "risk_grade",
    "model_version",
    "model_run_id",
    "reason_1",
    "reason_2",
    "reason_3",
    "predicted_payment_date",
    "predicted_payment_date_p10",
    "predicted_payment_date_p90",
    "days_late_p50",
    # the postal address a letter is sent to (customers' optional address columns)
    "address_line1",
    "address_line2",
    "postal_code",
    "city",
)
DECISIONS: tuple[str, ...] = ("send", "wait", "pause", "stop", "holdout", "nothing_due")
#: ``ops.reminders_planned``'s plan columns, then what the channels and the call list render from.
PLAN_OUTPUT_COLUMNS: tuple[str, ...] = (
    *PLAN_COLUMNS,
    "scenario",
    "arm",
    "invoice_ids",
    "statement",
    "reasons",
    "expected_cash",
    "action_cost",
    "priority",
    "template",
    "customer_name",
    "customer_type",
    "email",
    "phone",
    "due_date",
    "days_overdue",
    "expected_exposure",
    "invoice_count",
    "sector_section",
    "size_band",
    "country_code",
    "language",
    "risk_grade",
    "reason_1",
    "reason_2",
    "reason_3",
    "predicted_payment_date",
    "predicted_payment_date_p10",
    "predicted_payment_date_p90",
    "last_contact_at",
    "address_line1",
    "address_line2",
    "postal_code",
    "city",
)
DECISION_COLUMNS: tuple[str, ...] = (
    "as_of_date",
    "customer_id",
    "decision",
    "scenario",
    "arm",
    "step",
    "channel",
    "reminder_key",
    "rule",
    "reasons",
)
ASSIGNMENT_COLUMNS: tuple[str, ...] = ("scenario", "customer_id", "arm", "draw", "salt", "holdout_fraction")


@dataclass(frozen=True)
class EngineConfig:
    """The engine's settings (``Settings`` maps onto it; every figure documented there)."""

    enabled_channels: tuple[str, ...] = ("email", "letter", "call")
    materiality_min: float = 15.0
    promise_grace_days: int = 3
    call_capacity_minutes: float = 480.0  # the negotiators' minutes for calls, per day
    max_messages: int = 100_000
    holdout_salt: str = "relance-holdout-v1"
    sms_region: str = "FR"  # region of phone numbers written without a country code
    costs: ChannelCosts = field(default_factory=ChannelCosts)  # what each message costs (the optimiser's table)

    def __post_init__(self) -> None:
        unknown = set(self.enabled_channels) - {"email", "sms", "letter", "call"}
        if unknown:
            raise ValueError(f"unknown channels {sorted(unknown)}; known: email, sms, letter, call")
        if self.materiality_min < 0 or self.promise_grace_days < 0 or self.call_capacity_minutes < 0:
            raise ValueError("materiality_min, promise_grace_days and call_capacity_minutes must be >= 0")
        if self.max_messages < 0:
            raise ValueError(f"max_messages must be >= 0, got {self.max_messages}")


@dataclass
class Decisions:
    """What :func:`decide` returns: the messages to send, one decision per customer, the experiment arms."""

    plan: pd.DataFrame
    decisions: pd.DataFrame
    assignments: pd.DataFrame

    @property
    def counts(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.decisions["decision"].value_counts().items()}

    def rule_counts(self) -> dict[str, int]:
        rules = self.decisions["rule"].dropna()
        return {k: int(v) for k, v in rules.value_counts().items()}


def group_reminder_key(customer_id: str, scenario: str, step: str, anchor: str) -> str:
    """Deterministic id of one grouped message: sha256 of the JSON list (customer, scenario, step, anchor). The
    anchor is the lead invoice (or the promise date for a broken-promise follow-up), so a step goes once per lead
    invoice and a new most-advanced invoice can start its own sequence."""
    payload = json.dumps(["customer", str(customer_id), scenario, step, str(anchor)], separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def holdout_draw(salt: str, scenario: str, customer_id: str) -> float:
    """A uniform draw in [0, 1) that is a pure function of its inputs: the same customer is in the same arm
    every day, on every machine, and an auditor can recompute it."""
    digest = hashlib.sha256(f"{salt}|{scenario}|{customer_id}".encode()).hexdigest()
    return int(digest[:15], 16) / float(16**15)


def _num(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def _text(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return str(value).strip()


def _flag(value: Any) -> bool:
    if value is None or (not isinstance(value, str | bool | np.bool_) and pd.isna(value)):
        return False
    return bool(value)


def _channels(value: Any) -> set[str]:
    return {c.strip() for c in _text(value).split(",") if c.strip()}


def _valid_email(value: str) -> bool:
    return "@" in value and not any(ch.isspace() for ch in value)


@dataclass
class _Action:
    customer_id: str
    scenario: Scenario
    arm: str
    step: str
    tone: str
    template: str
    channels: list[str]
    lead: dict[str, Any]
    statement: list[dict[str, Any]]
    total_due: float
    p_late: float
    reminder_key: str
    reasons: list[str]
    contact: Mapping[str, Any]
    days_overdue: float
    channel: str = ""
    expected_cash: float | None = None
    action_cost: float | None = None

    @property
    def priority(self) -> float:
        return self.total_due * (self.p_late if self.p_late == self.p_late else 0.0)


def _statement_line(inv: Mapping[str, Any]) -> dict[str, Any]:
    def iso(v: Any) -> str | None:
        d = _as_date(v)
        return d.isoformat() if d else None

    return {
        "invoice_id": str(inv["invoice_id"]),
        "issue_date": iso(inv.get("issue_date")),
        "due_date": iso(inv.get("due_date")),
        "amount": _num(inv.get("amount")),
        "open_amount": round(float(inv["_amount"]), 2),
        "days_overdue": int(inv["_d"]),
    }


def _check_columns(worklist: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in worklist.columns]
    if missing:
        raise ValueError(f"worklist is missing columns {missing}; expected serving.collection_worklist")


def decide(
    worklist: pd.DataFrame,
    contacts: pd.DataFrame | None,
    *,
    as_of_date: date,
    scenarios: ScenarioSet,
    config: EngineConfig | None = None,
    response_model: Any = None,
    sent_keys: Set[str] = frozenset(),
    last_sends: Mapping[str, Any] | None = None,
) -> Decisions:
    """Decide today's messages (see the module docstring). ``sent_keys``: keys already sent or in flight (the
    send ledger's ``handled_keys``), so a step is never planned twice. ``last_sends``: customer -> when relance last
    sent it something (the send ledger, up to this minute): the contact state is built as of the start of the day,
    so without it a second run of the same day would not see the first one's messages."""
    cfg = config or EngineConfig()
    _check_columns(worklist)
    contact_by_customer: dict[str, Mapping[str, Any]] = {}
    if contacts is not None and not contacts.empty:
        contact_by_customer = {str(r["customer_id"]): r for r in contacts.to_dict("records")}
    for customer_id, sent_at in (last_sends or {}).items():
        known = contact_by_customer.get(str(customer_id), {})
        previous = pd.Timestamp(known.get("last_contact_at")) if _text(known.get("last_contact_at")) else None
        latest = pd.Timestamp(sent_at)
        if latest.tzinfo is not None:
            latest = latest.tz_convert("UTC").tz_localize(None)
        if previous is not None and previous.tzinfo is not None:
            previous = previous.tz_convert("UTC").tz_localize(None)
        if previous is None or pd.isna(previous) or latest > previous:
            contact_by_customer[str(customer_id)] = {
                **known,
                "customer_id": str(customer_id),
                "last_contact_at": latest,
            }

    wl = worklist.reset_index(drop=True).copy()
    wl["_d"] = pd.to_numeric(wl["days_overdue"], errors="coerce").fillna(0).astype(float)
    wl["_amount"] = pd.to_numeric(wl["open_amount"], errors="coerce").fillna(0.0).astype(float)
    wl["_p"] = pd.to_numeric(wl["p_late"], errors="coerce")
    wl["_disputed"] = wl["is_disputed"].astype("boolean").fillna(False).astype(bool)
    wl["_insolvent"] = (
        wl["has_open_procedure"].astype("boolean").fillna(False).astype(bool)
        if "has_open_procedure" in wl.columns
        else False
    )
    wl["customer_id"] = wl["customer_id"].astype(str)
    wl["invoice_id"] = wl["invoice_id"].astype(str)

    decisions: list[dict[str, Any]] = []
    assignments: list[dict[str, Any]] = []
    actions: list[_Action] = []
    groups = _groups(wl, scenarios)
    for group_id, (customer_id, invoices, scenario_hint) in groups.items():
        contact = contact_by_customer.get(customer_id, {})
        outcome = _decide_one(
            group_id, customer_id, invoices, contact, scenario_hint, as_of_date, scenarios, cfg, sent_keys
        )
        decision, action, assignment = outcome
        if assignment is not None:
            assignments.append(assignment)
        if action is not None:
            actions.append(action)
        else:
            decisions.append(decision)

    sent, dropped = _choose_channels(actions, cfg, response_model)
    for action, rule, why in dropped:
        decisions.append(_row(action.customer_id, "stop" if rule == "no_channel" else "wait", action, rule, why))
    sent.sort(key=lambda a: (-a.priority, a.reminder_key))
    if len(sent) > cfg.max_messages:
        for action in sent[cfg.max_messages :]:
            decisions.append(_row(action.customer_id, "wait", action, "run_cap", ["over today's message cap"]))
        sent = sent[: cfg.max_messages]
    plan = _plan_frame(sent, as_of_date)
    for action in sent:
        decisions.append(_row(action.customer_id, "send", action, None, action.reasons, channel=action.channel))
    decision_frame = pd.DataFrame(decisions, columns=[c for c in DECISION_COLUMNS if c != "as_of_date"])
    decision_frame.insert(0, "as_of_date", as_of_date)
    # one decision per customer: a customer grouped per invoice keeps its first 'send', else its first reason
    order = decision_frame["decision"].map({"send": 0}).fillna(1)
    decision_frame = (
        decision_frame.assign(_o=order)
        .sort_values(["customer_id", "_o"], kind="mergesort")
        .drop_duplicates("customer_id")
        .drop(columns="_o")
        .reset_index(drop=True)
    )
    assignment_frame = pd.DataFrame(assignments, columns=list(ASSIGNMENT_COLUMNS)).drop_duplicates(
        ["scenario", "customer_id"]
    )
    log.info(
        "engine, %s: %d messages; decisions %s; rules %s",
        as_of_date,
        len(plan),
        decision_frame["decision"].value_counts().to_dict(),
        decision_frame["rule"].dropna().value_counts().to_dict(),
    )
    return Decisions(plan=plan, decisions=decision_frame, assignments=assignment_frame.reset_index(drop=True))


def _groups(wl: pd.DataFrame, scenarios: ScenarioSet) -> dict[str, tuple[str, list[dict[str, Any]], None]]:
    """Customer -> its invoices; a customer whose scenario groups per invoice is split per invoice later (in
    :func:`_decide_one`, once its scenario is known), so grouping here is always by customer."""
    out: dict[str, tuple[str, list[dict[str, Any]], None]] = {}
    records = wl.sort_values(["customer_id", "_d", "invoice_id"], ascending=[True, False, True]).to_dict("records")
    for rec in records:
        cid = rec["customer_id"]
        out.setdefault(cid, (cid, [], None))[1].append(rec)
    return out


def _facts(invoices: list[dict[str, Any]], owed: list[dict[str, Any]]) -> dict[str, Any]:
    lead = owed[0] if owed else invoices[0]
    total = float(sum(i["_amount"] for i in owed))
    ps = [i["_p"] for i in owed if i["_p"] == i["_p"]]
    p = max(ps) if ps else float("nan")
    return {
        "customer_type": _text(lead.get("customer_type")).upper(),
        "country_code": _text(lead.get("country_code")).upper() or None,
        "language": _text(lead.get("language")).lower() or None,
        "sector_section": _text(lead.get("sector_section")).upper() or None,
        "risk_grade": _text(lead.get("risk_grade")).upper() or None,
        "total_due": total,
        "exposure": total * (p if p == p else 0.0),
        "p_late": p if p == p else None,
        "predicted_days_late": _num(lead.get("days_late_p50")),
    }


def _decide_one(
    group_id: str,
    customer_id: str,
    invoices: list[dict[str, Any]],
    contact: Mapping[str, Any],
    _hint: None,
    as_of: date,
    scenarios: ScenarioSet,
    cfg: EngineConfig,
    sent_keys: Set[str],
) -> tuple[dict[str, Any], _Action | None, dict[str, Any] | None]:
    def nothing(decision: str, rule: str | None, reasons: list[str], scenario: Scenario | None = None, arm=None):
        row = {
            "customer_id": customer_id,
            "decision": decision,
            "scenario": scenario.name if scenario else None,
            "arm": arm,
            "step": None,
            "channel": None,
            "reminder_key": None,
            "rule": rule,
            "reasons": json.dumps(reasons, ensure_ascii=False),
        }
        return row, None, assignment

    assignment: dict[str, Any] | None = None
    if any(i["_insolvent"] for i in invoices):
        return nothing("stop", "insolvency_stop", ["collective procedure open: individual collection stops (L622-21)"])
    suppressed = _channels(contact.get("suppressed_channels"))
    if "*" in suppressed:
        return nothing("stop", "do_not_contact", ["do not contact this customer (suppressed on every channel)"])
    if _text(contact.get("last_call_outcome")) == "dispute":
        return nothing("pause", "dispute_pause", ["the customer disputed on the phone: a person handles it first"])
    owed = [i for i in invoices if not i["_disputed"] and i["_amount"] > 0]
    if not owed:
        if any(i["_disputed"] for i in invoices):
            return nothing("pause", "dispute_pause", ["every invoice still owed is disputed: a person handles it"])
        return nothing("nothing_due", None, ["nothing left to pay"])

    facts = _facts(invoices, owed)
    scenario = scenarios.select(facts)
    reasons = [f"scenario {scenario.name}"]
    arm = "treatment"
    if scenario.holdout_fraction > 0:
        draw = holdout_draw(cfg.holdout_salt, scenario.name, customer_id)
        arm = "holdout" if draw < scenario.holdout_fraction else "treatment"
        assignment = {
            "scenario": scenario.name,
            "customer_id": customer_id,
            "arm": arm,
            "draw": draw,
            "salt": cfg.holdout_salt,
            "holdout_fraction": scenario.holdout_fraction,
        }
    if facts["total_due"] < cfg.materiality_min:
        return nothing(
            "wait",
            "materiality",
            [*reasons, f"total due {facts['total_due']:.2f} under the materiality threshold {cfg.materiality_min:g}"],
            scenario,
            arm,
        )
    promise_status = _text(contact.get("promise_status"))
    promise_date = _as_date(contact.get("promise_date"))
    if promise_status == "active":
        until = promise_date + timedelta(days=cfg.promise_grace_days) if promise_date else None
        return nothing(
            "pause",
            "promise_pause",
            [*reasons, f"promised to pay by {promise_date}; paused until {until} (grace {cfg.promise_grace_days} d)"],
            scenario,
            arm,
        )
    if arm == "holdout":
        return nothing(
            "holdout", "holdout", [*reasons, "in the scenario's randomised holdout: no reminder"], scenario, arm
        )

    overdue = [i for i in owed if i["_d"] > 0]
    last_contact = _as_date(contact.get("last_contact_at"))
    days_since_contact = max((as_of - last_contact).days, 0) if last_contact else None

    units = [[i] for i in overdue or owed] if scenario.grouping == "invoice" else [overdue or owed]
    for unit in units:
        action = _step_action(
            customer_id, unit, facts, contact, scenario, arm, reasons, as_of, sent_keys, promise_status, promise_date
        )
        if isinstance(action, _Action):
            if days_since_contact is not None and days_since_contact < scenario.min_days_between_messages:
                return nothing(
                    "wait",
                    "min_days_between_messages",
                    [
                        *reasons,
                        f"last contact {days_since_contact} d ago (scenario waits "
                        f"{scenario.min_days_between_messages} d between messages)",
                    ],
                    scenario,
                    arm,
                )
            return {}, action, assignment
        last_reason = action
    return nothing("wait", None, [*reasons, last_reason], scenario, arm)


def _step_action(
    customer_id: str,
    unit: list[dict[str, Any]],
    facts: Mapping[str, Any],
    contact: Mapping[str, Any],
    scenario: Scenario,
    arm: str,
    reasons: list[str],
    as_of: date,
    sent_keys: Set[str],
    promise_status: str,
    promise_date: date | None,
) -> _Action | str:
    """The message due for this unit (the customer's invoices, or one invoice), or why there is none."""
    lead = unit[0]
    d_lead = lead["_d"]
    per_invoice = scenario.grouping == "invoice"

    def key(step_name: str, anchor: str) -> str:
        if per_invoice:
            return reminder_key(str(lead["invoice_id"]), f"{scenario.name}:{step_name}:{anchor}")
        return group_reminder_key(customer_id, scenario.name, step_name, anchor)

    def build(step: Step | None, name: str, channels: list[str], tone: str, k: str, why: list[str]) -> _Action:
        statement = [_statement_line(i) for i in unit if (i["_d"] > 0 or d_lead <= 0)]
        total = float(sum(i["_amount"] for i in unit))
        ps = [i["_p"] for i in unit if i["_p"] == i["_p"]]
        return _Action(
            customer_id=customer_id,
            scenario=scenario,
            arm=arm,
            step=name,
            tone=tone,
            template=(step.template_name if step else tone),
            channels=list(channels),
            lead=lead,
            statement=statement,
            total_due=round(total, 2),
            p_late=max(ps) if ps else float("nan"),
            reminder_key=k,
            reasons=[*reasons, *why],
            contact=contact,
            days_overdue=d_lead,
        )

    # a broken promise, followed up once per promise
    if promise_status == "broken" and d_lead > 0:
        k = key("broken_promise", str(promise_date))
        if k not in sent_keys:
            esc = scenario.escalation
            return build(
                None,
                "broken_promise",
                esc.broken_promise_channels,
                esc.broken_promise_tone,
                k,
                [f"promise to pay by {promise_date} broken: escalation"],
            )

    if d_lead <= 0:
        pre = scenario.pre_due_step
        if pre is None or d_lead < pre.day:
            return "nothing overdue yet"
        if pre.when is not None and not pre.when.matches(facts):
            return f"nothing overdue; step {pre.name} does not apply (its conditions)"
        k = key(pre.name, str(lead["invoice_id"]))
        if k in sent_keys:
            return f"step {pre.name} already sent for invoice {lead['invoice_id']}"
        return build(pre, pre.name, pre.channels, pre.tone, k, [f"invoice {lead['invoice_id']} due in {-d_lead:g} d"])

    shift = 0
    shifted_by: list[str] = []
    if _flag(contact.get("is_opened_since_last_contact")):
        shifted_by.append("an email was opened")
    if _flag(contact.get("is_partial_payment_since_last_contact")):
        shifted_by.append("a partial payment came in")
    if shifted_by:
        shift = scenario.cadence_shift_days
    d_eff = d_lead - shift
    why_shift = [f"cadence {shift} d later: {' and '.join(shifted_by)} since the last contact"] if shift else []
    reached = [s for s in scenario.overdue_steps if s.day <= d_eff and (s.when is None or s.when.matches(facts))]
    if not reached:
        first = scenario.overdue_steps[0] if scenario.overdue_steps else None
        return f"first step on day {first.day + shift}" if first else "no overdue step"
    step = reached[-1]
    anchor = str(lead["invoice_id"])
    lead_why = f"invoice {anchor} is {d_lead:g} d overdue: step {step.name} (day {step.day})"
    k = key(step.name, anchor)
    if k not in sent_keys:
        return build(step, step.name, step.channels, step.tone, k, [lead_why, *why_shift])
    last = scenario.overdue_steps[-1]
    if step is not last:
        nxt = scenario.overdue_steps[scenario.overdue_steps.index(step) + 1]
        return f"step {step.name} sent; next ({nxt.name}) on day {nxt.day + shift}"
    rep = scenario.repeat
    if rep is None or rep.max_times == 0:
        return f"last step {step.name} sent; the scenario has no repeat"
    n = int((d_eff - last.day) // rep.every_days)
    if n < 1:
        return f"last step {step.name} sent; first repeat on day {last.day + rep.every_days + shift}"
    n = min(n, rep.max_times)
    name = f"{last.name}_repeat_{n}"
    k = key(name, anchor)
    if k in sent_keys:
        if n >= rep.max_times:
            return f"every repeat sent ({rep.max_times}); a person takes over"
        return f"repeat {n} sent; next on day {last.day + (n + 1) * rep.every_days + shift}"
    return build(
        None, name, rep.channels, rep.tone, k, [f"{lead_why}; repeat {n} of {rep.max_times} after it", *why_shift]
    )


def _possible_channels(action: _Action, cfg: EngineConfig) -> tuple[list[str], list[str]]:
    """(channels possible for this message in order of preference, reasons for what was changed)."""
    contact, lead, esc = action.contact, action.lead, action.scenario.escalation
    suppressed = _channels(contact.get("suppressed_channels"))
    bounced = _channels(contact.get("bounced_channels"))
    email_ok = _valid_email(_text(lead.get("email")))
    phone_ok = bool(_text(lead.get("phone")))
    why: list[str] = []

    def reachable(channel: str) -> bool:
        if channel not in cfg.enabled_channels or channel in suppressed:
            return False
        if channel == "email":
            return email_ok and channel not in bounced
        if channel == "sms":  # a landline cannot receive a text message
            return phone_ok and channel not in bounced and is_mobile(_text(lead.get("phone")), cfg.sms_region)
        if channel == "call":
            return phone_ok and channel not in bounced
        return True

    wanted = list(action.channels)
    for channel in list(wanted):
        if channel in bounced or channel in suppressed:
            replacement = next((c for c in esc.bounce_fallback if reachable(c) and c not in wanted), None)
            state = "bounced" if channel in bounced else "suppressed"
            why.append(f"{channel} {state}" + (f": {replacement} instead" if replacement else ""))
            if replacement:
                wanted.insert(wanted.index(channel) + 1, replacement)
    high_stakes = (
        esc.negotiator_min_due is not None
        and action.tone != "formal_notice"  # a formal notice is a letter: it must exist in writing
        and action.days_overdue > 0
        and _text(lead.get("customer_type")).upper() == "B2B"
        and action.total_due >= esc.negotiator_min_due
    )
    if high_stakes and "call" not in wanted and reachable("call"):
        wanted.insert(0, "call")
        why.append(f"high stakes ({action.total_due:,.2f} >= {esc.negotiator_min_due:,.0f}): a negotiator may call")
    possible = [c for c in wanted if reachable(c)]
    return possible, why


def _choose_channels(
    actions: list[_Action], cfg: EngineConfig, response_model: Any
) -> tuple[list[_Action], list[tuple[_Action, str, list[str]]]]:
    """Pick one channel per message; returns (actions with a channel, [(action, rule, reasons)] dropped)."""
    dropped: list[tuple[_Action, str, list[str]]] = []
    ready: list[tuple[_Action, list[str]]] = []
    for action in actions:
        possible, why = _possible_channels(action, cfg)
        action.reasons.extend(why)
        if not possible:
            dropped.append(
                (action, "no_channel", [*action.reasons, "no reachable channel among " + str(action.channels)])
            )
            continue
        ready.append((action, possible))
    if not ready:
        return [], dropped

    scored = _nba(ready, cfg, response_model, dropped) if response_model is not None else None
    if scored is not None:
        return scored, dropped
    # no model: the first possible channel; calls by priority up to capacity, the next channel for the others
    costs = cfg.costs
    minutes_left = cfg.call_capacity_minutes
    chosen: list[_Action] = []
    for action, possible in sorted(ready, key=lambda pair: (-pair[0].priority, pair[0].reminder_key)):
        channel = possible[0]
        if channel == "call":
            if minutes_left >= costs.call_minutes:
                minutes_left -= costs.call_minutes
            else:
                others = [c for c in possible if c != "call"]
                if not others:
                    dropped.append((action, "call_capacity", [*action.reasons, "no negotiator time left today"]))
                    continue
                channel = others[0]
                action.reasons.append(f"no negotiator time left today: {channel} instead of a call")
        action.channel = channel
        action.action_cost = round(costs.cost(channel), 4)
        action.reasons.append(f"channel {channel}: the scenario's default (no response model yet)")
        chosen.append(action)
    return chosen, dropped


def _nba(
    ready: list[tuple[_Action, list[str]]],
    cfg: EngineConfig,
    model: Any,
    dropped: list[tuple[_Action, str, list[str]]],
) -> list[_Action] | None:
    """Next best action over every message at once (helper modules: response model + optimiser)."""

    model_channels = set(getattr(model, "channels", ()))
    rows: list[dict[str, Any]] = []
    for action, possible in ready:
        for channel in possible:
            if channel not in model_channels:
                continue
            lead = action.lead
            rows.append(
                {
                    "customer_id": action.reminder_key,  # one decision per message
                    "channel": channel,
                    "tone": action.tone,
                    "days_overdue_at_send": action.days_overdue,
                    "amount": action.total_due,
                    "customer_type": _text(lead.get("customer_type")).upper() or None,
                    "sector_section": _text(lead.get("sector_section")).upper() or None,
                    "size_band": _text(lead.get("size_band")) or None,
                    "country_code": _text(lead.get("country_code")).upper() or None,
                    "prior_contacts": int(_num(lead.get("reminder_count")) or 0),
                    "stakes": action.total_due,
                }
            )
    if not rows:
        return None
    candidates = pd.DataFrame(rows)
    candidates["p_paid_14"] = model.predict(candidates)
    choice = choose_actions(candidates, capacity_minutes=cfg.call_capacity_minutes, costs=cfg.costs)
    by_key = {str(r["customer_id"]): r for r in choice.to_dict("records")}
    chosen: list[_Action] = []
    for action, possible in ready:
        pick = by_key.get(action.reminder_key)
        if pick is not None and not _text(pick.get("channel")):  # a call-only message with no minutes left
            dropped.append((action, "call_capacity", [*action.reasons, "no negotiator time left today"]))
            continue
        if pick is None:  # none of its channels is scored: the scenario's default
            action.channel = next((c for c in possible if c != "call"), possible[0])
            action.action_cost = round(cfg.costs.cost(action.channel), 4)
            action.reasons.append(f"channel {action.channel}: the scenario's default (not scored)")
        else:
            action.channel = str(pick["channel"])
            action.expected_cash = round(float(pick["expected_cash"]), 2)
            action.action_cost = round(float(pick["action_cost"]), 4)
            action.reasons.append(f"next best action: {pick.get('why') or action.channel}")
        chosen.append(action)
    return chosen


def _row(
    customer_id: str, decision: str, action: _Action, rule: str | None, reasons: Sequence[str], channel=None
) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "decision": decision,
        "scenario": action.scenario.name,
        "arm": action.arm,
        "step": action.step,
        "channel": channel,
        "reminder_key": action.reminder_key if decision == "send" else None,
        "rule": rule,
        "reasons": json.dumps(list(reasons), ensure_ascii=False),
    }


def _recipient(action: _Action) -> str:
    lead = action.lead
    if action.channel == "email":
        return _text(lead.get("email"))
    if action.channel in ("sms", "call"):
        return _text(lead.get("phone"))
    return _text(lead.get("customer_name"))


def _plan_frame(actions: list[_Action], as_of: date) -> pd.DataFrame:
    rows = []
    for a in actions:
        lead = a.lead
        row = {
            "reminder_key": a.reminder_key,
            "invoice_id": str(lead["invoice_id"]),
            "customer_id": a.customer_id,
            "as_of_date": as_of,
            "step": a.step,
            "channel": a.channel,
            "tone": a.tone,
            "p_late": a.p_late,
            "open_amount": a.total_due,
            "currency": _text(lead.get("currency")).upper(),
            "recipient": _recipient(a),
            "model_version": lead.get("model_version"),
            "model_run_id": lead.get("model_run_id"),
            "scenario": a.scenario.name,
            "arm": a.arm,
            "invoice_ids": json.dumps([line["invoice_id"] for line in a.statement]),
            "statement": json.dumps(a.statement, ensure_ascii=False),
            "reasons": json.dumps(a.reasons, ensure_ascii=False),
            "expected_cash": a.expected_cash,
            "action_cost": a.action_cost,
            "priority": round(a.priority, 2),
            "template": a.template,
            "customer_name": lead.get("customer_name"),
            "customer_type": lead.get("customer_type"),
            "email": lead.get("email"),
            "phone": lead.get("phone"),
            "due_date": _as_date(lead.get("due_date")),
            "days_overdue": a.days_overdue,
            "expected_exposure": round(a.priority, 2),
            "invoice_count": len(a.statement),
            "last_contact_at": a.contact.get("last_contact_at"),
        }
        for column in CARRIED_COLUMNS:
            if column in PLAN_OUTPUT_COLUMNS and column not in row:
                value = lead.get(column)
                row[column] = None if value is None or (not isinstance(value, str) and pd.isna(value)) else value
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(PLAN_OUTPUT_COLUMNS))
    return frame.reset_index(drop=True)
