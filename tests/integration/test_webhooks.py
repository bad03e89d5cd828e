"""The webhook service against a real DuckDB warehouse, the real send ledger and the real data contract (GX):
SendGrid batches signed like SendGrid (ECDSA P-256 over timestamp + raw body, a key pair made here), Twilio
callbacks signed with ``RequestValidator.compute_signature``; valid, tampered, stale, replayed and 1,000-event
batches, opt-outs, settlements, unknown event names, and a warehouse held by another process."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator

from relance import ops
from relance.ingest import load_extracts
from relance.raw_schema import ENTITIES
from relance.send_ledger import SendLedger
from relance.settings import Settings
from relance.sources.base import EntityExtract
from relance.warehouse import connection, ensure_schemas
from relance.webhooks import sendgrid, twilio
from relance.webhooks.app import create_app
from relance.webhooks.load import Inbox, drain, inbox_path

pytestmark = pytest.mark.integration

PUBLIC_URL = "https://hooks.example.test/relance"
TWILIO_TOKEN = "twilio-test-token"
CUSTOMERS = {
    "C1": {"email": "compta@alpha.example", "phone": "06 12 34 56 78"},  # written the French way
    "C2": {"email": "ap@beta.example", "phone": "+33700000001"},
    "C3": {"email": "c3@gamma.example", "phone": None},
}
PLANNED = {"R-EMAIL-1": ("C1", "email"), "R-SMS-2": ("C2", "sms"), "R-EMAIL-3": ("C3", "email")}


@pytest.fixture(scope="module")
def signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _public_b64(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def _seed(settings: Settings) -> None:
    cols = list(ENTITIES["customers"])
    rows = [
        {"customer_id": c, "customer_name": f"Client {c}", "customer_type": "B2B", **v} for c, v in CUSTOMERS.items()
    ]
    table = pa.table({c: pa.array([r.get(c) for r in rows], pa.string()) for c in cols})
    plan = pd.DataFrame(
        [
            {
                "reminder_key": key, "invoice_id": f"INV-{key}", "customer_id": customer, "as_of_date": "2026-11-02",
                "step": "first", "channel": channel, "tone": "cordial", "p_late": 0.5, "open_amount": 100.0,
                "currency": "EUR", "recipient": CUSTOMERS[customer]["email"], "model_version": None,
                "model_run_id": None, "dbt_invocation_id": None, "planned_at": "2026-11-02 08:00:00",
                "flow_run_id": None,
            }
            for key, (customer, channel) in PLANNED.items()
        ]
    )  # fmt: skip
    with connection(settings.warehouse) as con:
        ensure_schemas(con)
        load_extracts(
            con, [EntityExtract("customers", table, "customers.csv", "h-cust")], source_name="erp", flow_run_id=None
        )
        ops.record_planned(con, plan)
    with SendLedger(settings.send_ledger) as ledger:  # every planned message claimed, outcome unknown
        for key, (customer, channel) in PLANNED.items():
            assert ledger.claim(key, channel, customer_id=customer, invoice_id=f"INV-{key}") == 0


@pytest.fixture
def settings(tmp_path: Path, signing_key: ec.EllipticCurvePrivateKey) -> Settings:
    s = Settings(
        data_dir=tmp_path / "data",
        sendgrid_webhook_public_key=_public_b64(signing_key),
        twilio_auth_token=TWILIO_TOKEN,
        webhook_public_url=PUBLIC_URL,
        webhook_max_age_seconds=300,
    )
    s.ensure_dirs()
    _seed(s)
    return s


@pytest.fixture
def client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings, drain_interval_seconds=0))


def _signed(key: ec.EllipticCurvePrivateKey, body: bytes, at: float | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() if at is None else at))
    return {
        sendgrid.SIGNATURE_HEADER: sendgrid.sign(key, body, timestamp),
        sendgrid.TIMESTAMP_HEADER: timestamp,
        "Content-Type": "application/json",
    }


def _body(events: list[dict[str, Any]]) -> bytes:
    return json.dumps(events).encode() + b"\r\n"  # SendGrid's bodies end with CRLF: signed as sent


def _event(n: int, event: str, key: str | None = "R-EMAIL-1", **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "email": "compta@alpha.example",
        "timestamp": 1793613600 + n,  # 2026-11-02 10:00 UTC
        "event": event,
        "sg_event_id": f"sg-{n:05d}",
        "sg_message_id": f"XMSG{key}.filter0001.1.0",
        "smtp-id": f"<{n}@relance>",
        **extra,
    }
    if key is not None:
        out["reminder_key"] = key
    return out


def _rows(settings: Settings) -> list[tuple]:
    with connection(settings.warehouse) as con:
        return con.execute(
            "SELECT event_id, reminder_key, customer_id, provider, channel, event, occurred_at, reason "
            "FROM raw.message_events ORDER BY event_id"
        ).fetchall()


def _suppressions(settings: Settings) -> list[tuple]:
    with connection(settings.warehouse) as con:
        return con.execute(
            "SELECT customer_id, channel, source, reason, created_at, lifted_at FROM ops.contact_suppressions "
            "ORDER BY customer_id, channel, created_at"
        ).fetchall()


def _quarantine(settings: Settings) -> list[tuple]:
    with connection(settings.warehouse) as con:
        return con.execute(
            "SELECT natural_key, stage, reason FROM ops.quarantine WHERE entity = 'message_events' ORDER BY 1"
        ).fetchall()


def _ledger(settings: Settings, key: str):
    with SendLedger(settings.send_ledger) as ledger:
        return ledger.get(key), ledger.events(key)


# --- SendGrid ----------------------------------------------------------------------------------------------------


def test_a_valid_batch_lands_with_customers_reasons_and_a_suppression(
    client: TestClient, settings: Settings, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    events = [
        _event(1, "delivered"),
        _event(2, "open", useragent="Mozilla"),
        _event(3, "bounce", key="R-EMAIL-3", type="bounce", status="5.1.1", reason="550 5.1.1 no such user"),
        _event(4, "bounce", key="R-EMAIL-1", type="blocked", status="4.7.1", reason="try later"),
        _event(5, "delivered", key=None),  # a console test event: no reminder, kept without a customer
    ]
    body = _body(events)
    answer = client.post("/webhooks/sendgrid", content=body, headers=_signed(signing_key, body))

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "loaded" and answer.json()["rows_loaded"] == 5
    rows = {r[0]: r for r in _rows(settings)}
    assert sorted(rows) == ["sg-00001", "sg-00002", "sg-00003", "sg-00004", "sg-00005"]
    assert rows["sg-00001"][1:7] == (
        "R-EMAIL-1", "C1", "sendgrid", "email", "delivered", datetime(2026, 11, 2, 10, 0, 1),
    )  # fmt: skip
    assert rows["sg-00003"][2] == "C3" and rows["sg-00003"][7] == "bounce 5.1.1: 550 5.1.1 no such user"
    assert rows["sg-00005"][1:3] == (None, None)
    assert _quarantine(settings) == []
    # the hard bounce suppresses C3's email, once; the block (a server refusing for now) suppresses nothing
    assert [(c, ch, src) for c, ch, src, *_ in _suppressions(settings)] == [("C3", "email", "provider")]
    assert "sg-00003" in _suppressions(settings)[0][3]
    with connection(settings.warehouse) as con:
        states = con.execute(
            "SELECT source_name, validation_state FROM ops.ingest_batches WHERE entity = 'message_events'"
        ).fetchall()
    assert states == [("webhooks:sendgrid", "passed")]
    assert Inbox(inbox_path(settings)).backlog()[0] == 0


def test_a_sending_row_is_settled_by_a_delivered_event_once(
    client: TestClient, settings: Settings, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    with SendLedger(settings.send_ledger) as ledger:  # R-EMAIL-3 was recorded as not sent; SendGrid says otherwise
        ledger.failed("R-EMAIL-3", "email", "connection reset", 1)
    body = _body([_event(1, "delivered"), _event(2, "open"), _event(3, "deferred", key="R-EMAIL-3")])
    assert client.post("/webhooks/sendgrid", content=body, headers=_signed(signing_key, body)).status_code == 200

    record, history = _ledger(settings, "R-EMAIL-1")
    assert record.status == "sent" and record.provider_message_id == "XMSGR-EMAIL-1"
    assert [(h["action"], h["from_status"], h["to_status"]) for h in history] == [("provider_event", "sending", "sent")]
    assert "delivered (event sg-00001)" in history[0]["note"]
    assert [h["from_status"] for h in _ledger(settings, "R-EMAIL-3")[1]] == ["failed"]
    assert _ledger(settings, "R-SMS-2")[0].status == "sending"  # not named by any event
    with connection(settings.warehouse) as con:  # the warehouse copy follows the ledger
        assert con.execute(
            "SELECT reminder_key, status FROM ops.reminder_sends WHERE status = 'sent' ORDER BY 1"
        ).fetchall() == [("R-EMAIL-1", "sent"), ("R-EMAIL-3", "sent")]


def test_a_tampered_or_unsigned_body_is_refused_and_nothing_is_kept(
    client: TestClient, settings: Settings, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    body = _body([_event(1, "delivered")])
    headers = _signed(signing_key, body)
    tampered = body.replace(b"delivered", b"bounce\x20\x20\x20")
    answer = client.post("/webhooks/sendgrid", content=tampered, headers=headers)
    assert answer.status_code == 403 and "invalid signature" in answer.json()["error"]

    other_key = ec.generate_private_key(ec.SECP256R1())
    assert client.post("/webhooks/sendgrid", content=body, headers=_signed(other_key, body)).status_code == 403
    unsigned = {k: v for k, v in headers.items() if k != sendgrid.SIGNATURE_HEADER}
    assert client.post("/webhooks/sendgrid", content=body, headers=unsigned).status_code == 403
    moved = {**headers, sendgrid.TIMESTAMP_HEADER: str(int(headers[sendgrid.TIMESTAMP_HEADER]) + 1)}
    assert client.post("/webhooks/sendgrid", content=body, headers=moved).status_code == 403
    garbage = {**headers, sendgrid.SIGNATURE_HEADER: "not base64!"}
    assert client.post("/webhooks/sendgrid", content=body, headers=garbage).status_code == 403

    assert _rows(settings) == []
    assert Inbox(inbox_path(settings)).backlog()[0] == 0
    assert _ledger(settings, "R-EMAIL-1")[0].status == "sending"


def test_stale_and_future_timestamps_are_refused(
    client: TestClient, settings: Settings, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    body = _body([_event(1, "delivered")])
    stale = client.post("/webhooks/sendgrid", content=body, headers=_signed(signing_key, body, time.time() - 400))
    assert stale.status_code == 403 and "stale" in stale.json()["error"]
    future = client.post("/webhooks/sendgrid", content=body, headers=_signed(signing_key, body, time.time() + 900))
    assert future.status_code == 403 and "future" in future.json()["error"]
    assert _rows(settings) == []


def test_no_verification_key_refuses_every_batch(settings: Settings, signing_key: ec.EllipticCurvePrivateKey) -> None:
    unkeyed = settings.model_copy(update={"sendgrid_webhook_public_key": None})
    client = TestClient(create_app(unkeyed, drain_interval_seconds=0))
    body = _body([_event(1, "delivered")])
    answer = client.post("/webhooks/sendgrid", content=body, headers=_signed(signing_key, body))
    assert answer.status_code == 403 and "no SendGrid verification key" in answer.json()["error"]
    assert client.get("/healthz").json()["sendgrid_verification"] is False


def test_a_replayed_batch_or_a_repeated_event_loads_nothing_new(
    client: TestClient, settings: Settings, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    events = [_event(1, "delivered", key="R-EMAIL-3"), _event(2, "spamreport", key="R-EMAIL-3")]
    body = _body(events)
    first = client.post("/webhooks/sendgrid", content=body, headers=_signed(signing_key, body))
    again = client.post("/webhooks/sendgrid", content=body, headers=_signed(signing_key, body))
    # SendGrid re-batches: the same events in another request, one repeated inside it, plus one new
    other = _body([events[1], _event(3, "click", key="R-EMAIL-3"), events[1]])
    mixed = client.post("/webhooks/sendgrid", content=other, headers=_signed(signing_key, other))

    assert [a.status_code for a in (first, again, mixed)] == [200, 200, 200]
    assert first.json()["rows_loaded"] == 2 and again.json()["rows_loaded"] == 0
    assert mixed.json()["rows_loaded"] == 1 and mixed.json()["duplicates_in_request"] == 1
    rows = _rows(settings)
    assert [r[0] for r in rows] == ["sg-00001", "sg-00002", "sg-00003"]
    assert len(_suppressions(settings)) == 1  # the spam report suppressed once
    assert [h["to_status"] for h in _ledger(settings, "R-EMAIL-3")[1]] == ["sent"]


def test_a_lifted_suppression_is_not_written_again_by_a_replay(
    client: TestClient, settings: Settings, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    body = _body([_event(1, "unsubscribe", key="R-EMAIL-1")])
    assert client.post("/webhooks/sendgrid", content=body, headers=_signed(signing_key, body)).status_code == 200
    with connection(settings.warehouse) as con:
        assert ops.lift_suppressions(con, "C1", "email", at=datetime.now(UTC).replace(tzinfo=None)) == 1
    replay = _body([_event(1, "unsubscribe", key="R-EMAIL-1"), _event(2, "open", key="R-EMAIL-1")])
    assert client.post("/webhooks/sendgrid", content=replay, headers=_signed(signing_key, replay)).status_code == 200
    assert [s[5] is not None for s in _suppressions(settings)] == [True]  # only the lifted one


def test_a_1000_event_batch_loads_with_nothing_lost(
    client: TestClient, settings: Settings, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    names = ("processed", "delivered", "open", "click", "deferred")
    keys = (*PLANNED, None)
    events = [
        _event(n, names[n % len(names)], key=keys[n % len(keys)], attempt="1", response="421 try later")
        for n in range(1000)
    ]
    body = _body(events)
    started = time.perf_counter()
    answer = client.post("/webhooks/sendgrid", content=body, headers=_signed(signing_key, body))
    elapsed = time.perf_counter() - started

    assert answer.status_code == 200, answer.text
    assert answer.json()["received"] == 1000
    with connection(settings.warehouse) as con:
        count, distinct = con.execute("SELECT count(*), count(DISTINCT event_id) FROM raw.message_events").fetchone()
        ids = {r[0] for r in con.execute("SELECT event_id FROM raw.message_events").fetchall()}
    assert (count, distinct) == (1000, 1000)
    assert ids == {e["sg_event_id"] for e in events}
    assert elapsed < 60, f"a 1,000-event batch took {elapsed:.1f} s"


def test_unknown_event_names_are_quarantined_never_dropped(
    client: TestClient, settings: Settings, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    events = [
        _event(1, "delivered", key="R-EMAIL-3"),
        _event(2, "teleported", key="R-EMAIL-1"),
        _event(3, "delivered", key="R-EMAIL-1"),  # no timestamp: quarantined, so it settles nothing
        _event(4, "delivered", key=None),  # no event name
    ]
    events[2].pop("timestamp")
    events[3].pop("event")
    body = _body(events)
    answer = client.post("/webhooks/sendgrid", content=body, headers=_signed(signing_key, body))

    assert answer.status_code == 200
    assert [r[0] for r in _rows(settings)] == ["sg-00001", "sg-00002", "sg-00003", "sg-00004"]  # all kept in raw
    quarantined = {q[0]: q for q in _quarantine(settings)}
    assert sorted(quarantined) == ["sg-00002", "sg-00003", "sg-00004"]
    assert "teleported" in quarantined["sg-00002"][2] and quarantined["sg-00002"][1] == "contract"
    assert "occurred_at" in quarantined["sg-00003"][2]
    assert answer.json()["rows_quarantined"] == 3
    # a quarantined event has no consequence: R-EMAIL-1 is still in doubt, R-EMAIL-3 settled by its delivery
    assert _ledger(settings, "R-EMAIL-1")[0].status == "sending"
    assert _ledger(settings, "R-EMAIL-3")[0].status == "sent"


def test_bad_json_is_a_400_even_when_signed(
    client: TestClient, settings: Settings, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    for body in (b'{"event": "delivered"}', b"[1, 2]", b"not json"):
        assert client.post("/webhooks/sendgrid", content=body, headers=_signed(signing_key, body)).status_code == 400
    assert _rows(settings) == []


# --- Twilio ------------------------------------------------------------------------------------------------------


def _twilio_post(client: TestClient, path_and_query: str, params: dict[str, str], *, token: str = TWILIO_TOKEN) -> Any:
    signature = RequestValidator(token).compute_signature(PUBLIC_URL + path_and_query, params)
    return client.post(path_and_query, data=params, headers={twilio.SIGNATURE_HEADER: signature})


def _status(sid: str, status: str, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": "AC00000000000000000000000000000000",
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "From": "+33700000000",
        "To": "+33700000001",
        "ApiVersion": "2010-04-01",
        **extra,
    }


def test_twilio_status_callbacks_are_verified_and_settle_the_send(client: TestClient, settings: Settings) -> None:
    callback = twilio.status_callback_url(PUBLIC_URL, "R-SMS-2")
    path = callback.removeprefix(PUBLIC_URL)
    assert path == "/webhooks/twilio/status?reminder_key=R-SMS-2"

    forged = _twilio_post(client, path, _status("SM1", "delivered"), token="not-the-token")
    assert forged.status_code == 403
    # a valid signature of another reminder's URL does not carry over to this one
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(
        PUBLIC_URL + "/webhooks/twilio/status?reminder_key=R-EMAIL-1", _status("SM1", "delivered")
    )
    moved = client.post(path, data=_status("SM1", "delivered"), headers={twilio.SIGNATURE_HEADER: signature})
    assert moved.status_code == 403
    assert client.post(path, data=_status("SM1", "delivered")).status_code == 403  # unsigned
    assert _rows(settings) == []

    assert _twilio_post(client, path, _status("SM1", "sent")).status_code == 200
    assert _twilio_post(client, path, _status("SM1", "delivered")).status_code == 200
    assert _twilio_post(client, path, _status("SM1", "delivered")).status_code == 200  # Twilio said it twice
    rows = _rows(settings)
    assert [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows] == [
        ("SM1:delivered", "R-SMS-2", "C2", "twilio", "sms", "delivered"),
        ("SM1:sent", "R-SMS-2", "C2", "twilio", "sms", "sent"),
    ]
    record, history = _ledger(settings, "R-SMS-2")
    assert record.status == "sent" and record.provider_message_id == "SM1"
    assert len(history) == 1


def test_a_permanent_sms_error_suppresses_the_channel(client: TestClient, settings: Settings) -> None:
    path = twilio.status_callback_url(PUBLIC_URL, "R-SMS-2").removeprefix(PUBLIC_URL)
    answer = _twilio_post(client, path, _status("SM2", "undelivered", ErrorCode="30005"))
    assert answer.status_code == 200
    (row,) = _rows(settings)
    assert row[5:] and row[5] == "undelivered" and row[7] == "30005 unknown destination handset"
    assert [(c, ch, src) for c, ch, src, *_ in _suppressions(settings)] == [("C2", "sms", "provider")]
    # a temporary failure suppresses nothing
    assert _twilio_post(client, path, _status("SM3", "undelivered", ErrorCode="30003")).status_code == 200
    assert len(_suppressions(settings)) == 1


def test_an_inbound_stop_suppresses_sms_for_the_customer_with_that_number(
    client: TestClient, settings: Settings
) -> None:
    inbound = {"MessageSid": "SMin1", "From": "+33612345678", "To": "+33700000000", "Body": " Stop ", "NumMedia": "0"}
    answer = _twilio_post(client, "/webhooks/twilio/inbound", inbound)
    assert answer.status_code == 200 and answer.text.startswith("<?xml") and "<Response>" in answer.text
    assert _twilio_post(client, "/webhooks/twilio/inbound", inbound).status_code == 200  # a retry
    chatter = {**inbound, "MessageSid": "SMin2", "Body": "I paid yesterday"}
    assert _twilio_post(client, "/webhooks/twilio/inbound", chatter).status_code == 200

    (row,) = _rows(settings)
    assert row[:6] == ("SMin1:stop", None, "C1", "twilio", "sms", "stop")  # C1's phone is written 06 12 34 56 78
    assert [(c, ch, src) for c, ch, src, *_ in _suppressions(settings)] == [("C1", "sms", "provider")]
    assert _twilio_post(client, "/webhooks/twilio/inbound", {**inbound, "Body": "STOP"}, token="x").status_code == 403


def test_twilio_callbacks_are_refused_without_an_auth_token(settings: Settings) -> None:
    client = TestClient(create_app(settings.model_copy(update={"twilio_auth_token": None}), drain_interval_seconds=0))
    path = twilio.status_callback_url(PUBLIC_URL, "R-SMS-2").removeprefix(PUBLIC_URL)
    answer = _twilio_post(client, path, _status("SM1", "delivered"))
    assert answer.status_code == 403 and "auth token" in answer.json()["error"]


# --- the warehouse held by another process -----------------------------------------------------------------------


def test_a_busy_warehouse_keeps_the_batch_in_the_inbox_until_it_is_drained(
    settings: Settings, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, duckdb
                con = duckdb.connect({str(settings.warehouse)!r})
                print("holding", flush=True)
                sys.stdin.read()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        client = TestClient(create_app(settings, drain_interval_seconds=0, warehouse_wait_seconds=0.2))
        body = _body([_event(1, "delivered"), _event(2, "bounce", type="bounce", reason="no such user")])
        answer = client.post("/webhooks/sendgrid", content=body, headers=_signed(signing_key, body))
        assert answer.status_code == 202 and answer.json()["status"] == "queued"
        assert client.get("/healthz").json()["inbox_waiting"] == 1
    finally:
        holder.communicate("", timeout=30)  # closing stdin ends the holder
    report = drain(settings)
    assert (report.entries, report.rows_loaded, report.suppressions, report.settled) == (1, 2, 1, ["R-EMAIL-1"])
    assert [r[0] for r in _rows(settings)] == ["sg-00001", "sg-00002"]
    assert Inbox(inbox_path(settings)).backlog() == (0, None)
    assert drain(settings).entries == 0


def test_a_crash_between_load_and_validation_is_finished_by_the_next_drain(
    settings: Settings, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    def crash(con: duckdb.DuckDBPyConnection, batch_ids: list[str]) -> Any:
        raise RuntimeError("killed during validation")

    client = TestClient(create_app(settings, validate=crash, drain_interval_seconds=0))
    body = _body([_event(1, "delivered"), _event(2, "unsubscribe")])
    answer = client.post("/webhooks/sendgrid", content=body, headers=_signed(signing_key, body))
    assert answer.status_code == 202  # kept: SendGrid need not retry
    with connection(settings.warehouse) as con:
        assert con.execute(
            "SELECT validation_state FROM ops.ingest_batches WHERE entity = 'message_events'"
        ).fetchall() == [("pending",)]
    assert _suppressions(settings) == [] and _ledger(settings, "R-EMAIL-1")[0].status == "sending"

    report = drain(settings)  # the real contract this time
    assert (report.rows_loaded, report.rows_unchanged, report.suppressions, report.settled) == (0, 2, 1, ["R-EMAIL-1"])
    with connection(settings.warehouse) as con:
        assert con.execute(
            "SELECT validation_state FROM ops.ingest_batches WHERE entity = 'message_events'"
        ).fetchall() == [
            ("passed",),
            ("passed",),
        ]
    assert len(_rows(settings)) == 2


def test_healthz(client: TestClient) -> None:
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ok",
        "sendgrid_verification": True,
        "twilio_verification": True,
        "inbox_waiting": 0,
        "oldest_waiting_seconds": None,
    }


# --- the commands ------------------------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_runs_uvicorn_on_loopback_and_drain_empties_the_inbox(
    settings: Settings, signing_key: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    import httpx
    from typer.testing import CliRunner

    from relance.webhooks.cli import webhooks_app

    port = _free_port()
    env = {
        "RELANCE_DATA_DIR": str(settings.data),
        "RELANCE_SENDGRID_WEBHOOK_PUBLIC_KEY": settings.sendgrid_webhook_public_key or "",
        "RELANCE_WEBHOOK_PORT": str(port),
    }
    server = subprocess.Popen(
        [sys.executable, "-c", "from relance.webhooks.cli import webhooks_app; webhooks_app()", "serve"],
        cwd=tmp_path,  # no .env of the repository
        env={**{k: v for k, v in os.environ.items() if not k.startswith("RELANCE_")}, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:  # readiness: the port answers
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the service did not start in 60 s"
                time.sleep(0.2)
        assert health.json()["sendgrid_verification"] is True
        body = _body([_event(1, "delivered")])
        answer = httpx.post(
            f"http://127.0.0.1:{port}/webhooks/sendgrid", content=body, headers=_signed(signing_key, body)
        )
        assert answer.status_code == 200 and answer.json()["rows_loaded"] == 1
    finally:
        server.terminate()
        server.communicate(timeout=30)
    assert [r[0] for r in _rows(settings)] == ["sg-00001"]

    # what waits in the inbox (here: put there directly) is loaded by `relance webhooks drain`
    from relance.webhooks.sendgrid import parse_batch

    later = _body([_event(2, "open")])
    Inbox(inbox_path(settings)).put("sendgrid", parse_batch(later).events, digest="d2", received_at=datetime.now(UTC))
    saved = dict(os.environ)  # the CLI sets the tools' environment (Prefect home...) for its process: not for ours
    try:
        result = CliRunner().invoke(webhooks_app, ["drain", "--wait", "5"], env=env)
        empty = CliRunner().invoke(webhooks_app, ["drain"], env=env)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert result.exit_code == 0, result.output
    assert "1 request(s): 1 event(s), 1 appended" in result.output
    assert [r[0] for r in _rows(settings)] == ["sg-00001", "sg-00002"]
    assert empty.exit_code == 0 and "inbox is empty" in empty.output
