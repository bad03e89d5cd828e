"""Exactly-once delivery through the real SendGrid client against a spec-validating stand-in on 127.0.0.1,
and through the embedded outboxes, with a real send ledger (SQLite) and a real DuckDB warehouse."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from sendgrid.helpers.mail import CustomArg

from relance.channels import DeliveryError, SendGridTransport, build_mail, make_transport_for
from relance.channels.email import MailOptions
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
    kw.setdefault("backoff_seconds", 0)
    return deliver(
        con,
        planned,
        ledger=ledger,
        transport_for=transport_for,
        lineage=LINEAGE,
        flow_run_id="flow-1",
        sender_email="relances@example.com",
        sender_name="Service recouvrement",
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


def _emails(planned: pd.DataFrame) -> pd.DataFrame:
    return planned[planned["channel"] == "email"]


def _direct(sg: SendGridStandIn, timeout: float = 30.0):
    """Email only, through the real client, with a chosen timeout."""
    transport = SendGridTransport(sg.api_key, sg.url, timeout=timeout)
    return lambda _channel: transport


def test_a_500_leaves_the_message_in_doubt_never_resent_and_the_others_go(con, ledger, planned, tmp_path, sg):
    emails = _emails(planned)
    doubtful = emails["reminder_key"].iloc[0]
    sg.fail_next(1, 500)  # the first email request (highest exposure) gets a 500: SendGrid may have taken it

    report = _deliver(con, ledger, emails, _router(tmp_path, sg), sending_alert_after=timedelta(0))

    assert (report.sent, report.failed, report.in_doubt) == (2, 0, 1)
    assert report.in_doubt_keys == [doubtful]
    assert sg.requests == 3, "a 500 is never retried, even with attempts left (max_attempts=3)"
    record = ledger.get(doubtful)
    assert (record.status, record.attempts) == ("sending", 1)
    assert "outcome unknown" in record.last_error and "500" in record.last_error
    assert _sends(con).loc[doubtful, "status"] == "sending"
    assert [r.reminder_key for r in report.sending_overdue] == [doubtful]
    assert report.sending_total == 1
    assert {"outcome": "outcome unknown in this run (left 'sending')", "count": 1} in report.as_rows()

    rerun = _deliver(con, ledger, emails, _router(tmp_path, sg))
    assert (rerun.sent, rerun.skipped_already_sent, rerun.stuck_sending) == (0, 2, 1)
    assert sg.requests == 3, "nothing resent"

    # a person finds it is not in the SendGrid activity feed: the next run sends it, once
    ledger.reconcile(doubtful, "failed", note="not in the activity feed")
    last = _deliver(con, ledger, emails, _router(tmp_path, sg))
    assert (last.sent, last.skipped_already_sent) == (1, 2)
    assert [sg.received(k) for k in emails["reminder_key"]] == [1, 1, 1]
    assert ledger.get(doubtful).status == "sent" and ledger.get(doubtful).attempts == 2


def test_a_502_after_sendgrid_accepted_is_not_resent_and_an_event_settles_it(con, ledger, planned, tmp_path, sg):
    emails = _emails(planned)
    accepted = emails["reminder_key"].iloc[0]
    sg.accept_then_fail_next(1, 502)

    report = _deliver(con, ledger, emails, _router(tmp_path, sg))

    assert (report.sent, report.in_doubt, report.failed) == (2, 1, 0)
    assert sg.received(accepted) == 1, "SendGrid has it and will deliver it"
    assert ledger.get(accepted).status == "sending" and "502" in ledger.get(accepted).last_error
    for _ in range(2):
        rerun = _deliver(con, ledger, emails, _router(tmp_path, sg))
        assert (rerun.sent, rerun.stuck_sending) == (0, 1)
    assert sg.received(accepted) == 1 and sg.requests == 3

    # the Event Webhook's 'processed' event for it (helper: relance.webhooks) settles the row
    message_id = next(m.message_id for m in sg.messages if m.reminder_key == accepted)
    assert ledger.settle_from_provider(accepted, provider="sendgrid", event="processed", provider_message_id=message_id)
    assert (ledger.get(accepted).status, ledger.get(accepted).provider_message_id) == ("sent", message_id)
    assert ledger.settle_from_provider(accepted, provider="sendgrid", event="delivered") is None, "idempotent"
    assert [e["action"] for e in ledger.events(accepted)] == ["provider_event"]


def test_a_timeout_after_the_request_was_sent_is_not_resent(con, ledger, planned, sg):
    emails = _emails(planned)
    hung = emails["reminder_key"].iloc[1]
    # the first request goes out normally, the second is received and then never answered in time
    report = _deliver(con, ledger, emails.head(1), _direct(sg, timeout=0.5))
    assert report.sent == 1
    sg.hang_next(1, seconds=10)

    started = time.monotonic()
    report = _deliver(con, ledger, emails, _direct(sg, timeout=0.5))
    assert time.monotonic() - started < 5, "one timeout, no retry"

    assert (report.sent, report.skipped_already_sent, report.in_doubt) == (1, 1, 1)
    assert sg.received(hung) == 1
    assert ledger.get(hung).status == "sending"
    assert "timed out" in ledger.get(hung).last_error.lower() or "timeout" in ledger.get(hung).last_error.lower()
    again = _deliver(con, ledger, emails, _direct(sg, timeout=0.5))
    assert (again.sent, again.stuck_sending) == (0, 1)
    assert [sg.received(k) for k in emails["reminder_key"]] == [1, 1, 1]


def test_429_honours_retry_after_then_succeeds(con, ledger, planned, sg):
    emails = _emails(planned).head(1)
    key = emails["reminder_key"].iloc[0]
    sg.fail_next(1, 429, retry_after=1)

    report = _deliver(con, ledger, emails, _direct(sg))  # backoff_seconds=0: only Retry-After makes it wait

    assert (report.sent, report.failed) == (1, 0)
    assert [r.outcome for r in sg.log] == ["forced 429", "accepted"]
    assert sg.log[1].at - sg.log[0].at >= 1.0, "waited as long as SendGrid asked"
    assert sg.received(key) == 1 and ledger.get(key).attempts == 2


def test_a_retry_after_beyond_the_cap_pauses_the_channel_instead_of_sleeping(con, ledger, planned, sg):
    emails = _emails(planned)
    sg.fail_next(1, 429, retry_after=3600)

    started = time.monotonic()
    report = _deliver(con, ledger, emails, _direct(sg), max_retry_after_seconds=5)
    assert time.monotonic() - started < 3

    assert (report.sent, report.failed, report.paused) == (0, 1, 2)
    assert "rate-limited for 3600s" in report.paused_channels["email"]
    assert sg.requests == 1
    later = _deliver(con, ledger, emails, _direct(sg))
    assert later.sent == 3 and [sg.received(k) for k in emails["reminder_key"]] == [1, 1, 1]


def test_connection_refused_is_retried_within_the_run_and_nothing_is_doubled(con, ledger, planned, sg):
    emails = _emails(planned).head(1)
    key = emails["reminder_key"].iloc[0]
    sg.refuse_connections_for(0.2)  # the port does not listen for a moment (a restarting proxy)

    report = _deliver(con, ledger, emails, _direct(sg), backoff_seconds=1.0)  # first wait: 0.5-1 s

    assert report.sent == 1 and ledger.get(key).attempts >= 2, "refused first, retried"
    assert sg.requests == 1 and sg.received(key) == 1


def test_an_unreachable_host_fails_every_attempt_and_the_next_run_sends_each_once(con, ledger, planned, tmp_path, sg):
    emails = _emails(planned)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    down = SendGridTransport(sg.api_key, f"http://127.0.0.1:{dead}")

    report = _deliver(con, ledger, emails, lambda _channel: down)
    assert (report.sent, report.failed, report.in_doubt) == (0, 3, 0)
    assert {ledger.get(k).attempts for k in emails["reminder_key"]} == {3}
    assert all("request not sent" in ledger.get(k).last_error for k in emails["reminder_key"])

    rerun = _deliver(con, ledger, emails, _router(tmp_path, sg))
    assert rerun.sent == 3 and [sg.received(k) for k in emails["reminder_key"]] == [1, 1, 1]
    assert sg.requests == 3


def test_a_413_is_refused_and_not_retried_in_the_run(con, ledger, planned, sg):
    emails = _emails(planned)
    sg.max_body_bytes = 500  # every reminder is bigger than this

    report = _deliver(con, ledger, emails, _direct(sg))

    assert (report.sent, report.failed, report.rejected, report.abandoned) == (0, 3, 3, 0)
    assert sg.requests == 3 and sg.messages == []
    for k in emails["reminder_key"]:
        record = ledger.get(k)
        assert (record.status, record.attempts, record.rejections) == ("failed", 1, 1)
        assert "413" in record.last_error


def test_a_permanent_4xx_is_abandoned_after_the_bounded_attempts_across_runs(con, ledger, planned, sg):
    emails = _emails(planned)
    refused = emails["reminder_key"].iloc[0]
    for run in range(1, 4):
        sg.fail_next(1, 400)  # the first request of each run: SendGrid refuses that message
        report = _deliver(con, ledger, emails, _direct(sg), give_up_after_rejections=3)
        assert report.rejected == 1
        assert ledger.get(refused).rejections == run
        assert ledger.get(refused).status == ("abandoned" if run == 3 else "failed")
    assert report.abandoned_keys == [refused]
    assert [e["action"] for e in ledger.events(refused)] == ["abandon"]
    assert refused in handled_reminder_keys(ledger), "not planned again"

    requests = sg.requests
    after = _deliver(con, ledger, emails, _direct(sg), give_up_after_rejections=3)
    assert (after.skipped_abandoned, after.sent) == (1, 0)
    assert sg.requests == requests, "an abandoned message is not tried again"

    # a person fixes the cause and hands it back: the next run sends it, and its refusals start again
    assert ledger.reconcile(refused, "failed", note="address corrected") == "abandoned"
    assert ledger.get(refused).rejections == 0
    final = _deliver(con, ledger, emails, _direct(sg), give_up_after_rejections=3)
    assert final.sent == 1 and sg.received(refused) == 1


def test_unknown_outcomes_in_a_row_pause_the_channel(con, ledger, planned, sg):
    emails = _emails(planned)
    sg.fail_next(3, 503)
    report = _deliver(con, ledger, emails, _direct(sg), pause_after_unknown_outcomes=2)
    assert (report.in_doubt, report.paused, report.sent) == (2, 1, 0)
    assert sg.requests == 2
    assert "2 unknown outcomes in a row" in report.paused_channels["email"]


def test_sandbox_mode_is_accepted_with_200_and_marked(con, ledger, planned, sg):
    emails = _emails(planned)
    report = _deliver(con, ledger, emails, _direct(sg), mail_options=MailOptions(sandbox_mode=True))
    assert report.sent == 3
    assert sg.messages == [] and len(sg.sandboxed) == 3, "validated, delivered to nobody"
    for k in emails["reminder_key"]:
        assert ledger.get(k).provider_message_id == f"sandbox:{k}"


@pytest.mark.parametrize("status", [200, 202])
def test_a_success_status_without_proof_is_an_unknown_outcome(planned, sg, status):
    """200 outside sandbox mode, or 202 without X-Message-ID (a proxy's answer, not SendGrid's acceptance)."""
    row = _emails(planned).iloc[0]
    mail = build_mail(row, sender_email="relances@example.com", sender_name="S", lineage={})
    sg.fail_next(1, status)
    with pytest.raises(DeliveryError) as info:
        SendGridTransport(sg.api_key, sg.url).send(mail, row["reminder_key"])
    assert info.value.outcome_unknown and not info.value.retryable and info.value.status == status
    assert "not proof of acceptance" in str(info.value)


def test_payment_links_and_the_unsubscribe_group_pass_the_spec(con, ledger, planned, sg):
    emails = _emails(planned)
    options = MailOptions(
        payment_link_template="https://pay.example.com/i/{invoice_id}?amount={amount}&cur={currency}&c={customer_id}",
        unsubscribe_group_id=4242,
    )
    report = _deliver(con, ledger, emails, _direct(sg), mail_options=options)
    assert report.sent == 3
    for msg in sg.messages:
        row = emails.set_index("reminder_key").loc[msg.reminder_key]
        url = (
            f"https://pay.example.com/i/{row['invoice_id']}?amount={row['open_amount']:.2f}&cur=EUR"
            f"&c={row['customer_id']}"
        )
        text, html_part = (c["value"] for c in msg.body["content"])
        assert url in text
        assert f'<a href="{url.replace("&", "&amp;")}">' in html_part
        assert msg.body["asm"] == {"group_id": 4242}, "consumers' emails carry the unsubscribe group"
        assert set(msg.custom_args) <= {
            "reminder_key",
            "invoice_id",
            "model_version",
            "model_run_id",
            "flow_run_id",
            "dbt_invocation_id",
        }


def test_spec_violation_surfaces_as_delivery_error_with_the_field(planned, sg):
    row = planned[planned["channel"] == "email"].iloc[0]
    mail = build_mail(row, sender_email="relances@example.com", sender_name="S", lineage={})
    mail.custom_arg = CustomArg("campaign", "x")  # top level: an object, but the spec says string
    with pytest.raises(DeliveryError) as info:
        SendGridTransport(sg.api_key, sg.url).send(mail, row["reminder_key"])
    assert info.value.status == 400
    assert info.value.fields == ["custom_args"]
    assert (info.value.retryable, info.value.permanent, info.value.outcome_unknown) == (False, True, False)
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
    report = _deliver(con, ledger, emails, transport_for)
    assert (report.sent, report.failed, report.paused) == (0, 1, 2)
    assert sg.requests == 1  # 401 is not retried, and the channel is paused at once: the key is wrong for all
    assert "account" in report.paused_channels["email"]
    sends = _sends(con)
    assert list(sends["status"]) == ["failed"] and "401" in sends["last_error"].iloc[0]
    assert ledger.get(sends.index[0]).rejections == 0, "a bad key says nothing about the message"


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
    (letter_path,) = (outbox / "letter").glob(f"{letter_key}.*")  # one file per letter, HTML or PDF
    letter = _letter_text(letter_path)
    assert "F-4" in letter and "Client 4" in letter and "004,00" in letter
    sends = _sends(con)
    assert sends.loc[letter_key, "outbox_path"] == str(letter_path)
    assert sends["provider_message_id"].isna().all()
    assert not list(outbox.rglob("*.tmp"))

    mtimes = {p: p.stat().st_mtime_ns for p in outbox.rglob("*") if p.is_file()}
    again = _deliver(con, ledger, planned, _router(tmp_path, None))
    assert (again.sent, again.skipped_already_sent) == (0, 6)
    assert {p: p.stat().st_mtime_ns for p in outbox.rglob("*") if p.is_file()} == mtimes


def _letter_text(path: Path) -> str:
    if path.suffix == ".pdf":
        from pypdf import PdfReader

        return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)
    return path.read_text(encoding="utf-8")


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
