"""Twilio callbacks: the StatusCallback URL convention, signature checks, status and opt-out mapping, E.164."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from relance.webhooks.load import Refused
from relance.webhooks.twilio import (
    FormParams,
    e164,
    inbound_events,
    is_opt_out,
    parse_form,
    public_base_url,
    status_callback_url,
    status_event,
    verify,
)

TOKEN = "12345"
AT = datetime(2026, 11, 2, 10, 0)


def test_the_status_callback_url_names_the_reminder() -> None:
    assert public_base_url(None, "127.0.0.1", 8787) == "http://127.0.0.1:8787"
    assert public_base_url(" https://hooks.example.test/relance/ ", "127.0.0.1", 8787) == (
        "https://hooks.example.test/relance"
    )
    url = status_callback_url("https://hooks.example.test/relance/", "2026-11-02:C1:first & co")
    assert url == (
        "https://hooks.example.test/relance/webhooks/twilio/status?reminder_key=2026-11-02%3AC1%3Afirst+%26+co"
    )


def test_a_signature_covers_the_url_with_its_query_and_every_parameter() -> None:
    url = status_callback_url("https://hooks.example.test", "R-1")
    params = {"MessageSid": "SM1", "MessageStatus": "delivered", "To": "+33612345678"}
    signature = RequestValidator(TOKEN).compute_signature(url, params)
    form = parse_form(urlencode(params).encode())
    verify(TOKEN, url, form, signature, None)  # no exception
    for bad_url, bad_form, token in (
        (status_callback_url("https://hooks.example.test", "R-2"), form, TOKEN),
        (url, parse_form(urlencode({**params, "MessageStatus": "failed"}).encode()), TOKEN),
        (url, form, "other-token"),
    ):
        with pytest.raises(Refused, match="invalid signature"):
            verify(token, bad_url, bad_form, signature, None)
    with pytest.raises(Refused, match="unsigned"):
        verify(TOKEN, url, form, None, None)
    with pytest.raises(Refused, match="no Twilio auth token"):
        verify(None, url, form, signature, None)


def test_repeated_form_names_are_all_signed() -> None:
    form = parse_form(b"MediaUrl=b&Body=hi&MediaUrl=a")
    assert form["MediaUrl"] == "a" and form.getlist("MediaUrl") == ["b", "a"]
    # Twilio's scheme, by hand: the URL, then each name with each of its values, sorted
    mac = hmac.new(TOKEN.encode(), b"https://x.test/inBodyhiMediaUrlaMediaUrlb", hashlib.sha1)
    signature = base64.b64encode(mac.digest()).decode()
    verify(TOKEN, "https://x.test/in", form, signature, None)
    with pytest.raises(Refused, match="invalid signature"):
        verify(TOKEN, "https://x.test/in", parse_form(b"MediaUrl=a&Body=hi"), signature, None)
    with pytest.raises(Refused, match="not UTF-8"):
        parse_form(b"Body=\xff")


def test_status_callbacks_become_events() -> None:
    form = FormParams([("MessageSid", "SM1"), ("MessageStatus", "Delivered")])
    event = status_event(form, " R-1 ", AT)
    assert (event.event_id, event.event, event.reminder_key, event.channel, event.provider) == (
        "SM1:delivered",
        "delivered",
        "R-1",
        "sms",
        "twilio",
    )
    assert (event.occurred_at, event.provider_message_id, event.reason, event.suppresses) == (AT, "SM1", None, False)
    assert event.settles
    permanent = status_event(
        FormParams([("SmsSid", "SM2"), ("SmsStatus", "undelivered"), ("ErrorCode", "30006")]), None, AT
    )
    assert (permanent.reason, permanent.suppresses, permanent.settles) == (
        "30006 landline or unreachable carrier",
        True,
        False,  # no reminder named: nothing to settle
    )
    temporary = status_event(
        FormParams([("MessageSid", "SM3"), ("MessageStatus", "failed"), ("ErrorCode", "30003")]), "R", AT
    )
    assert (temporary.reason, temporary.suppresses, temporary.settles) == ("30003", False, False)
    with pytest.raises(Refused, match="MessageSid and MessageStatus") as refused:
        status_event(FormParams([("MessageStatus", "sent")]), None, AT)
    assert refused.value.status == 400


@pytest.mark.parametrize(
    ("body", "opt_out_type", "expected"),
    [
        ("STOP", None, True),
        (" stop. ", None, True),
        ("Arrêt", None, True),
        ("unsubscribe", None, True),
        ("please stop writing to me", None, False),  # Twilio's rule: the whole body is the keyword
        ("START", None, False),
        ("anything", "STOP", True),  # Advanced Opt-Out recognised a keyword of its own
        ("", None, False),
    ],
)
def test_opt_out_keywords(body: str, opt_out_type: str | None, expected: bool) -> None:
    pairs = [("Body", body)] + ([("OptOutType", opt_out_type)] if opt_out_type else [])
    assert is_opt_out(FormParams(pairs)) is expected


def test_an_inbound_stop_is_one_event_with_the_sender_in_e164() -> None:
    form = FormParams([("MessageSid", "SMi"), ("From", "+33 6 12 34 56 78"), ("Body", "STOP")])
    (event,) = inbound_events(form, AT, "FR")
    assert (event.event_id, event.event, event.phone, event.suppresses, event.customer_id) == (
        "SMi:stop",
        "stop",
        "+33612345678",
        True,
        None,
    )
    assert (
        inbound_events(FormParams([("MessageSid", "SMj"), ("From", "+33612345678"), ("Body", "merci")]), AT, "FR") == []
    )
    with pytest.raises(Refused, match="From"):
        inbound_events(FormParams([("MessageSid", "SMk"), ("Body", "STOP")]), AT, "FR")


@pytest.mark.parametrize(
    ("number", "region", "expected"),
    [
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("+33 (0)6 12 34 56 78", "FR", "+33612345678"),
        ("0033612345678", "FR", "+33612345678"),
        ("07700 900123", "GB", "+447700900123"),
        ("+447700900123", "FR", "+447700900123"),
        ("12", "FR", None),
        ("not a number", "FR", None),
        ("", "FR", None),
    ],
)
def test_e164(number: str, region: str, expected: str | None) -> None:
    assert e164(number, region) == expected


def test_the_sms_transport_asks_for_the_callback_the_service_reads() -> None:
    from relance.channels import TWILIO_STATUS_PATH
    from relance.channels.sms import with_query
    from relance.webhooks.twilio import STATUS_PATH

    assert TWILIO_STATUS_PATH == STATUS_PATH
    for key in ("R-1", "2026-11-02:C0042:first", "clé & co/?"):
        assert with_query("https://h.test/relance" + TWILIO_STATUS_PATH, reminder_key=key) == status_callback_url(
            "https://h.test/relance", key
        )
