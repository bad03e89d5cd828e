"""Twilio's callbacks: verify ``X-Twilio-Signature``, map status callbacks and inbound opt-outs to message events.

Twilio signs each callback with HMAC-SHA1 (key: the account's auth token) over the full URL it requested followed
by the sorted POST parameters; :func:`verify` checks it with the official
``twilio.request_validator.RequestValidator`` against the *public* URL (``Settings.webhook_public_url``, or
``http://<webhook_host>:<webhook_port>``) plus the path and query string actually requested, since behind a proxy
the service never sees the URL Twilio used.

**The StatusCallback URL** the SMS transport gives Twilio names the reminder in a query parameter, which Twilio
signs with the rest: ``<public base>/webhooks/twilio/status?reminder_key=<key, URL-encoded>``
(:func:`status_callback_url` builds it). A status callback becomes event ``<MessageStatus>`` with id
``<MessageSid>:<status>`` (a status reported twice is one row), ``reason`` the ``ErrorCode``. A permanent error
(:data:`PERMANENT_SMS_ERRORS`: the number opted out, does not exist, is a landline) suppresses SMS for the customer.

**Inbound messages** (``/webhooks/twilio/inbound``): an opt-out, by Twilio's ``OptOutType=STOP`` (Advanced
Opt-Out) or a body that is exactly one of :data:`STOP_WORDS` (any case, accents and surrounding punctuation
ignored), becomes event ``stop`` with id ``<MessageSid>:stop`` for the customer whose phone is the sender's
number. Other inbound messages are not recorded (``raw.message_events`` holds no message text); Twilio keeps them.
An opt-in (``START``) lifts nothing by itself: a person lifts the suppression (``relance contacts``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import datetime
from urllib.parse import parse_qsl, urlencode

import phonenumbers
from twilio.request_validator import SIGNATURE_HEADER, RequestValidator, get_signature_algorithm

from relance.webhooks.load import MessageEvent, Refused

__all__ = [
    "SIGNATURE_HEADER",
    "STATUS_PATH",
    "FormParams",
    "e164",
    "inbound_events",
    "parse_form",
    "public_base_url",
    "status_callback_url",
    "status_event",
    "verify",
]

PROVIDER = "twilio"
CHANNEL = "sms"
STATUS_PATH = "/webhooks/twilio/status"
INBOUND_PATH = "/webhooks/twilio/inbound"
#: The query parameter of the StatusCallback URL that names the reminder.
REMINDER_KEY_PARAM = "reminder_key"
SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
#: Twilio's default opt-out keywords, and the French ones a French debtor writes.
STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "ARRET", "ARRETER", "DESABONNER", "DESINSCRIRE"}
)
#: Twilio error codes that mean the number will never take our SMS: the SMS channel is suppressed.
PERMANENT_SMS_ERRORS: dict[str, str] = {
    "21610": "the recipient opted out (replied STOP)",
    "21614": "not a mobile number",
    "30005": "unknown destination handset",
    "30006": "landline or unreachable carrier",
}


def public_base_url(public_url: str | None, host: str, port: int) -> str:
    """The base URL providers call: ``Settings.webhook_public_url`` without its trailing slash, or
    ``http://<host>:<port>``."""
    if public_url and public_url.strip():
        return public_url.strip().rstrip("/")
    return f"http://{host}:{port}"


def status_callback_url(base_url: str, reminder_key: str) -> str:
    """The ``StatusCallback`` of one SMS: ``<base>/webhooks/twilio/status?reminder_key=<key>``."""
    return f"{base_url.rstrip('/')}{STATUS_PATH}?{urlencode({REMINDER_KEY_PARAM: reminder_key})}"


class FormParams(dict[str, str]):
    """POST parameters: the last value of each name, with every value kept for the signature."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._lists: dict[str, list[str]] = {}
        for name, value in pairs:
            self._lists.setdefault(name, []).append(value)
        super().__init__({name: values[-1] for name, values in self._lists.items()})

    def getlist(self, name: str) -> list[str]:  # what RequestValidator reads, like Django's QueryDict
        return list(self._lists.get(name, []))


def parse_form(body: bytes) -> FormParams:
    """An ``application/x-www-form-urlencoded`` body. ``Refused(400)`` when it is not UTF-8."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "the form body is not UTF-8") from None
    return FormParams(parse_qsl(text, keep_blank_values=True))


def verify(
    auth_token: str | None, url: str, params: FormParams, signature: str | None, settings_header: str | None
) -> None:
    """Raise :class:`Refused` (403) unless ``signature`` is Twilio's signature of ``url`` and ``params``."""
    if not auth_token:
        raise Refused(403, "no Twilio auth token is configured (RELANCE_TWILIO_AUTH_TOKEN)")
    if not signature:
        raise Refused(403, f"unsigned request: {SIGNATURE_HEADER} is required")
    validator = RequestValidator(auth_token)
    if not validator.validate(url, params, signature, get_signature_algorithm(settings_header)):
        raise Refused(403, f"invalid signature for {url}: the URL, the parameters or the token do not match")


def _param(params: FormParams, name: str) -> str | None:
    value = params.get(name)
    return value.strip() if value and value.strip() else None


def status_event(params: FormParams, reminder_key: str | None, received_at: datetime) -> MessageEvent:
    """A status callback as an event (Twilio gives no time: ``occurred_at`` is when it arrived, naive UTC).
    ``Refused(400)`` without ``MessageSid`` or ``MessageStatus``."""
    sid = _param(params, "MessageSid") or _param(params, "SmsSid")
    status = _param(params, "MessageStatus") or _param(params, "SmsStatus")
    if not sid or not status:
        raise Refused(400, "a status callback needs MessageSid and MessageStatus")
    status = status.lower()
    code = _param(params, "ErrorCode")
    reason = None
    if code:
        reason = f"{code} {PERMANENT_SMS_ERRORS[code]}" if code in PERMANENT_SMS_ERRORS else code
    return MessageEvent(
        event_id=f"{sid}:{status}",
        provider=PROVIDER,
        channel=CHANNEL,
        event=status,
        occurred_at=received_at,
        reminder_key=reminder_key.strip() if reminder_key and reminder_key.strip() else None,
        reason=reason,
        suppresses=status in ("failed", "undelivered") and code in PERMANENT_SMS_ERRORS,
        provider_message_id=sid,
    )


def is_opt_out(params: FormParams) -> bool:
    """Twilio flagged an opt-out, or the body is exactly a stop word."""
    if (_param(params, "OptOutType") or "").upper() == "STOP":
        return True
    body = unicodedata.normalize("NFKD", params.get("Body") or "")
    word = "".join(c for c in body if not unicodedata.combining(c)).strip().strip(".!;,").strip().upper()
    return word in STOP_WORDS


def inbound_events(params: FormParams, received_at: datetime, region: str) -> list[MessageEvent]:
    """The events of an inbound message: one ``stop`` for an opt-out, none otherwise. ``Refused(400)`` for an
    opt-out without ``MessageSid`` or a sender number."""
    if not is_opt_out(params):
        return []
    sid = _param(params, "MessageSid") or _param(params, "SmsSid")
    sender = e164(_param(params, "From") or "", region)
    if not sid or not sender:
        raise Refused(400, "an inbound message needs MessageSid and a From number")
    keyword = _param(params, "OptOutType") or (params.get("Body") or "").strip()[:20]
    return [
        MessageEvent(
            event_id=f"{sid}:stop",
            provider=PROVIDER,
            channel=CHANNEL,
            event="stop",
            occurred_at=received_at,
            reason=f"the recipient replied {keyword}",
            suppresses=True,
            phone=sender,
        )
    ]


def e164(number: str, region: str) -> str | None:
    """``number`` in E.164 (``+33612345678``), read in ``region`` when it has no country code; None when it is not
    a possible phone number."""
    text = number.strip()
    if not text:
        return None
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
