"""SendGrid Event Webhook: signature and timestamp checks, and how each event becomes a raw.message_events row."""

from __future__ import annotations

import base64
import json
from datetime import datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from relance.webhooks.load import SETTLING_EVENTS, MessageEvent, Refused
from relance.webhooks.sendgrid import SendGridVerifier, message_event, parse_batch, sign, suppresses

# A signature made by SendGrid, published with sendgrid-python's own tests (test/unit/test_eventwebhook.py):
# it proves the verification matches SendGrid's, not only our own signer.
SENDGRID_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eN"
    "Ec6wEA3F+g=="
)
SENDGRID_SIGNATURE = "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM="
SENDGRID_TIMESTAMP = "1600112502"
SENDGRID_BODY = (
    json.dumps(
        [
            {
                "email": "hello@world.com",
                "event": "dropped",
                "reason": "Bounced Address",
                "sg_event_id": "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",
                "sg_message_id": "LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",
                "smtp-id": "<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",
                "timestamp": 1600112492,
            }
        ],
        sort_keys=True,
        separators=(",", ":"),
    )
    + "\r\n"
).encode()


def _b64(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def test_a_signature_made_by_sendgrid_verifies_and_maps() -> None:
    verifier = SendGridVerifier(SENDGRID_KEY, max_age_seconds=300)
    verifier.verify(SENDGRID_BODY, SENDGRID_SIGNATURE, SENDGRID_TIMESTAMP, now=1600112502 + 60)
    (event,) = parse_batch(SENDGRID_BODY).events
    assert event == MessageEvent(
        event_id="ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",
        provider="sendgrid",
        channel="email",
        event="dropped",
        occurred_at=datetime(2020, 9, 14, 19, 41, 32),
        reason="Bounced Address",
        suppresses=True,
        provider_message_id="LRzXl_NHStOGhQ4kofSm_A",
    )
    with pytest.raises(Refused, match="invalid signature"):  # the same bytes without the final CRLF
        verifier.verify(SENDGRID_BODY.rstrip(), SENDGRID_SIGNATURE, SENDGRID_TIMESTAMP, now=1600112502)
    with pytest.raises(Refused, match="stale"):  # the same capture, replayed later
        verifier.verify(SENDGRID_BODY, SENDGRID_SIGNATURE, SENDGRID_TIMESTAMP, now=1600112502 + 301)


@pytest.mark.parametrize(
    ("offset", "message"), [(-301, "stale"), (301, "future"), (-299, None), (299, None), (0, None)]
)
def test_the_timestamp_window_is_max_age_both_ways(offset: int, message: str | None) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    verifier = SendGridVerifier(_b64(key), max_age_seconds=300)
    body = b'[{"event":"open"}]'
    now = 1_800_000_000.0
    timestamp = str(int(now) + offset)
    if message is None:
        verifier.verify(body, sign(key, body, timestamp), timestamp, now=now)
    else:
        with pytest.raises(Refused, match=message) as refused:
            verifier.verify(body, sign(key, body, timestamp), timestamp, now=now)
        assert refused.value.status == 403


def test_missing_key_headers_or_garbage_are_403() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    body, timestamp = b"[]", "1800000000"
    good = sign(key, body, timestamp)
    with pytest.raises(Refused, match="no SendGrid verification key"):
        SendGridVerifier(None, max_age_seconds=300).verify(body, good, timestamp, now=1800000000)
    verifier = SendGridVerifier(_b64(key), max_age_seconds=300)
    for signature, stamp in ((None, timestamp), (good, None), ("%%%", timestamp), ("AAAA", timestamp), (good, "x")):
        with pytest.raises(Refused) as refused:
            verifier.verify(body, signature, stamp, now=1800000000)
        assert refused.value.status == 403


def test_a_key_that_is_not_p256_is_refused_at_start_up() -> None:
    rsa_der = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(ValueError, match="P-256"):
        SendGridVerifier(base64.b64encode(rsa_der).decode(), max_age_seconds=300)
    with pytest.raises(ValueError, match="base64 DER"):
        SendGridVerifier("not a key", max_age_seconds=300)


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (
            {"event": "bounce", "type": "bounce", "status": "5.1.1", "reason": "no such user"},
            "bounce 5.1.1: no such user",
        ),
        ({"event": "bounce", "type": "blocked", "status": "4.7.1", "reason": "later"}, "blocked 4.7.1: later"),
        ({"event": "deferred", "attempt": "3", "response": "421 busy"}, "attempt 3: 421 busy"),
        ({"event": "group_unsubscribe", "asm_group_id": 42}, "unsubscribe group 42"),
        (
            {"event": "dropped", "reason": "Spam Content (if spam checker app enabled)"},
            "Spam Content (if spam checker app enabled)",
        ),
        ({"event": "open", "useragent": "x"}, None),
    ],
)
def test_reasons(event: dict, reason: str | None) -> None:
    mapped = message_event({"sg_event_id": "e1", "timestamp": 1, **event})
    assert mapped.reason == reason


@pytest.mark.parametrize(
    ("event", "suppressed"),
    [
        ({"event": "bounce", "type": "bounce"}, True),
        ({"event": "bounce"}, True),  # older payloads carry no type: a bounce is hard
        ({"event": "bounce", "type": "blocked"}, False),  # the receiving server refuses for now
        ({"event": "dropped", "reason": "Bounced Address"}, True),
        ({"event": "dropped", "reason": "Unsubscribed Address"}, True),
        ({"event": "dropped", "reason": "Spam Reporting Address"}, True),
        ({"event": "dropped", "reason": "Invalid"}, True),
        ({"event": "dropped", "reason": "Spam Content (if spam checker app enabled)"}, False),
        ({"event": "dropped", "reason": "Recipient List over Package Quota"}, False),
        ({"event": "spamreport"}, True),
        ({"event": "unsubscribe"}, True),
        ({"event": "group_unsubscribe", "asm_group_id": 7}, True),
        ({"event": "group_resubscribe", "asm_group_id": 7}, False),
        ({"event": "delivered"}, False),
        ({"event": "deferred"}, False),
    ],
)
def test_what_suppresses_the_address(event: dict, suppressed: bool) -> None:
    assert suppresses(event["event"], event) is suppressed
    assert message_event({"sg_event_id": "e", **event}).suppresses is suppressed


def test_mapping_edges() -> None:
    no_id = {"event": "Delivered", "timestamp": "1793613600", "reminder_key": " R-1 ", "email": "a@b.example"}
    first, second = message_event(no_id), message_event(dict(no_id))
    assert first.event_id.startswith("sendgrid:") and first.event_id == second.event_id  # a replay deduplicates
    assert (first.event, first.reminder_key, first.occurred_at) == ("delivered", "R-1", datetime(2026, 11, 2, 10, 0))
    assert message_event({"sg_event_id": "e", "event": "open", "timestamp": "soon"}).occurred_at is None
    assert message_event({"sg_event_id": "e", "event": "open", "timestamp": True}).occurred_at is None
    assert message_event({"sg_event_id": "e", "event": "open", "reminder_key": ["x"]}).reminder_key is None
    row = message_event({"sg_event_id": "e", "event": "open", "timestamp": 1793613600}).raw_row()
    assert list(row) == [
        "event_id",
        "reminder_key",
        "customer_id",
        "provider",
        "channel",
        "event",
        "occurred_at",
        "reason",
    ]
    assert row["occurred_at"] == "2026-11-02 10:00:00"


@pytest.mark.parametrize(("body", "error"), [(b'{"a": 1}', "JSON array"), (b"[1]", "event 0"), (b"\xff", "not JSON")])
def test_a_body_that_is_not_an_array_of_objects_is_400(body: bytes, error: str) -> None:
    with pytest.raises(Refused, match=error) as refused:
        parse_batch(body)
    assert refused.value.status == 400


def test_every_event_that_settles_a_send_is_in_the_data_contract() -> None:
    """A settling event outside the contract's vocabulary is quarantined, and then settles nothing. 'processed'
    (SendGrid) and 'queued'/'sent' (Twilio) still wait to be added to ``expectations.suites.MESSAGE_EVENTS`` (and
    the accepted values of stg_message_events); until then a 'delivered' event settles the send."""
    from expectations.suites import MESSAGE_EVENTS

    missing = {e for events in SETTLING_EVENTS.values() for e in events} - set(MESSAGE_EVENTS)
    assert missing <= {"processed", "queued", "sent"}
    assert {"delivered", "bounce", "dropped", "undelivered"} <= set(MESSAGE_EVENTS)
