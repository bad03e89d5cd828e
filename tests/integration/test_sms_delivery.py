"""SMS through the official Twilio client against a stand-in on 127.0.0.1 that validates every request against
the Twilio API v2010 spec, and exactly once through the delivery loop with a real send ledger (SQLite) and a
real DuckDB warehouse."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from relance.channels import TWILIO_STATUS_PATH, DeliveryError, make_transport_for
from relance.channels.sms import (
    SmsMessage,
    TwilioDeliveryError,
    TwilioTransport,
    build_sms,
    segments,
)
from relance.delivery import deliver
from relance.ops import PLAN_COLUMNS
from relance.send_ledger import SendLedger
from relance.warehouse import ensure_schemas
from tests.standins.twilio import (
    TwilioStandIn,
    count_segments,
    load_response_validator,
    response_properties,
    running_twilio_standin,
)

pytestmark = pytest.mark.integration

AS_OF = date(2026, 3, 31)
FROM = "+33639980000"
CALLBACK = "https://hooks.example.com" + TWILIO_STATUS_PATH
SID = re.compile(r"^SM[0-9a-f]{32}$")


def _row(i: int, **overrides) -> dict:
    row = {
        "reminder_key": f"{i:064x}",
        "invoice_id": f"F-{i}",
        "customer_id": f"C-{i}",
        "as_of_date": pd.Timestamp(AS_OF),
        "step": "overdue_7",
        "channel": "sms",
        "tone": "cordial",
        "p_late": 0.5,
        "open_amount": 1000.0 + i,
        "currency": "EUR",
        "recipient": f"06 39 98 00 {i:02d}",
        "model_version": "7",
        "model_run_id": "run-7",
        "customer_name": f"Client {i}",
        "language": "fr" if i % 2 else "en",
        "invoice_count": 1,
    }
    return {**row, **overrides}


@pytest.fixture
def tw() -> Iterator[TwilioStandIn]:
    with running_twilio_standin(retry_after="0") as stand_in:
        yield stand_in


def _transport(tw: TwilioStandIn, **kw) -> TwilioTransport:
    options = {"from_number": FROM, "host": tw.url, "status_callback": CALLBACK, "timeout": 2.0, **kw}
    return TwilioTransport(tw.account_sid, options.pop("auth_token", tw.auth_token), **options)


# --- the transport against the stand-in ---------------------------------------------------------------------


def test_a_send_passes_the_spec_and_returns_the_message_sid(tw):
    row = _row(1, payment_link="https://pay.example.com/F-1")
    result = _transport(tw).send(row, row["reminder_key"])

    assert SID.fullmatch(result.provider_message_id)
    (received,) = tw.messages
    assert received.sid == result.provider_message_id
    expected = build_sms(row, sender_name="Service recouvrement", opt_out_number=FROM)
    assert received.params == {
        "To": "+33639980001",
        "From": FROM,
        "Body": expected.body,
        "StatusCallback": f"{CALLBACK}?reminder_key={row['reminder_key']}",
    }
    assert "https://pay.example.com/F-1" in received.body and received.body.endswith(f"STOP au {FROM}")
    # the answer the client read is a MessageInstance as the spec describes it
    assert not list(load_response_validator().iter_errors(received.response))
    assert set(received.response) <= response_properties()
    assert received.response["status"] == "queued"
    # our count and the stand-in's independent one agree
    assert int(received.response["num_segments"]) == segments(received.body)[1] == count_segments(received.body)


def test_a_messaging_service_can_send_instead_of_a_number(tw):
    transport = _transport(tw, from_number=None, messaging_service_sid="MG" + "a" * 32, status_callback=None)
    result = transport.send(_row(2), "key-2")
    (received,) = tw.messages
    assert received.params["MessagingServiceSid"] == "MG" + "a" * 32
    assert "From" not in received.params and "StatusCallback" not in received.params
    assert received.sid == result.provider_message_id
    assert received.body.endswith("Reply STOP to opt out")  # no number to text STOP to: the generic wording


def test_the_stand_in_refuses_what_the_spec_refuses(tw):
    # a message service SID that breaks the spec's pattern never reaches the messages list
    bad_service = _transport(tw, from_number=None, messaging_service_sid="MG-not-a-sid", status_callback=None)
    with pytest.raises(TwilioDeliveryError) as caught:
        bad_service.send(_row(3), "key-3")
    assert caught.value.status == 400 and caught.value.code == 20001
    assert "MessagingServiceSid" in str(caught.value)
    # a callback URL with an underscore in its host is refused (Twilio's rule)
    with pytest.raises(TwilioDeliveryError) as caught:
        _transport(tw, status_callback="https://bad_host.example.com/cb").send(_row(3), "key-3")
    assert caught.value.code == 21609
    assert tw.messages == []


def test_400_bad_number_is_refused_with_twilios_code_and_not_retried(tw):
    sms = SmsMessage(to="+3361", body="Bonjour", encoding="GSM-7", segments=1)
    with pytest.raises(TwilioDeliveryError) as caught:
        _transport(tw).send(sms, "key-400")
    error = caught.value
    assert (error.status, error.code) == (400, 21211)
    assert "Invalid 'To' Phone Number" in str(error) and error.more_info.endswith("/21211")
    assert error.permanent and not error.retryable and not error.outcome_unknown
    assert tw.messages == []


def test_a_number_that_cannot_take_an_sms_is_refused_before_any_request(tw):
    with pytest.raises(DeliveryError, match="not a mobile") as caught:
        _transport(tw).send(_row(4, recipient="01 99 00 12 34"), "key-landline")
    assert not caught.value.retryable and not caught.value.outcome_unknown
    assert tw.requests == 0


def test_401_bad_token(tw):
    with pytest.raises(TwilioDeliveryError) as caught:
        _transport(tw, auth_token="wrong").send(_row(5), "key-401")
    error = caught.value
    assert (error.status, error.code) == (401, 20003)
    assert not error.retryable and not error.outcome_unknown
    assert error.pause_channel  # the account is refused, not this message
    assert tw.messages == []


def test_413_is_a_refusal_of_this_message(tw):
    tw.fail_next(1, 413)
    with pytest.raises(TwilioDeliveryError) as caught:
        _transport(tw).send(_row(6), "key-413")
    assert caught.value.status == 413 and caught.value.code
    assert caught.value.permanent and not caught.value.retryable and not caught.value.outcome_unknown


def test_429_is_retryable_with_retry_after_then_the_next_try_goes_through(tw):
    tw.retry_after = "2"
    tw.fail_next(1, 429)
    transport = _transport(tw)
    with pytest.raises(TwilioDeliveryError) as caught:
        transport.send(_row(7), "key-429")
    assert caught.value.retryable and not caught.value.outcome_unknown
    assert caught.value.retry_after == 2.0
    assert tw.messages == []
    assert SID.fullmatch(transport.send(_row(7), "key-429").provider_message_id)
    assert len(tw.messages) == 1


def test_500_is_an_unknown_outcome(tw):
    tw.fail_next(1, 500)
    with pytest.raises(TwilioDeliveryError) as caught:
        _transport(tw).send(_row(8), "key-500")
    assert caught.value.status == 500
    assert caught.value.outcome_unknown and not caught.value.retryable


def test_a_timeout_after_the_request_was_sent_is_an_unknown_outcome(tw):
    tw.hang_next(1, seconds=30)
    with pytest.raises(TwilioDeliveryError, match="outcome unknown") as caught:
        _transport(tw, timeout=0.3).send(_row(9), "key-timeout")
    assert caught.value.outcome_unknown and not caught.value.retryable
    assert len(tw.messages) == 1  # Twilio has it: a blind resend would text the customer twice


def test_connection_refused_is_retryable_nothing_went_out():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    transport = TwilioTransport("AC" + "0" * 32, "t", from_number=FROM, host=f"http://127.0.0.1:{port}", timeout=2)
    with pytest.raises(TwilioDeliveryError, match="request not sent") as caught:
        transport.send(_row(10), "key-refused")
    assert caught.value.retryable and not caught.value.outcome_unknown


# --- exactly once through the delivery loop -----------------------------------------------------------------


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


def _plan(*rows: dict) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows))
    assert set(PLAN_COLUMNS) <= set(frame.columns)
    return frame


def _router(tmp_path: Path, tw: TwilioStandIn | None):
    return make_transport_for(
        outbox_dir=tmp_path / "outbox",
        as_of_date=AS_OF,
        sender_name="Service recouvrement",
        twilio_account_sid=tw.account_sid if tw else None,
        twilio_auth_token=tw.auth_token if tw else None,
        twilio_from_number=FROM,
        twilio_host=tw.url if tw else "http://127.0.0.1:9",
        twilio_status_callback=CALLBACK,
    )


def _deliver(con, ledger, planned, transport_for):
    return deliver(
        con,
        planned,
        ledger=ledger,
        transport_for=transport_for,
        lineage={"prefect.flow_run_id": "flow-1"},
        flow_run_id="flow-1",
        sender_email="relances@example.com",
        sender_name="Service recouvrement",
        backoff_seconds=0,
    )


def test_the_sid_is_recorded_in_the_ledger_and_a_rerun_sends_nothing_twice(con, ledger, tmp_path, tw):
    good = [_row(11), _row(12, tone="formal_notice", invoice_count=3)]
    landline = _row(13, recipient="+33199001234")
    planned = _plan(*good, landline)
    transport_for = _router(tmp_path, tw)

    report = _deliver(con, ledger, planned, transport_for)

    assert report.sent == 2 and report.by_channel == {"sms": 2}
    assert report.failed == 1 and report.failed_keys == [landline["reminder_key"]]
    sids = {m.params["StatusCallback"].rsplit("=", 1)[1]: m.sid for m in tw.messages}
    assert set(sids) == {r["reminder_key"] for r in good}
    for row in good:
        record = ledger.get(row["reminder_key"])
        assert record.status == "sent"
        assert record.provider_message_id == sids[row["reminder_key"]]
    assert "not a mobile" in ledger.get(landline["reminder_key"]).last_error
    mirrored = con.sql("SELECT reminder_key, provider_message_id FROM ops.reminder_sends WHERE status = 'sent'").df()
    assert dict(zip(mirrored.reminder_key, mirrored.provider_message_id, strict=True)) == sids

    again = _deliver(con, ledger, planned, _router(tmp_path, tw))
    assert again.sent == 0 and again.skipped_already_sent == 2
    assert len(tw.messages) == 2  # nothing texted twice


def test_429_then_success_is_sent_once_with_its_sid(con, ledger, tmp_path, tw):
    tw.fail_next(1, 429)
    row = _row(14)
    report = _deliver(con, ledger, _plan(row), _router(tmp_path, tw))
    assert report.sent == 1
    (received,) = tw.messages
    record = ledger.get(row["reminder_key"])
    assert record.provider_message_id == received.sid and record.attempts == 2
    assert tw.requests == 2


def test_a_timeout_is_left_sending_and_never_resent(con, ledger, tmp_path, tw):
    tw.hang_next(1, seconds=30)
    row = _row(15)
    transport_for = make_transport_for(
        outbox_dir=tmp_path / "outbox", as_of_date=AS_OF, sender_name="Service recouvrement"
    )
    twilio = _transport(tw, timeout=0.3)

    def router(channel: str):
        return twilio if channel == "sms" else transport_for(channel)

    report = _deliver(con, ledger, _plan(row), router)
    assert report.sent == 0 and report.in_doubt == 1
    assert ledger.get(row["reminder_key"]).status == "sending"
    assert len(tw.messages) == 1  # Twilio queued it

    rerun = _deliver(con, ledger, _plan(row), router)
    assert rerun.sent == 0 and rerun.stuck_sending == 1
    assert len(tw.messages) == 1 and tw.requests == 1


def test_without_credentials_the_sms_lands_in_the_outbox_once(con, ledger, tmp_path):
    row = _row(16, language="en")
    report = _deliver(con, ledger, _plan(row), _router(tmp_path, None))
    assert report.sent == 1
    path = tmp_path / "outbox" / "sms" / f"{row['reminder_key']}.json"
    written = json.loads(path.read_text(encoding="utf-8"))
    assert written["to"] == "+33639980016"
    assert written["body"].startswith("Service recouvrement: Hello Client 16")
    assert (written["encoding"], written["segments"]) == segments(written["body"])
    assert ledger.get(row["reminder_key"]).outbox_path == str(path)

    path.unlink()
    again = _deliver(con, ledger, _plan(row), _router(tmp_path, None))
    assert again.skipped_already_sent == 1 and not path.exists()


def test_the_stand_in_signs_status_callbacks_like_twilio(tw):
    """For webhook tests: the callback carries the reminder key in its URL and a valid X-Twilio-Signature."""
    import threading
    import urllib.parse
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from twilio.request_validator import RequestValidator

    received: dict = {}

    class Receiver(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            return

        def do_POST(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            received.update(path=self.path, params=dict(urllib.parse.parse_qsl(raw.decode())), headers=self.headers)
            self.send_response(204)
            self.end_headers()

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        callback = f"http://127.0.0.1:{server.server_address[1]}{TWILIO_STATUS_PATH}"
        sid = _transport(tw, status_callback=callback).send(_row(17), "key-17").provider_message_id
        assert tw.send_status_callback(sid, "delivered") == 204
        thread.join(timeout=5)
    finally:
        server.server_close()
    url = callback + "?reminder_key=key-17"
    assert received["path"] == TWILIO_STATUS_PATH + "?reminder_key=key-17"
    assert received["params"]["MessageSid"] == sid and received["params"]["MessageStatus"] == "delivered"
    signature = received["headers"]["X-Twilio-Signature"]
    assert RequestValidator(tw.auth_token).validate(url, received["params"], signature)
    assert not RequestValidator("another-token").validate(url, received["params"], signature)
