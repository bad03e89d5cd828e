"""The rules checked just before every send, through the real delivery loop: a real DuckDB warehouse, the durable send
ledger, the outbox transports. A blocked message is recorded with its rule and never claimed; an email planned at
a closed moment is deferred (SendGrid ``send_at``) rather than dropped; a promise loaded after the plan stops the
send."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from relance import ops
from relance.channels import make_transport_for
from relance.delivery import deliver
from relance.reminders.engine import EngineConfig, decide
from relance.reminders.gate import SendGate
from relance.reminders.rules import ContactRules
from relance.reminders.scenarios import parse_scenarios
from relance.send_ledger import SendLedger
from relance.warehouse import connection, ensure_schemas

pytestmark = pytest.mark.integration

AS_OF = date(2026, 10, 30)  # a Friday
SCENARIOS = parse_scenarios(
    """\
version: 1
scenarios:
  - name: standard
    steps:
      - {name: first, day: 3, channels: [email], tone: cordial}
      - {name: second, day: 14, channels: [call, email], tone: firm}
""",
    "gate.yaml",
)
STATE_COLUMNS = (
    "customer_id VARCHAR, last_contact_at TIMESTAMP, last_contact_channel VARCHAR, promise_status VARCHAR, "
    "promise_date DATE, suppressed_channels VARCHAR, has_open_dispute BOOLEAN, last_call_outcome VARCHAR"
)


def _inv(invoice: str, customer: str, days: int, ctype: str = "B2B") -> dict:
    return {
        "invoice_id": invoice,
        "customer_id": customer,
        "customer_name": f"Client {customer}",
        "customer_type": ctype,
        "email": f"{customer.lower()}@example.com",
        "phone": "+33199001234",
        "currency": "EUR",
        "open_amount": 800.0,
        "amount": 800.0,
        "due_date": AS_OF - timedelta(days=days),
        "days_overdue": days,
        "is_disputed": False,
        "p_late": 0.6,
        "country_code": "FR",
    }


@pytest.fixture
def env(tmp_path: Path):
    with connection(tmp_path / "wh.duckdb") as con, SendLedger(tmp_path / "sends.sqlite") as ledger:
        ensure_schemas(con)
        con.execute("CREATE SCHEMA serving")
        con.execute(f"CREATE TABLE serving.customer_contact_state ({STATE_COLUMNS})")
        yield con, ledger, tmp_path


def _deliver(con, ledger, tmp_path, plan, now: datetime):
    gate = SendGate(con, ledger, ContactRules(), now=lambda: now, max_age_seconds=0.0)
    report = deliver(
        con,
        plan,
        ledger=ledger,
        transport_for=make_transport_for(outbox_dir=tmp_path / "outbox", as_of_date=AS_OF, sender_name="Recouvrement"),
        lineage={},
        flow_run_id="run-1",
        sender_email="r@example.com",
        sender_name="Recouvrement",
        now=lambda: now.replace(tzinfo=None),
        stop_check=gate.check,
    )
    return report, gate


def _plan(rows, sent=frozenset()):
    return decide(
        pd.DataFrame(rows), None, as_of_date=AS_OF, scenarios=SCENARIOS, config=EngineConfig(), sent_keys=sent
    )


def test_an_email_planned_on_saturday_is_deferred_to_monday_8am_paris(env) -> None:
    con, ledger, tmp = env
    saturday = datetime(2026, 10, 31, 9, 0, tzinfo=UTC)
    plan = _plan([_inv("F1", "C1", 5)]).plan
    report, gate = _deliver(con, ledger, tmp, plan, saturday)
    assert (report.sent, report.blocked, gate.deferred) == (1, 0, 1)
    key = plan["reminder_key"].iloc[0]
    monday_8_paris = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)  # CET after the 25 October change
    mail = json.loads((tmp / "outbox" / "email" / f"{key}.json").read_text())
    assert mail["send_at"] == int(monday_8_paris.timestamp())
    stored = con.execute("SELECT deliver_at FROM ops.reminders_planned WHERE reminder_key = ?", [key]).fetchone()[0]
    assert stored == monday_8_paris.replace(tzinfo=None)


def test_a_call_task_written_at_dawn_gets_the_window_of_the_day(env) -> None:
    con, ledger, tmp = env
    dawn = datetime(2026, 10, 30, 4, 30, tzinfo=UTC)  # 05:30 in Paris
    plan = _plan([_inv("F1", "C1", 20)]).plan
    assert plan["channel"].iloc[0] == "call"
    report, _ = _deliver(con, ledger, tmp, plan, dawn)
    assert report.sent == 1
    (line,) = (tmp / "outbox" / "calls" / f"{AS_OF}.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert "à partir du 30/10/2026 08:00 (Europe/Paris)" in line


def test_frequency_cap_and_gap_block_and_record_without_claiming(env) -> None:
    con, ledger, tmp = env
    now = datetime(2026, 10, 30, 10, 0, tzinfo=UTC)
    # two messages of this customer already delivered in the last 7 days (earlier runs)
    for n, days_ago in enumerate((5, 3)):
        key = f"earlier-{n}"
        ledger.claim(key, "email", customer_id="C1", invoice_id="F0", step="x", at=now - timedelta(days=days_ago))
        ledger.sent(key, provider_message_id=None, outbox_path=None, attempts=1, at=now - timedelta(days=days_ago))
    # another customer was last contacted (a collector's call, in the warehouse) 20 hours ago
    con.execute(
        "INSERT INTO serving.customer_contact_state (customer_id, last_contact_at, last_contact_channel) "
        "VALUES ('C2', ?, 'call')",
        [(now - timedelta(hours=20)).replace(tzinfo=None)],
    )
    plan = _plan([_inv("F1", "C1", 5), _inv("F2", "C2", 5)]).plan
    report, _ = _deliver(con, ledger, tmp, plan, now)
    assert (report.sent, report.blocked) == (0, 2)
    blocks = con.execute("SELECT customer_id, rule FROM ops.reminder_blocks ORDER BY customer_id").fetchall()
    assert blocks == [("C1", "frequency_cap"), ("C2", "min_gap")]
    assert ledger.statuses(plan["reminder_key"].tolist()) == {}, "a blocked message is never claimed"


def test_a_promise_or_a_suppression_loaded_after_the_plan_stops_the_send(env) -> None:
    con, ledger, tmp = env
    now = datetime(2026, 10, 30, 10, 0, tzinfo=UTC)
    rows = [_inv("F1", "C1", 5), _inv("F2", "C2", 5), _inv("F3", "C3", 5), _inv("F4", "C4", 5), _inv("F5", "C5", 5)]
    plan = _plan(rows).plan
    # after planning: a collector's call brought a promise, another a dispute; the provider reported an
    # unsubscribe; C5 has a dispute on another invoice (not in this message): it still gets its reminder
    con.execute(
        "INSERT INTO serving.customer_contact_state (customer_id, promise_status, promise_date, suppressed_channels, "
        "last_call_outcome, has_open_dispute) VALUES ('C1', 'active', DATE '2026-11-05', NULL, NULL, false), "
        "('C2', NULL, NULL, 'email', NULL, false), ('C4', NULL, NULL, NULL, 'dispute', true), "
        "('C5', NULL, NULL, NULL, 'reached', true)"
    )
    report, _ = _deliver(con, ledger, tmp, plan, now)
    assert report.sent == 2
    rules = dict(con.execute("SELECT customer_id, rule FROM ops.reminder_blocks").fetchall())
    assert rules == {"C1": "promise_pause", "C2": "suppressed", "C4": "dispute_pause"}
    assert ops.table_columns(con, "reminder_decisions"), "the ops tables of the engine exist"


def test_a_second_message_to_the_same_customer_in_one_run_is_blocked(env) -> None:
    con, ledger, tmp = env
    now = datetime(2026, 10, 30, 10, 0, tzinfo=UTC)
    first = _plan([_inv("F1", "C1", 5)]).plan
    second = _plan([_inv("F9", "C1", 20)]).plan  # another lead invoice: another key, same customer
    report, _ = _deliver(con, ledger, tmp, pd.concat([first, second], ignore_index=True), now)
    assert (report.sent, report.blocked) == (1, 1)
    assert con.execute("SELECT rule FROM ops.reminder_blocks").fetchone()[0] == "min_gap"
