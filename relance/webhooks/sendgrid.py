"""SendGrid's signed Event Webhook: verify a batch, map its events to ``raw.message_events`` rows.

SendGrid POSTs a JSON array of events. With signing on, it signs ``timestamp + raw body`` with ECDSA P-256 /
SHA-256 and sends the base64 DER signature in ``X-Twilio-Email-Event-Webhook-Signature`` and the Unix timestamp
in ``X-Twilio-Email-Event-Webhook-Timestamp``; the verification key is shown in the console as base64 DER
SubjectPublicKeyInfo (``Settings.sendgrid_webhook_public_key``). :class:`SendGridVerifier` checks the signature
over the **raw** bytes with the official helper (``sendgrid.helpers.eventwebhook.EventWebhook``), then refuses a
timestamp further than ``Settings.webhook_max_age_seconds`` from now, in the past (a replayed capture) or the
future. SendGrid documents no tolerance; a replay inside the window changes nothing anyway (``sg_event_id`` is the
natural key).

Mapping (:func:`message_events`): ``event_id`` = ``sg_event_id`` (a sha256 of the event when it has none, so a
replay still deduplicates); ``reminder_key`` = the custom arg relance sets on every message; the event name as
SendGrid gives it (an unknown one is quarantined by the data contract, never dropped); ``occurred_at`` from
``timestamp``; ``reason`` from the bounce type, status and reason, the drop reason, the deferral response, the
unsubscribe group. What suppresses the address (:func:`suppresses`): a hard bounce (not ``type: blocked``, which
is the receiving server refusing for now), a drop for the address's sake (not for the content or a quota), a spam
report, an unsubscribe (global or group).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from sendgrid.helpers.eventwebhook import EventWebhook

from relance.webhooks.load import MessageEvent, Refused

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
PROVIDER = "sendgrid"
CHANNEL = "email"
#: The custom arg (``personalizations[].custom_args``) that names the reminder (``relance.channels.email``).
REMINDER_KEY_ARG = "reminder_key"
#: Events that opt the address out, whatever their detail.
OPT_OUT_EVENTS = frozenset({"spamreport", "unsubscribe", "group_unsubscribe"})
#: SendGrid drop reasons that say nothing about the address (the content, the account): no suppression.
NON_ADDRESS_DROP_REASONS = ("spam content", "invalid smtpapi header", "recipient list over package quota")


class SendGridVerifier:
    """Checks SendGrid's signature and timestamp. ``public_key``: base64 DER (no PEM armour), as the console
    shows it; ``None`` refuses every request (no key, no trust)."""

    def __init__(self, public_key: str | None, *, max_age_seconds: int) -> None:
        self.max_age_seconds = max_age_seconds
        self._helper: EventWebhook | None = None
        if public_key and public_key.strip():
            self._helper = _helper(public_key.strip())

    @property
    def configured(self) -> bool:
        return self._helper is not None

    def verify(self, body: bytes, signature: str | None, timestamp: str | None, *, now: float) -> None:
        """Raise :class:`Refused` (403) unless ``body`` carries a valid, fresh signature."""
        if self._helper is None:
            raise Refused(403, "no SendGrid verification key is configured (RELANCE_SENDGRID_WEBHOOK_PUBLIC_KEY)")
        if not signature or not timestamp:
            raise Refused(403, f"unsigned request: {SIGNATURE_HEADER} and {TIMESTAMP_HEADER} are required")
        try:
            payload = body.decode("utf-8")
            valid = self._helper.verify_signature(payload, signature.strip(), timestamp.strip())
        except (UnicodeDecodeError, binascii.Error, ValueError, InvalidSignature):
            valid = False
        if not valid:
            raise Refused(403, "invalid signature: the body or the timestamp is not what SendGrid signed")
        try:
            sent_at = float(timestamp.strip())
        except ValueError:
            raise Refused(403, f"{TIMESTAMP_HEADER} is not a Unix timestamp") from None
        if not math.isfinite(sent_at):
            raise Refused(403, f"{TIMESTAMP_HEADER} is not a Unix timestamp")
        age = now - sent_at
        if age > self.max_age_seconds:
            raise Refused(
                403, f"stale request: signed {age:.0f} s ago, more than the {self.max_age_seconds} s accepted"
            )
        if -age > self.max_age_seconds:
            raise Refused(
                403,
                f"timestamp {-age:.0f} s in the future, more than the {self.max_age_seconds} s accepted "
                "(is a clock wrong?)",
            )


def _helper(public_key: str) -> EventWebhook:
    """The official helper with the key loaded; ``ValueError`` (at start-up) when it is not a P-256 key."""
    try:
        helper = EventWebhook(public_key)
    except (ValueError, UnsupportedAlgorithm, binascii.Error) as exc:
        raise ValueError(
            "sendgrid_webhook_public_key is not a base64 DER public key (copy the Event Webhook's verification "
            f"key from the SendGrid console): {exc}"
        ) from exc
    key = helper.public_key
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("sendgrid_webhook_public_key is not an ECDSA P-256 key: SendGrid signs with P-256")
    return helper


def sign(private_key: ec.EllipticCurvePrivateKey, body: bytes, timestamp: str) -> str:
    """SendGrid's signature of ``body`` at ``timestamp`` (base64 DER): what a stand-in or a test sends."""
    from cryptography.hazmat.primitives import hashes

    return base64.b64encode(private_key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()


# --- the batch -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """A parsed request: its events and the sha256 of its raw body."""

    events: list[MessageEvent]
    digest: str


def parse_batch(body: bytes) -> Batch:
    """The events of a verified body. ``Refused(400)`` when it is not a JSON array of objects."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Refused(400, f"the body is not JSON: {exc}") from None
    if not isinstance(data, list):
        raise Refused(400, f"expected a JSON array of events, got a JSON {type(data).__name__}")
    bad = next((i for i, item in enumerate(data) if not isinstance(item, dict)), None)
    if bad is not None:
        raise Refused(400, f"event {bad} is not a JSON object")
    return Batch(message_events(data), hashlib.sha256(body).hexdigest())


def message_events(events: list[dict[str, Any]]) -> list[MessageEvent]:
    """SendGrid events as ``raw.message_events`` rows, in order (see the module docstring)."""
    return [message_event(e) for e in events]


def message_event(e: Mapping[str, Any]) -> MessageEvent:
    name = _text(e.get("event"))
    name = name.lower() if name else None
    return MessageEvent(
        event_id=_text(e.get("sg_event_id")) or "sendgrid:" + _event_digest(e),
        provider=PROVIDER,
        channel=CHANNEL,
        event=name,
        occurred_at=_occurred_at(e.get("timestamp")),
        reminder_key=_text(e.get(REMINDER_KEY_ARG)),
        reason=_reason(name, e),
        suppresses=suppresses(name, e),
        provider_message_id=_message_id(e.get("sg_message_id")),
    )


def suppresses(name: str | None, e: Mapping[str, Any]) -> bool:
    """Does this event mean the address must not be written to again (see the module docstring)?"""
    if name in OPT_OUT_EVENTS:
        return True
    if name == "bounce":
        return (_text(e.get("type")) or "bounce").lower() != "blocked"
    if name == "dropped":
        reason = (_text(e.get("reason")) or "").lower()
        return not reason.startswith(NON_ADDRESS_DROP_REASONS)
    return False


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


def _event_digest(e: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(e, sort_keys=True, default=str).encode()).hexdigest()


def _occurred_at(value: Any) -> datetime | None:
    """SendGrid's ``timestamp`` (Unix seconds) as naive UTC; None when missing or not a number (the data contract
    quarantines the row)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        seconds = float(value)
        return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _message_id(value: Any) -> str | None:
    """The X-Message-ID part of ``sg_message_id`` (``<X-Message-ID>.filter...``)."""
    text = _text(value)
    return text.split(".", 1)[0] if text else None


def _reason(name: str | None, e: Mapping[str, Any]) -> str | None:
    if name == "bounce":
        head = " ".join(p for p in (_text(e.get("type")) or "bounce", _text(e.get("status"))) if p)
        text = _text(e.get("reason"))
        return f"{head}: {text}" if text else head
    if name == "dropped":
        return _text(e.get("reason"))
    if name == "deferred":
        attempt = _text(e.get("attempt"))
        text = _text(e.get("response")) or _text(e.get("reason"))
        return " ".join(p for p in (f"attempt {attempt}:" if attempt else None, text) if p) or None
    if name in ("group_unsubscribe", "group_resubscribe"):
        group = _text(e.get("asm_group_id"))
        return f"unsubscribe group {group}" if group else None
    return None
