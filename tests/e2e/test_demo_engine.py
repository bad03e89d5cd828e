"""The reminder engine in the README demo: grouped reminders with a statement, a customer paused by its promise to
pay, an escalation after a broken promise, a call list with talking points, one decision per customer with its
reasons, and nothing sent that the rules forbid. Reads the shared demo run only."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd

from relance.tabular_output import read_csv_records
from tests.e2e.conftest import AS_OF, DemoRun


def _df(warehouse: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).df()


def test_every_customer_with_open_invoices_has_one_decision_with_reasons(demo_run: DemoRun) -> None:
    warehouse = demo_run.data / "warehouse.duckdb"
    decisions = _df(warehouse, f"select * from ops.reminder_decisions where as_of_date = date '{AS_OF}'")
    customers = _df(warehouse, "select distinct customer_id from serving.collection_worklist")
    assert set(decisions["customer_id"]) == set(customers["customer_id"])
    assert decisions["customer_id"].is_unique
    assert all(json.loads(r) for r in decisions["reasons"]), "every decision says why"
    assert {"send", "wait", "pause", "stop"} <= set(decisions["decision"])
    planned = _df(warehouse, f"select reminder_key from ops.reminders_planned where as_of_date = date '{AS_OF}'")
    sends = decisions[decisions["decision"] == "send"]
    assert set(sends["reminder_key"]) == set(planned["reminder_key"])


def test_reminders_are_grouped_per_customer_with_a_statement_of_account(demo_run: DemoRun) -> None:
    warehouse = demo_run.data / "warehouse.duckdb"
    planned = _df(
        warehouse,
        f"select reminder_key, customer_id, channel, invoice_ids, open_amount from ops.reminders_planned "
        f"where as_of_date = date '{AS_OF}'",
    )
    assert planned["customer_id"].is_unique, "one message per customer"
    planned["n"] = planned["invoice_ids"].map(lambda v: len(json.loads(v)))
    grouped = planned[(planned["n"] > 1) & (planned["channel"] == "email")]
    assert not grouped.empty, "the demo has customers with several overdue invoices"
    key = grouped["reminder_key"].iloc[0]
    mail = json.loads((demo_run.data / "outbox" / "email" / f"{key}.json").read_text())
    text = next(c["value"] for c in mail["content"] if c["type"] == "text/plain")
    for invoice in json.loads(grouped["invoice_ids"].iloc[0]):
        assert invoice in text, "the statement lists every invoice of the message"
    assert "factures" in mail["subject"]


def test_a_promise_pauses_a_customer_and_a_broken_promise_escalates(demo_run: DemoRun) -> None:
    warehouse = demo_run.data / "warehouse.duckdb"
    state = _df(warehouse, "select customer_id, promise_status, promise_date from serving.customer_contact_state")
    decisions = _df(warehouse, f"select * from ops.reminder_decisions where as_of_date = date '{AS_OF}'")
    paused = decisions[decisions["rule"] == "promise_pause"]
    assert not paused.empty, "the demo has a customer who promised to pay"
    active = set(state.loc[state["promise_status"] == "active", "customer_id"])
    assert set(paused["customer_id"]) <= active
    planned = _df(warehouse, f"select * from ops.reminders_planned where as_of_date = date '{AS_OF}'")
    assert not planned["customer_id"].isin(paused["customer_id"]).any(), "nothing planned for a paused customer"

    escalations = planned[planned["step"] == "broken_promise"]
    assert not escalations.empty, "the demo has a broken promise followed up"
    broken = set(state.loc[state["promise_status"] == "broken", "customer_id"])
    assert set(escalations["customer_id"]) <= broken
    assert set(escalations["tone"]) == {"firm"}


def test_the_call_list_has_talking_points_and_a_call_window(demo_run: DemoRun) -> None:
    path = demo_run.data / "outbox" / "calls" / f"{AS_OF}.csv"
    calls = read_csv_records(path)
    assert calls, "the demo's call list has tasks"
    for call in calls:
        assert call["talking_points"], call["reminder_key"]
        assert call["customer_name"] in call["talking_points"] or call["invoices"]
        assert call["call_window"].startswith("à partir du")
    warehouse = demo_run.data / "warehouse.duckdb"
    keys = _df(warehouse, "select reminder_key from ops.reminder_sends where channel = 'call' and status = 'sent'")
    assert {c["reminder_key"] for c in calls} == set(keys["reminder_key"])


def test_blocked_sends_are_recorded_with_their_rule_and_the_arms_are_recorded(demo_run: DemoRun) -> None:
    warehouse = demo_run.data / "warehouse.duckdb"
    blocks = _df(warehouse, "select * from ops.reminder_blocks")
    sent = _df(warehouse, "select reminder_key from ops.reminder_sends")
    assert not blocks["reminder_key"].isin(sent["reminder_key"]).any(), "a blocked send never reaches the ledger"
    arms = _df(warehouse, "select * from ops.experiment_assignments")
    assert set(arms["arm"]) == {"holdout", "treatment"}
    held = set(arms.loc[arms["arm"] == "holdout", "customer_id"])
    planned = _df(warehouse, "select customer_id from ops.reminders_planned")
    assert not planned["customer_id"].isin(held).any(), "the holdout gets no reminder"
