"""Debtors' reactions and relance's own sends as as-of facts, on a small hand-written DuckDB warehouse.

Customers, invoices, payments, a legacy reminder, call outcomes and provider events go into raw; relance's own
sends into ops through their owner (``relance.ops``: the plan with a grouped message's ``invoice_ids``, the send
ledger's warehouse copy) and suppressions into ``ops.contact_suppressions``. dbt runs through its one owner
(``relance.dbt``) with the session's parsed manifest, models only (``dbt run``) and only what the checks read: the
unit and data tests of these models run in tests/integration/test_dbt_project.py's build and on PostgreSQL in
tests/integration/test_dbt_postgres.py. Checked by hand:

* ``serving.customer_contact_state`` is a view: a call outcome and an opt-out loaded after the build change it at
  once, without a rebuild; a call made on the as-of day itself does not count (facts before the as-of date);
* ``intermediate.int_invoice_reminders_as_of`` counts relance's own sends beside the legacy reminders, a grouped
  message for each invoice it covered, only when sent before the as-of date; a send appended later, after a grid
  date, moves no row of that date.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from relance import dbt, ops
from relance.raw_schema import CONTACT_ENTITIES, ENTITIES, LOAD_METADATA
from relance.settings import Settings
from relance.warehouse import ensure_schemas
from tests.conftest import DbtInvoke

pytestmark = pytest.mark.integration

AS_OF = date(2026, 4, 15)
# grid: first issue 02-01 + 30 = 03-03, then 03-31 (04-28 is after the as-of date), plus the as-of date
GRID = [date(2026, 3, 3), date(2026, 3, 31), AS_OF]
LOADED_AT = datetime(2026, 4, 14, 6, 0)

CUSTOMERS = [
    {"customer_id": "C1", "customer_name": "Bâti Sud", "customer_type": "B2B", "sector_section": "F",
     "size_band": "small", "country_code": "FR", "currency": "EUR", "payment_terms_days": 30,
     "created_date": date(2025, 1, 1)},
    {"customer_id": "C2", "customer_name": "Jane Smith", "customer_type": "B2C", "country_code": "GB",
     "currency": "EUR", "payment_terms_days": 0, "created_date": date(2025, 1, 1)},
    {"customer_id": "C3", "customer_name": "Brux SA", "customer_type": "B2B", "country_code": "BE",
     "currency": "EUR", "payment_terms_days": 30, "created_date": date(2025, 1, 1)},
    {"customer_id": "C4", "customer_name": "Nord SARL", "customer_type": "B2B", "country_code": "FR",
     "currency": "EUR", "payment_terms_days": 30, "created_date": date(2025, 1, 1)},
]  # fmt: skip
_I = ("invoice_id", "customer_id", "document_type", "issue_date", "due_date", "amount", "currency")
INVOICES = [
    dict(zip(_I, row, strict=True))
    for row in (
        ("I1", "C1", "invoice", date(2026, 2, 1), date(2026, 3, 1), 1000, "EUR"),
        ("I2", "C1", "invoice", date(2026, 2, 20), date(2026, 3, 20), 500, "EUR"),
        ("I3", "C1", "invoice", date(2026, 4, 10), date(2026, 5, 10), 300, "EUR"),
        ("I4", "C2", "invoice", date(2026, 2, 1), date(2026, 2, 1), 200, "EUR"),
    )
]
PAYMENTS = [
    {"payment_id": "P1", "customer_id": "C1", "payment_date": date(2026, 3, 10), "amount": 200, "currency": "EUR"},
    {"payment_id": "P2", "customer_id": "C1", "payment_date": date(2026, 4, 10), "amount": 100, "currency": "EUR"},
]
ALLOCATIONS = [
    {"payment_id": "P1", "invoice_id": "I1", "allocated_amount": 200},
    {"payment_id": "P2", "invoice_id": "I1", "allocated_amount": 100},
]
REMINDERS = [
    {"reminder_id": "R1", "invoice_id": "I1", "customer_id": "C1", "sent_at": datetime(2026, 3, 5, 10),
     "channel": "email", "tone": "cordial", "response": "promise_to_pay", "responded_at": datetime(2026, 3, 6, 9),
     "promised_date": date(2026, 3, 20)},
]  # fmt: skip
_K = ("call_id", "reminder_key", "customer_id", "called_at", "outcome", "promised_date", "promised_amount")
CALLS = [
    dict(zip(_K, row, strict=True))
    for row in (
        # promised 04-12 + 3 days of grace = 04-15, the as-of date: still active; 800 not paid
        ("K1", None, "C1", datetime(2026, 4, 8, 14), "promise", date(2026, 4, 12), 800),
        # promised 04-11 + 3 = 04-14 < 04-15, nothing paid: broken
        ("K3", None, "C2", datetime(2026, 3, 1, 11), "promise", date(2026, 4, 11), None),
        ("K4", None, "C3", datetime(2026, 3, 2, 11), "wrong_contact", None, None),
        ("K5", None, "C4", datetime(2026, 3, 3, 11), "do_not_contact", None, None),
    )
]
_E = ("event_id", "reminder_key", "customer_id", "provider", "channel", "event", "occurred_at")
EVENTS = [
    dict(zip(_E, row, strict=True))
    for row in (
        ("E1", "S1", "C1", "sendgrid", "email", "delivered", datetime(2026, 4, 1, 9, 1)),
        ("E2", "S1", "C1", "sendgrid", "email", "open", datetime(2026, 4, 9, 10)),  # after the call K1
        ("E3", None, "C2", "sendgrid", "email", "bounce", datetime(2026, 3, 20, 8)),
        ("E4", None, "C2", "twilio", "sms", "stop", datetime(2026, 4, 2, 8)),
        # C3 unsubscribed, then a person lifted the e-mail suppression: contact may resume
        ("E5", None, "C3", "sendgrid", "email", "unsubscribe", datetime(2026, 4, 1, 8)),
    )
]
SUPPRESSIONS = [
    # customer_id, channel, reason, source, created_at, lifted_at
    ("C2", "letter", "returned mail", "manual", datetime(2026, 3, 1), None),
    ("C3", "email", "customer asked to resume", "manual", datetime(2026, 4, 1, 9), datetime(2026, 4, 5)),
    ("C3", "sms", "temporary", "manual", datetime(2026, 3, 1), datetime(2026, 3, 10)),
]

# relance's own sends: S1 one e-mail for I1 and I2 (grouped: the ledger names I1 only), S2 an SMS sent on the as-of
# day itself (not known on it), S3 failed (never a contact)
PLAN = [
    # reminder_key, invoice_id (lead), channel, tone, invoice_ids
    ("S1", "I1", "email", "firm", json.dumps(["I1", "I2"])),
    ("S2", "I1", "sms", "cordial", json.dumps(["I1"])),
    ("S3", "I2", "email", "cordial", None),
]
SENDS = [
    # reminder_key, channel, status, sent_at, invoice_id
    ("S1", "email", "sent", datetime(2026, 4, 1, 9), "I1"),
    ("S2", "sms", "sent", datetime(2026, 4, 15, 8), "I1"),
    ("S3", "email", "failed", None, "I2"),
]


def _insert(con: duckdb.DuckDBPyConnection, entity: str, rows: list[dict[str, Any]], batch: str) -> None:
    """Append rows (dicts, missing columns null) to raw.<entity> in one batch loaded at LOADED_AT."""
    columns = {**ENTITIES, **CONTACT_ENTITIES}[entity]
    cols = [*columns, *LOAD_METADATA]
    for i, row in enumerate(rows):
        assert set(row) <= set(columns), (entity, row)
        meta = (batch, f"{entity}.csv", f"hash-{batch}", f"{batch}-{entity}-{i}", LOADED_AT, "flow-test")
        con.execute(
            f"insert into raw.{entity} ({', '.join(cols)}) values ({', '.join('?' for _ in cols)})",
            [*(row.get(c) for c in columns), *meta],
        )


def _suppress(con: duckdb.DuckDBPyConnection, rows: list[tuple]) -> None:
    con.executemany("insert into ops.contact_suppressions values (?, ?, ?, ?, ?, ?)", rows)


def _plan_and_sends(plan: list[tuple], sends: list[tuple]) -> tuple[pd.DataFrame, pd.DataFrame]:
    planned = pd.DataFrame(
        [
            {"reminder_key": key, "invoice_id": invoice, "customer_id": "C1", "as_of_date": date(2026, 4, 1),
             "step": "first", "channel": channel, "tone": tone, "p_late": 0.5, "open_amount": 1200,
             "currency": "EUR", "recipient": "ap@batisud.fr", "model_version": "1", "model_run_id": "run-1",
             "dbt_invocation_id": "inv-1", "planned_at": datetime(2026, 4, 1, 6), "flow_run_id": "flow-plan",
             "invoice_ids": invoice_ids}
            for key, invoice, channel, tone, invoice_ids in plan
        ]
    )  # fmt: skip
    sent = pd.DataFrame(
        [
            {"reminder_key": key, "channel": channel, "status": status, "attempts": 1, "sent_at": sent_at,
             "invoice_id": invoice, "customer_id": "C1", "step": "first", "updated_at": datetime(2026, 4, 15, 9),
             "origin": "delivery"}
            for key, channel, status, sent_at, invoice in sends
        ]
    )  # fmt: skip
    return planned, sent


def _seed(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        ensure_schemas(con)
        _insert(con, "customers", CUSTOMERS, "B1")
        _insert(con, "invoices", INVOICES, "B1")
        _insert(con, "payments", PAYMENTS, "B1")
        _insert(con, "payment_allocations", ALLOCATIONS, "B1")
        _insert(con, "reminders", REMINDERS, "B1")
        _insert(con, "call_outcomes", CALLS, "K-B1")
        _insert(con, "message_events", EVENTS, "E-B1")
        _suppress(con, SUPPRESSIONS)
        planned, sent = _plan_and_sends(PLAN, SENDS)
        assert ops.record_planned(con, planned) == len(PLAN)
        assert ops.replace_reminder_sends(con, sent) == len(SENDS)


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, history_start_days=30, snapshot_interval_days=28, horizon_days=30)


def _run(settings: Settings, invoke: DbtInvoke, select: str) -> None:
    args = dbt.dbt_args(settings, ["run"], as_of_date=AS_OF, extra=("--select", select))
    dbt.run_dbt(settings, args, invoke=invoke)


def _dicts(path: Path, sql: str) -> list[dict[str, Any]]:
    with duckdb.connect(str(path)) as con:
        cur = con.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _state(path: Path) -> dict[str, dict[str, Any]]:
    return {r["customer_id"]: r for r in _dicts(path, "select * from serving.customer_contact_state")}


REMINDER_COLUMNS = "invoice_id, as_of_date, reminder_count, email_count, sms_count, firm_count, cordial_count"


def _reminder_rows(path: Path) -> dict[tuple[str, date], tuple]:
    rows = _dicts(path, f"select {REMINDER_COLUMNS} from intermediate.int_invoice_reminders_as_of")
    return {(r["invoice_id"], r["as_of_date"]): tuple(r.values())[2:] for r in rows}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, dbt_invoke: DbtInvoke) -> tuple[Settings, Path]:
    settings = _settings(tmp_path_factory.mktemp("contact-state"))
    _seed(settings.warehouse)
    _run(settings, dbt_invoke, "+customer_contact_state +int_invoice_reminders_as_of")
    return settings, settings.warehouse


def test_contact_state_as_built(built: tuple[Settings, Path]) -> None:
    _, path = built
    state = _state(path)
    assert set(state) == {"C1", "C2", "C3", "C4"}  # every customer, contacted or not
    c1 = state["C1"]
    assert (c1["last_contact_at"], c1["last_contact_channel"]) == (datetime(2026, 4, 8, 14), "call")
    assert c1["contacts_last_7d"] == 1  # K1 (04-08); S1 (04-01) is older, S2 (04-15) not before the as-of date
    assert (c1["promise_source"], c1["promise_date"], c1["promise_amount"], c1["promise_status"]) == (
        "call", date(2026, 4, 12), 800, "active"
    )  # fmt: skip
    assert c1["broken_promise_count"] == 0  # R1's promise (03-20) was kept by P1 (03-10)
    assert c1["last_payment_date"] == date(2026, 4, 10)
    # P2 (04-10) after the last contact while I1 and I2 are overdue and open; E2 opened (04-09) after it too
    assert (c1["is_paid_since_last_contact"], c1["is_partial_payment_since_last_contact"]) == (True, True)
    assert c1["is_opened_since_last_contact"] is True
    assert (c1["last_call_outcome"], c1["last_call_at"]) == ("promise", datetime(2026, 4, 8, 14))
    assert (c1["bounced_channels"], c1["suppressed_channels"], c1["as_of_date"]) == (None, None, AS_OF)
    c2 = state["C2"]
    assert (c2["promise_status"], c2["broken_promise_count"]) == ("broken", 1)
    assert (c2["bounced_channels"], c2["suppressed_channels"]) == ("email", "letter,sms")
    assert state["C3"]["suppressed_channels"] == "call"  # e-mail lifted after the unsubscribe, SMS row lifted
    assert state["C4"]["suppressed_channels"] == "*"
    # a call is a contact whatever its outcome; K5 too
    assert (state["C3"]["last_contact_at"], state["C3"]["contacts_last_7d"]) == (datetime(2026, 3, 2, 11), 0)
    # not a table: what the send-time check reads live
    with duckdb.connect(str(path)) as con:
        kind = con.execute(
            "select table_type from information_schema.tables"
            " where table_schema = 'serving' and table_name = 'customer_contact_state'"
        ).fetchone()
    assert kind == ("VIEW",)


def test_contact_state_sees_facts_loaded_after_the_build(built: tuple[Settings, Path]) -> None:
    """A call outcome and an SMS opt-out loaded after the dbt build change the view at once; a call made on the
    as-of day itself counts for what it brought (its outcome), not as a contact before the date."""
    _, path = built
    before = _state(path)["C1"]
    with duckdb.connect(str(path)) as con:
        _insert(con, "call_outcomes", [
            dict(zip(_K, ("K2", None, "C1", datetime(2026, 4, 14, 16), "promise", date(2026, 4, 30), None),
                     strict=True)),
            dict(zip(_K, ("K9", None, "C1", datetime(2026, 4, 15, 9), "dispute", None, None), strict=True)),
        ], "K-B2")  # fmt: skip
        _insert(con, "message_events", [
            dict(zip(_E, ("E9", None, "C1", "twilio", "sms", "stop", datetime(2026, 4, 15, 7)), strict=True)),
        ], "E-B2")  # fmt: skip
    after = _state(path)["C1"]
    assert before["promise_date"] == date(2026, 4, 12)
    assert (after["promise_source"], after["promise_date"], after["promise_amount"], after["promise_status"]) == (
        "call", date(2026, 4, 30), None, "active"
    )  # fmt: skip
    # K9 (04-15, the as-of day) is not a contact before the date, but what a call brought counts up to the end of
    # the as-of day: its dispute is the last call outcome (a send later that day must stop)
    assert (after["last_contact_at"], after["last_call_at"]) == (datetime(2026, 4, 14, 16), datetime(2026, 4, 15, 9))
    assert after["contacts_last_7d"] == 2
    # P2 (04-10) and the open (04-09) are now before the last contact
    assert (after["is_paid_since_last_contact"], after["is_opened_since_last_contact"]) == (False, False)
    assert (after["last_call_outcome"], after["has_open_dispute"]) == ("dispute", True)
    # an opt-out counts as soon as it is received, the as-of day included
    assert after["suppressed_channels"] == "sms"


def test_own_sends_count_in_the_reminder_features_as_of(built: tuple[Settings, Path], dbt_invoke: DbtInvoke) -> None:
    """S1 (04-01, one e-mail for I1 and I2) counts for both invoices from the first date after it; S2, sent on the
    as-of day, and S3, failed, never; a send appended later does not move an earlier date's rows."""
    settings, path = built
    rows = _reminder_rows(path)
    # reminder_count, email_count, sms_count, firm_count, cordial_count
    assert rows[("I1", date(2026, 3, 3))] == (0, 0, 0, 0, 0)
    assert rows[("I1", date(2026, 3, 31))] == (1, 1, 0, 0, 1)  # R1
    assert rows[("I1", AS_OF)] == (2, 2, 0, 1, 1)  # R1 + S1; not S2 (sent on the as-of day)
    assert rows[("I2", date(2026, 3, 31))] == (0, 0, 0, 0, 0)
    assert rows[("I2", AS_OF)] == (1, 1, 0, 1, 0)  # S1 grouped I2 with I1; S3 failed
    assert ("I3", AS_OF) in rows and rows[("I3", AS_OF)][0] == 0  # not in S1's list
    days = _dicts(
        path,
        "select days_since_last_reminder from intermediate.int_invoice_reminders_as_of"
        f" where invoice_id = 'I2' and as_of_date = '{AS_OF}'",
    )
    assert days == [{"days_since_last_reminder": 14}]

    # a later send (04-10, after the 03-31 grid date) covering I1 and I3, and the plan of a new one
    plan, sends = _plan_and_sends(
        [*PLAN, ("S4", "I3", "letter", "formal_notice", json.dumps(["I3", "I1"]))],
        [*SENDS, ("S4", "letter", "sent", datetime(2026, 4, 10, 12), "I3")],
    )
    with duckdb.connect(str(path)) as con:
        ops.record_planned(con, plan)
        ops.replace_reminder_sends(con, sends)
    _run(settings, dbt_invoke, "int_reminder_sends_expanded_to_invoices int_invoice_reminders_as_of")
    after = _reminder_rows(path)
    assert {k: v for k, v in after.items() if k[1] < AS_OF} == {k: v for k, v in rows.items() if k[1] < AS_OF}
    assert after[("I1", AS_OF)] == (3, 2, 0, 1, 1)
    assert after[("I3", AS_OF)][0] == 1
    formal = _dicts(
        path,
        "select invoice_id, formal_notice_count, letter_count from intermediate.int_invoice_reminders_as_of"
        f" where as_of_date = '{AS_OF}' and formal_notice_count > 0 order by 1",
    )
    assert formal == [
        {"invoice_id": "I1", "formal_notice_count": 1, "letter_count": 1},
        {"invoice_id": "I3", "formal_notice_count": 1, "letter_count": 1},
    ]
