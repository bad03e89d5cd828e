"""Exactly-once delivery through the real SendGrid client against a spec-validating stand-in on 127.0.0.1,
and through the embedded outboxes, with a real send ledger (SQLite) and a real DuckDB warehouse."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from sendgrid.helpers.mail import CustomArg

from relance.channels import DeliveryError, SendGridTransport, build_mail, make_transport_for
from relance.delivery import deliver, handled_reminder_keys
from relance.reminders.policy import plan_reminders
from relance.send_ledger import SendLedger
from relance.tabular_output import read_csv_records
from relance.warehouse import ensure_schemas
from tests.standins.sendgrid import SPEC_PATH, SendGridStandIn, load_validator, running_sendgrid_standin

pytestmark = pytest.mark.integration

AS_OF = date(2026, 3, 31)
LINEAGE = {
    "prefect.flow_run_id": "flow-1",
    "dbt.invocation_id": "dbt-1",
    "model.version": "7",
    "git.sha": "abc",
}


def _worklist() -> pd.DataFrame:
    def row(i: str, days: int, ctype: str = "B2C", p: float = 0.3, email: str | None = None) -> dict:
        return {
            "invoice_id": f"F-{i}",
            "customer_id": f"C-{i}",
            "customer_name": f"Client {i}",
            "customer_type": ctype,
            "sector_section": "G",
            "email": email if email is not None else f"client{i}@example.org",
            "phone": f"+3310000000{i}",
            "currency": "EUR",
            "amount": 1500.0,
            "open_amount": 1000.0 + int(i),
            "issue_date": pd.Timestamp(AS_OF - timedelta(days=days + 30)),
            "due_date": pd.Timestamp(AS_OF - timedelta(days=days)),
            "days_overdue": days,
            "aging_bucket": "x",
            "is_disputed": False,
            "p_late": p,
            "model_version": "7",
            "model_run_id": "run-7",
            "as_of_date": pd.Timestamp(AS_OF),
            "raw_batch_id": "b1",
            # why it is flagged, as serving.collection_worklist gives it
            "reason_1": f"Customer paid {50 + int(i)}% of past invoices late",
            "reason_2": f"Already {days} days overdue" if days > 0 else None,
            "reason_3": None,
            "predicted_payment_date": pd.Timestamp(AS_OF + timedelta(days=10 + int(i))),
            "predicted_payment_date_p10": pd.Timestamp(AS_OF + timedelta(days=1)),
            "predicted_payment_date_p90": pd.Timestamp(AS_OF + timedelta(days=40 + int(i))),
            "risk_grade": "ABCDE"[min(int(p * 5), 4)],
        }

    return pd.DataFrame(
        [
            row("1", -2, p=0.8),  # pre_due email
            row("2", 8),  # overdue_7 email
            row("3", 25),  # overdue_21 email (B2C)
            row("4", 60),  # overdue_45 letter (B2C)
            row("5", 30, ctype="B2B", p=0.9),  # overdue_21 call
            row("6", 50, ctype="B2B"),  # overdue_45 call
        ]
    )


@pytest.fixture
def sg() -> Iterator[SendGridStandIn]:
    with running_sendgrid_standin() as stand_in:
        yield stand_in


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect()
    ensure_schemas(c)
    yield c
    c.close()


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SendLedger]:
    with SendLedger(tmp_path / "ledger" / "sends.sqlite") as led:
        yield led


@pytest.fixture
def planned() -> pd.DataFrame:
    plan = plan_reminders(_worklist(), as_of_date=AS_OF, max_reminders=100)
    assert plan["channel"].value_counts().to_dict() == {"email": 3, "call": 2, "letter": 1}
    return plan


def _router(tmp_path: Path, sg: SendGridStandIn | None):
    return make_transport_for(
        outbox_dir=tmp_path / "outbox",
        as_of_date=AS_OF,
        sender_name="Service recouvrement",
        sendgrid_api_key=sg.api_key if sg else None,
        sendgrid_host=sg.url if sg else "http://127.0.0.1:9",
    )


def _deliver(con, ledger, planned, transport_for, **kw):
    return deliver(
        con,
        planned,
        ledger=ledger,
        transport_for=transport_for,
        lineage=LINEAGE,
        flow_run_id="flow-1",
        sender_email="relances@example.com",
        sender_name="Service recouvrement",
        backoff_seconds=0,
        **kw,
    )


def _sends(con) -> pd.DataFrame:
    return con.sql("SELECT * FROM ops.reminder_sends ORDER BY reminder_key").df().set_index("reminder_key")


def test_every_email_arrives_once_with_ids_and_rerun_sends_nothing(con, ledger, planned, tmp_path, sg):
    transport_for = _router(tmp_path, sg)
    emails = planned[planned["channel"] == "email"]

    report = _deliver(con, ledger, planned, transport_for)

    assert (report.sent, report.failed, report.skipped_already_sent) == (6, 0, 0)
    assert report.by_channel == {"email": 3, "call": 2, "letter": 1}
    assert len(sg.messages) == 3
    validator = load_validator()
    by_key = {m.custom_args["reminder_key"]: m for m in sg.messages}
    assert set(by_key) == set(emails["reminder_key"])
    for _, r in emails.iterrows():
        msg = by_key[r["reminder_key"]]
        assert not list(validator.iter_errors(msg.body))
        assert msg.custom_args == {
            "reminder_key": r["reminder_key"],
            "invoice_id": r["invoice_id"],
            "model_version": "7",
            "flow_run_id": "flow-1",
            "model_run_id": "run-7",
            "dbt_invocation_id": "dbt-1",
        }
        assert "custom_args" not in msg.body  # top-level is typed string in the spec
        assert sorted(msg.body["categories"]) == sorted(["relance", r["tone"]])
        assert msg.body["personalizations"][0]["to"][0]["email"] == r["recipient"]
        text = msg.body["content"][0]["value"]
        assert r["invoice_id"] in text and "€" in text
        assert msg.headers["Authorization"] == f"Bearer {sg.api_key}"

    sends = _sends(con)
    assert (sends["status"] == "sent").all() and len(sends) == 6
    for key, msg in by_key.items():
        assert sends.loc[key, "provider_message_id"] == msg.message_id
        assert sends.loc[key, "attempts"] == 1
    planned_rows = con.sql("SELECT * FROM ops.reminders_planned").df()
    assert len(planned_rows) == 6
    assert set(planned_rows["dbt_invocation_id"]) == {"dbt-1"}
    assert set(planned_rows["flow_run_id"]) == {"flow-1"}

    again = _deliver(con, ledger, planned, _router(tmp_path, sg))
    assert (again.sent, again.skipped_already_sent, again.failed) == (0, 6, 0)
    assert len(sg.messages) == 3
    assert sg.requests == 3
    assert con.sql("SELECT count(*) FROM ops.reminders_planned").fetchone()[0] == 6
    assert handled_reminder_keys(ledger) == set(planned["reminder_key"])


def test_a_500_fails_one_message_and_the_others_still_go(con, ledger, planned, tmp_path, sg):
    emails = planned[planned["channel"] == "email"]
    sg.fail_next(1, 500)  # the first email request (highest exposure) gets a 500

    report = _deliver(con, ledger, emails, _router(tmp_path, sg), max_attempts=1)

    assert (report.sent, report.failed) == (2, 1)
    failed_key = emails["reminder_key"].iloc[0]
    assert report.failed_keys == [failed_key]
    sends = _sends(con)
    assert sends.loc[failed_key, "status"] == "failed"
    assert sends.loc[failed_key, "attempts"] == 1
    assert "500" in sends.loc[failed_key, "last_error"]
    assert failed_key not in {m.custom_args["reminder_key"] for m in sg.messages}

    # next run: the failed one is retried and goes out; the others are not sent again
    rerun = _deliver(con, ledger, emails, _router(tmp_path, sg), max_attempts=1)
    assert (rerun.sent, rerun.skipped_already_sent, rerun.failed) == (1, 2, 0)
    assert [m.custom_args["reminder_key"] for m in sg.messages].count(failed_key) == 1
    sends = _sends(con)
    assert sends.loc[failed_key, "status"] == "sent" and sends.loc[failed_key, "attempts"] == 2
    assert pd.isna(sends.loc[failed_key, "last_error"])


def test_transient_429_is_retried_within_the_run(con, ledger, planned, tmp_path, sg):
    emails = planned[planned["channel"] == "email"].head(1)
    sg.fail_next(1, 429)
    report = _deliver(con, ledger, emails, _router(tmp_path, sg), max_attempts=2)
    assert (report.sent, report.failed) == (1, 0)
    assert sg.requests == 2 and len(sg.messages) == 1
    assert _sends(con)["attempts"].tolist() == [2]


def test_spec_violation_surfaces_as_delivery_error_with_the_field(planned, sg):
    row = planned[planned["channel"] == "email"].iloc[0]
    mail = build_mail(row, sender_email="relances@example.com", sender_name="S", lineage={})
    mail.custom_arg = CustomArg("campaign", "x")  # top level: an object, but the spec says string
    with pytest.raises(DeliveryError) as info:
        SendGridTransport(sg.api_key, sg.url).send(mail, row["reminder_key"])
    assert info.value.status == 400
    assert info.value.fields == ["custom_args"]
    assert info.value.retryable is False
    assert sg.messages == []


def test_bad_api_key_fails_and_pauses_the_channel(con, ledger, planned, tmp_path, sg):
    emails = planned[planned["channel"] == "email"]
    transport_for = make_transport_for(
        outbox_dir=tmp_path / "outbox",
        as_of_date=AS_OF,
        sender_name="S",
        sendgrid_api_key="SG.wrong",
        sendgrid_host=sg.url,
    )
    report = _deliver(con, ledger, emails, transport_for, pause_after_consecutive_failures=2)
    assert (report.sent, report.failed, report.paused) == (0, 2, 1)
    assert sg.requests == 2  # 401 is not retried, and the third message is not attempted
    assert set(_sends(con)["status"]) == {"failed"}
    assert all("401" in e for e in _sends(con)["last_error"])


def test_row_left_sending_by_a_crash_is_not_resent(con, ledger, planned, tmp_path, sg):
    emails = planned[planned["channel"] == "email"]
    crashed = emails["reminder_key"].iloc[1]
    # a crash after the claim: the ledger says 'sending', the outcome was never recorded
    assert ledger.claim(crashed, "email", flow_run_id="crashed-run") == 0
    report = _deliver(con, ledger, emails, _router(tmp_path, sg))
    assert (report.sent, report.stuck_sending) == (2, 1)
    assert crashed not in {m.custom_args["reminder_key"] for m in sg.messages}
    assert _sends(con).loc[crashed, "status"] == "sending"


def test_outbox_writes_one_file_per_key_and_rerun_adds_none(con, ledger, planned, tmp_path):
    transport_for = _router(tmp_path, None)
    report = _deliver(con, ledger, planned, transport_for)
    assert (report.sent, report.failed) == (6, 0)

    outbox = tmp_path / "outbox"
    email_files = sorted(p.name for p in (outbox / "email").iterdir())
    emails = planned[planned["channel"] == "email"]
    assert email_files == sorted(f"{k}.json" for k in emails["reminder_key"])
    validator = load_validator() if SPEC_PATH.exists() else None
    for _, r in emails.iterrows():
        body = json.loads((outbox / "email" / f"{r['reminder_key']}.json").read_text())
        assert body["personalizations"][0]["custom_args"]["reminder_key"] == r["reminder_key"]
        if validator is not None:
            assert not list(validator.iter_errors(body))
    letter_key = planned.loc[planned["channel"] == "letter", "reminder_key"].iloc[0]
    letter = (outbox / "letter" / f"{letter_key}.html").read_text()
    assert "F-4" in letter and "Client 4" in letter and "1\u202f004,00\u00a0€" in letter
    sends = _sends(con)
    assert sends.loc[letter_key, "outbox_path"].endswith(f"{letter_key}.html")
    assert sends["provider_message_id"].isna().all()
    assert not list(outbox.rglob("*.tmp"))

    mtimes = {p: p.stat().st_mtime_ns for p in outbox.rglob("*") if p.is_file()}
    again = _deliver(con, ledger, planned, _router(tmp_path, None))
    assert (again.sent, again.skipped_already_sent) == (0, 6)
    assert {p: p.stat().st_mtime_ns for p in outbox.rglob("*") if p.is_file()} == mtimes


def test_call_list_has_no_duplicate_rows_on_rerun(con, ledger, planned, tmp_path):
    calls = planned[planned["channel"] == "call"]
    _deliver(con, ledger, calls, _router(tmp_path, None))
    path = tmp_path / "outbox" / "calls" / f"{AS_OF.isoformat()}.csv"
    first = read_csv_records(path)  # the phone is written as text a spreadsheet keeps: '+33...
    assert sorted(r["reminder_key"] for r in first) == sorted(calls["reminder_key"])
    assert {r["phone"] for r in first} == {"+33100000005", "+33100000006"}
    # a negotiator sees why each invoice is on the list before dialling
    why = {r["invoice_id"]: r for r in first}
    assert why["F-5"]["reason_1"] == "Customer paid 55% of past invoices late"
    assert why["F-5"]["reason_2"] == "Already 30 days overdue" and why["F-5"]["reason_3"] == ""
    assert (why["F-5"]["risk_grade"], why["F-6"]["risk_grade"]) == ("E", "B")
    assert (why["F-5"]["predicted_payment_date_p10"], why["F-5"]["predicted_payment_date"]) == (
        "2026-04-01",
        "2026-04-15",
    )
    assert why["F-6"]["predicted_payment_date_p90"] == "2026-05-16"

    # even if the ledger forgets (e.g. a lost ledger file), the call list itself refuses duplicates
    fresh = duckdb.connect()
    ensure_schemas(fresh)
    with SendLedger(tmp_path / "forgotten.sqlite") as forgotten:
        _deliver(fresh, forgotten, calls, _router(tmp_path, None))
    assert read_csv_records(path) == first
