"""Today's messages from the warehouse: what the send flow calls between the dbt build and delivery.

Reads the named relations dbt built (``serving.collection_worklist``, ``serving.customer_contact_state``,
``serving.reminder_response_history``, ``serving.customer_risk_events``), fits the channel-response model on the
history when there is enough of it, runs :func:`relance.reminders.engine.decide`, adds talking points to the call
tasks and records the decisions and experiment arms in ``ops``. No Prefect here: a flow, the CLI and tests call it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import duckdb
import pandas as pd

from relance import ops
from relance.reminders.engine import Decisions, EngineConfig, decide
from relance.reminders.gate import read_contact_state
from relance.reminders.scenarios import ScenarioSet
from relance.send_ledger import SendLedger
from relance.warehouse import read_for_date, relation_exists

log = logging.getLogger(__name__)

HISTORY_RELATION = "serving.reminder_response_history"
RISK_EVENTS_RELATION = "serving.customer_risk_events"


@dataclass
class PlanningResult:
    decisions: Decisions
    response_model: Any = None  # relance.reminders.response_model.ResponseModel, or None
    response_note: str = ""
    history_rows: int = 0
    new_assignments: int = 0
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def plan(self) -> pd.DataFrame:
        return self.decisions.plan


def fit_channel_model(con: duckdb.DuckDBPyConnection, *, min_rows: int) -> tuple[Any, str, int]:
    """(model or None, a sentence on why, rows of history)."""
    if not relation_exists(con, HISTORY_RELATION):
        return None, f"{HISTORY_RELATION} not built yet: the scenarios' default channels apply", 0
    history = con.execute(f"SELECT * FROM {HISTORY_RELATION}").df()
    from relance.reminders.response_model import fit_response_model

    model = fit_response_model(history, min_rows=min_rows)
    if model is None:
        return (
            None,
            f"{len(history):,} past contacts with a known outcome (< {min_rows:,}): default channels",
            len(history),
        )
    metrics = ", ".join(f"{k} {v:.3f}" for k, v in sorted(model.metrics.items()) if isinstance(v, int | float))
    return model, f"channel-response model on {len(history):,} past contacts ({metrics})", len(history)


def _risk_events(con: duckdb.DuckDBPyConnection, customer_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    if not customer_ids or not relation_exists(con, RISK_EVENTS_RELATION):
        return {}
    frame = con.execute(
        f"SELECT * FROM {RISK_EVENTS_RELATION} WHERE list_contains(?, customer_id)", [customer_ids]
    ).df()
    out: dict[str, list[dict[str, Any]]] = {}
    for rec in frame.to_dict("records"):
        out.setdefault(str(rec["customer_id"]), []).append(rec)
    return out


def add_talking_points(con: duckdb.DuckDBPyConnection, plan: pd.DataFrame, contacts: pd.DataFrame) -> pd.DataFrame:
    """A negotiator's talking points on every call task (invoices, history, reasons, risk events)."""
    calls = plan["channel"].eq("call")
    if plan.empty or not calls.any():
        return plan.assign(talking_points=None) if "talking_points" not in plan.columns else plan
    from relance.reminders.talking_points import build_talking_points

    by_customer = {str(r["customer_id"]): r for r in contacts.to_dict("records")} if not contacts.empty else {}
    events = _risk_events(con, plan.loc[calls, "customer_id"].astype(str).unique().tolist())
    points: list[str | None] = []
    for row in plan.to_dict("records"):
        if row["channel"] != "call":
            points.append(None)
            continue
        cid = str(row["customer_id"])
        points.append(build_talking_points(row, by_customer.get(cid), events.get(cid, [])))
    return plan.assign(talking_points=points)


def last_sends(ledger: SendLedger) -> dict[str, datetime]:
    """customer -> the latest moment relance sent it something (sent or in flight), from the send ledger."""
    frame = ledger.frame()
    frame = frame[frame["status"].isin(["sent", "sending"]) & frame["customer_id"].notna()]
    if frame.empty:
        return {}
    moments = pd.to_datetime(frame["sent_at"]).fillna(pd.to_datetime(frame["claimed_at"]))
    latest = moments.groupby(frame["customer_id"].astype(str)).max().dropna()
    return {str(k): v.to_pydatetime() for k, v in latest.items()}


def plan_messages(
    con: duckdb.DuckDBPyConnection,
    *,
    as_of_date: date,
    scenarios: ScenarioSet,
    config: EngineConfig,
    sent_keys: Set[str],
    response_min_history: int,
    last_sends: Mapping[str, Any] | None = None,
    flow_run_id: str | None = None,
    now: datetime | None = None,
) -> PlanningResult:
    """Decide today's messages and record the decisions (see the module docstring)."""
    worklist = read_for_date(con, "serving.collection_worklist", as_of_date)
    contacts = read_contact_state(con)
    try:
        model, note, rows = fit_channel_model(con, min_rows=response_min_history)
    except Exception as exc:  # a model that cannot be fitted must not stop reminders: the defaults apply
        log.exception("channel-response model not fitted; the scenarios' default channels apply")
        model, note, rows = None, f"channel-response model failed ({type(exc).__name__}: {exc}): defaults", 0
    log.info("%s", note)
    decisions = decide(
        worklist,
        contacts,
        as_of_date=as_of_date,
        scenarios=scenarios,
        config=config,
        response_model=model,
        sent_keys=sent_keys,
        last_sends=last_sends,
    )
    decisions.plan = add_talking_points(con, decisions.plan, contacts)
    at = (now or datetime.now(UTC)).replace(tzinfo=None)
    ops.record_decisions(con, decisions.decisions, at=at, flow_run_id=flow_run_id)
    new_arms = ops.record_assignments(con, decisions.assignments, as_of=as_of_date)
    summary = {
        "customers": len(decisions.decisions),
        "messages": len(decisions.plan),
        "decisions": decisions.counts,
        "rules": decisions.rule_counts(),
        "grouped_messages": int((decisions.plan["invoice_count"] > 1).sum()) if not decisions.plan.empty else 0,
        "channels": decisions.plan["channel"].value_counts().to_dict() if not decisions.plan.empty else {},
        "scenarios": json.dumps(scenarios.names),
    }
    return PlanningResult(decisions, model, note, rows, new_arms, summary)
