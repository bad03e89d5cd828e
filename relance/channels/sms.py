"""Reminder SMS: the text (by tone, French or English), the number in E.164, the segment count, two transports.

The text (:func:`render_sms`) says who writes, to whom, what is owed (the row's ``open_amount``: the customer's
total due, with its currency), how many invoices, the payment link when the row carries ``payment_link``, and how
to opt out ("STOP au ..." / "Reply STOP to opt out"). It is kept within :data:`MAX_SEGMENTS` GSM-7 segments: the
fixed wording uses only GSM-7 characters (French ``é è à ù`` are in the GSM alphabet, ``ç ê ô œ`` and the
no-break spaces of amounts are not), names are transliterated to GSM-7 where a close letter exists, and a long
customer name is shortened -- never the amount, the invoice count, the link or the opt-out.

Why this matters: one character outside GSM-7 (an emoji, ``œ``, a typographic apostrophe) switches the whole
message to UCS-2, 70 characters per segment instead of 160, and each segment is billed (:func:`segments`).

Numbers (:func:`normalize_phone`): ``phonenumbers`` parses them with a default region (``Settings.
sms_default_region``, ``FR``: ``06 12 34 56 78`` -> ``+33612345678``); an invalid number or one that is not a
mobile raises :class:`InvalidPhoneNumber` -- the transport turns it into a non-retryable
:class:`~relance.channels.email.DeliveryError` before any request, so the ledger records a failure and nothing
was sent. The mobile blocks regulators keep for fiction (ARCEP ``06 39 98``, Ofcom ``07700 900``, used by the demo)
are accepted although libphonenumber does not list them.

Transports: :class:`TwilioTransport` (the official ``twilio`` client, ``messages.create``; the message SID is
the provider id the send ledger records) and :class:`SmsOutbox` (``<outbox>/sms/<reminder_key>.json``), the
default without Twilio credentials: a demo or a test never texts anyone.
"""

from __future__ import annotations

import json
import logging
import string
import unicodedata
import urllib.parse
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import phonenumbers
import requests
from pydantic import SecretStr
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from relance.channels.email import (
    TONES,
    DeliveryError,
    SendResult,
    _field,
    format_amount,
    message_language,
    parse_retry_after,
    parse_statement,
    payment_link,
)
from relance.files import write_text_atomic
from relance.redaction import install_log_redaction

log = logging.getLogger(__name__)

# --- segments -----------------------------------------------------------------------------------------------

#: The GSM 03.38 default alphabet (one septet each), ESC left out.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: The extension table: each character is sent as ESC + character, two septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
GSM7 = "GSM-7"
UCS2 = "UCS-2"
#: (single-segment, per-segment when concatenated) capacity: septets for GSM-7, UTF-16 code units for UCS-2
#: (the concatenation header takes 7 septets / 3 code units of each segment).
SEGMENT_CAPACITY: dict[str, tuple[int, int]] = {GSM7: (160, 153), UCS2: (70, 67)}
#: The default texts stay within this many segments (a long customer name is shortened to fit).
MAX_SEGMENTS = 2


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` is in the GSM-7 alphabet or its extension table."""
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def segments(text: str) -> tuple[str, int]:
    """``(encoding, count)`` of the SMS ``text`` as a network sends it.

    GSM-7 when every character is in the GSM alphabet (an extension-table character such as ``€``, ``[`` or
    ``{`` takes two septets): one segment up to 160 septets, otherwise segments of 153. UCS-2 as soon as one
    character is not (an emoji takes two code units): 70, otherwise 67 per segment. An escape pair or a surrogate
    pair is never split across two segments, so the count is the one the carrier bills. ``""`` -> 0 segments.
    """
    if not text:
        return GSM7, 0
    if is_gsm7(text):
        encoding, costs = GSM7, [2 if c in GSM7_EXTENSION else 1 for c in text]
    else:
        encoding, costs = UCS2, [2 if ord(c) > 0xFFFF else 1 for c in text]
    single, per_segment = SEGMENT_CAPACITY[encoding]
    if sum(costs) <= single:
        return encoding, 1
    count, used = 1, 0
    for cost in costs:
        if used + cost > per_segment:
            count, used = count + 1, 0
        used += cost
    return encoding, count


#: Characters outside GSM-7 with a close GSM-7 spelling (typography of names and amounts).
_GSM_SUBSTITUTES: dict[str, str] = {
    "\u00a0": " ",  # no-break space
    "\u202f": " ",  # narrow no-break space (French thousands separator)
    "\u2009": " ",
    "\u2007": " ",
    "\u2018": "'",
    "\u2019": "'",
    "\u02bc": "'",
    "\u201c": '"',
    "\u201d": '"',
    "«": '"',
    "»": '"',
    "\u2013": "-",
    "\u2014": "-",
    "\u2026": "...",
    "œ": "oe",
    "Œ": "OE",
    "ç": "c",
}


def to_gsm7(text: str) -> str:
    """``text`` with every character GSM-7 lacks replaced by its closest GSM-7 spelling when there is one
    (``ç`` -> ``c``, ``ê`` -> ``e``, ``œ`` -> ``oe``, no-break spaces -> spaces, curly quotes -> straight); a
    character with no such spelling (a CJK name, an emoji) is kept, and the message is then UCS-2."""
    out = []
    for char in text:
        if char in GSM7_BASIC or char in GSM7_EXTENSION:
            out.append(char)
        elif char in _GSM_SUBSTITUTES:
            out.append(_GSM_SUBSTITUTES[char])
        else:
            base = "".join(c for c in unicodedata.normalize("NFD", char) if not unicodedata.combining(c))
            out.append(base if base and is_gsm7(base) else char)
    return "".join(out)


# --- numbers ------------------------------------------------------------------------------------------------


class InvalidPhoneNumber(ValueError):
    """A number that cannot receive an SMS: unparsable, invalid for its region, or not a mobile."""


_MOBILE_TYPES = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
#: Mobile ranges regulators keep for fiction, with the digits after the prefix (the same blocks as
#: ``relance.demo.safety``: ARCEP 06 39 98 xx xx, Ofcom 07700 900xxx): valid for us, unknown to libphonenumber.
FICTION_MOBILE_BLOCKS: tuple[tuple[str, int], ...] = (("+3363998", 4), ("+447700900", 3))


def _is_fiction_mobile(e164: str) -> bool:
    return any(
        e164.startswith(prefix) and len(e164) == len(prefix) + digits and e164[len(prefix) :].isdigit()
        for prefix, digits in FICTION_MOBILE_BLOCKS
    )


def normalize_phone(raw: Any, region: str = "FR") -> str:
    """The mobile number ``raw`` in E.164 (``+33612345678``).

    Accepts what people type: spaces, dots, dashes, brackets, a national ``0`` prefix (read in ``region``), an
    international ``00`` or ``+`` prefix. Raises :class:`InvalidPhoneNumber` when the number is missing,
    unparsable, invalid, or valid but not a mobile (a landline cannot receive an SMS).
    """
    text = "" if raw is None else str(raw).strip()
    if not text:
        raise InvalidPhoneNumber("no phone number")
    try:
        number = phonenumbers.parse(text, (region or "FR").upper())
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(f"{text!r} is not a phone number ({exc})") from None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if _is_fiction_mobile(e164):
        return e164
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber(f"{text!r} is not a valid phone number (read as {e164}, region {region})")
    if phonenumbers.number_type(number) not in _MOBILE_TYPES:
        raise InvalidPhoneNumber(f"{text!r} ({e164}) is not a mobile number: it cannot receive an SMS")
    return e164


def is_mobile(raw: Any, region: str = "FR") -> bool:
    """True when ``raw`` normalises to a mobile number (what a planner checks before choosing SMS)."""
    try:
        normalize_phone(raw, region)
    except InvalidPhoneNumber:
        return False
    return True


# --- text ---------------------------------------------------------------------------------------------------

#: Default opt-out wording when no number to text STOP to is configured.
OPT_OUT_FR = "Répondez STOP pour vous désinscrire"
OPT_OUT_EN = "Reply STOP to opt out"


def sms_amount(amount: Any, currency: str, language: str) -> str:
    """The amount as :func:`~relance.channels.email.format_amount` writes it, with plain spaces (the no-break
    spaces of the French format are not GSM-7 and would make the message UCS-2)."""
    return to_gsm7(format_amount(amount, currency, language))


def _invoice_count(row: Mapping[str, Any]) -> int:
    count = _field(row, "invoice_count")
    if count is not None:
        try:
            return max(int(count), 1)
        except (TypeError, ValueError):
            pass
    lines = parse_statement(_field(row, "statement"))
    return max(len(lines), 1)


def sms_payment_link(row: Mapping[str, Any], template: str | None = None) -> str | None:
    """The one payment link an SMS carries: the row's ``payment_link`` when it has one, else ``template``
    (``Settings.payment_link_template``, filled by :func:`~relance.channels.email.payment_link`) for a single
    invoice, or for several invoices when the template names no ``{invoice_id}`` (a customer-level page, with the
    total due as ``{amount}``). Several invoices with a per-invoice template: no link (one link per invoice does
    not fit in an SMS; the email and the letter carry them)."""
    link = str(_field(row, "payment_link") or "").strip()
    if link:
        return link
    if not template:
        return None
    names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    if _invoice_count(row) > 1 and "invoice_id" in names:
        return None
    return payment_link(
        template,
        invoice_id=_field(row, "invoice_id"),
        amount=_field(row, "open_amount"),
        currency=_field(row, "currency"),
        customer_id=_field(row, "customer_id"),
    )


def _body_fr(tone: str, *, name: str, what_single: bool, invoice: str, n: int, amount: str) -> str:
    hello = f"Bonjour {name}, " if name else "Bonjour, "
    if what_single:
        subject, plural = f"la facture {invoice} de {amount}", False
    else:
        subject, plural = f"vos {n} factures, soit {amount} au total,", True
    if tone == "preventive":
        verb = "arrivent" if plural else "arrive"
        return f"{hello}{subject} {verb} à échéance. Si le paiement est déjà prévu, ignorez ce message."
    if tone == "cordial":
        verb, pronoun = ("restent impayées", "les") if plural else ("reste impayée", "la")
        return f"{hello}sauf erreur, {subject} {verb}. Merci de {pronoun} régler dès que possible."
    if tone == "firm":
        lead = f"{name}, malgré" if name else "Malgré"
        verb, pronoun = ("restent impayées", "les") if plural else ("reste impayée", "la")
        return f"{lead} nos relances, {subject} {verb}. Merci de {pronoun} régler sous 8 jours ou de nous contacter."
    # formal_notice: the wording of a demand; the letter, not the SMS, carries the legal statements
    owed = f"la facture {invoice}, soit {amount}" if what_single else f"vos {n} factures, soit {amount} au total"
    lead = f"{name} : " if name else ""
    return (
        f"{lead}MISE EN DEMEURE de régler sous 8 jours {owed}. "
        "Sans paiement, une procédure de recouvrement sera engagée."
    )


def _body_en(tone: str, *, name: str, what_single: bool, invoice: str, n: int, amount: str) -> str:
    hello = f"Hello {name}, " if name else "Hello, "
    if what_single:
        subject, plural = f"invoice {invoice} for {amount}", False
    else:
        subject, plural = f"your {n} invoices totalling {amount}", True
    if tone == "preventive":
        verb = "fall" if plural else "falls"
        return f"{hello}a reminder that {subject} {verb} due. If payment is already scheduled, please ignore this."
    if tone == "cordial":
        verb, pronoun = ("are", "them") if plural else ("is", "it")
        return f"{hello}our records show {subject} {verb} unpaid. Please pay {pronoun} as soon as possible."
    if tone == "firm":
        lead = f"{name}, despite" if name else "Despite"
        verb, pronoun = ("remain", "them") if plural else ("remains", "it")
        return f"{lead} our reminders, {subject} {verb} unpaid. Please pay {pronoun} within 8 days or contact us."
    lead = f"{name}: " if name else ""
    return (
        f"{lead}FORMAL NOTICE to pay {subject} within 8 days. Failing payment, we will start debt recovery proceedings."
    )


def render_sms(
    row: Mapping[str, Any],
    *,
    sender_name: str,
    opt_out_number: str | None = None,
    payment_link_template: str | None = None,
    max_segments: int = MAX_SEGMENTS,
) -> str:
    """The SMS text of one planned reminder.

    Reads ``tone``, ``open_amount`` (the total due), ``currency``, ``invoice_id`` and, when present,
    ``customer_name``, ``language`` (``en`` for English, French otherwise), ``invoice_count`` (else the lines of
    ``statement``, else 1) and ``payment_link`` (else ``payment_link_template``, see :func:`sms_payment_link`).
    ``sender_name`` opens the message (who writes);
    ``opt_out_number`` (where STOP is texted) gives ``STOP au <number>``, otherwise the "reply STOP" wording.
    The customer's name is shortened until the text fits in ``max_segments`` segments.
    """
    tone = str(row["tone"])
    if tone not in TONES:
        raise ValueError(f"unknown tone {tone!r}; expected one of {', '.join(TONES)}")
    language = message_language(row)
    en = language == "en"
    n = _invoice_count(row)
    amount = sms_amount(row["open_amount"], str(row["currency"]), language)
    invoice = str(_field(row, "invoice_id") or "")
    sender = to_gsm7(" ".join(str(sender_name or "").split()))
    name = to_gsm7(" ".join(str(_field(row, "customer_name") or "").split()))
    link = sms_payment_link(row, payment_link_template)
    if opt_out_number:
        opt_out = f"STOP to {opt_out_number}" if en else f"STOP au {opt_out_number}"
    else:
        opt_out = OPT_OUT_EN if en else OPT_OUT_FR
    body_for = _body_en if en else _body_fr

    def compose(customer: str) -> str:
        body = body_for(tone, name=customer, what_single=n == 1, invoice=invoice, n=n, amount=amount)
        parts = [f"{sender}: {body}" if en else f"{sender} : {body}" if sender else body]
        if link:
            parts.append(f"Pay: {link}" if en else f"Payer : {link}")
        parts.append(opt_out)
        return "\n".join(parts)

    text = compose(name)
    while name and segments(text)[1] > max_segments:
        encoding, _ = segments(text)
        per_segment = SEGMENT_CAPACITY[encoding][1]
        # Cut what is over the budget (at least one character), then drop a dangling separator.
        excess = max(1, sum(2 if c in GSM7_EXTENSION else 1 for c in text) - per_segment * max_segments)
        cut = name[: max(len(name) - excess, 0)]
        if " " in cut.strip() and name[len(cut)] != " ":  # never leave half a word when a whole one fits
            cut = cut.rstrip().rsplit(" ", 1)[0]
        name = cut.rstrip(" ,.-'&")
        text = compose(name)
    if segments(text)[1] > max_segments:
        log.warning(
            "reminder %s: SMS is %d segments (%s) even without the customer's name (long sender name or link)",
            row.get("reminder_key"),
            segments(text)[1],
            segments(text)[0],
        )
    return text


@dataclass(frozen=True)
class SmsMessage:
    """One SMS ready to go: the E.164 number, the text and what the carrier will bill for it."""

    to: str
    body: str
    encoding: str
    segments: int

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def build_sms(
    row: Mapping[str, Any],
    *,
    sender_name: str,
    region: str = "FR",
    opt_out_number: str | None = None,
    payment_link_template: str | None = None,
) -> SmsMessage:
    """The SMS of one planned reminder: the recipient (``recipient``, else ``phone``) normalised to E.164 and
    the text of :func:`render_sms`. Raises :class:`InvalidPhoneNumber` (a ``ValueError``) for a number that
    cannot receive an SMS, ``ValueError`` for an unknown tone."""
    to = normalize_phone(_field(row, "recipient") or _field(row, "phone"), region)
    body = render_sms(
        row, sender_name=sender_name, opt_out_number=opt_out_number, payment_link_template=payment_link_template
    )
    encoding, count = segments(body)
    return SmsMessage(to=to, body=body, encoding=encoding, segments=count)


def _prepare(
    message: SmsMessage | Mapping[str, Any],
    reminder_key: str,
    *,
    sender_name: str,
    region: str,
    opt_out_number: str | None,
    payment_link_template: str | None,
) -> SmsMessage:
    """``message`` as an :class:`SmsMessage` (the delivery loop passes the plan row); a row that cannot become
    an SMS raises a non-retryable :class:`DeliveryError` before any request: nothing went out."""
    if isinstance(message, SmsMessage):
        return message
    try:
        return build_sms(
            message,
            sender_name=sender_name,
            region=region,
            opt_out_number=opt_out_number,
            payment_link_template=payment_link_template,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise DeliveryError(f"reminder {reminder_key}: no SMS sent: {exc}", permanent=True) from None


# --- transports ---------------------------------------------------------------------------------------------


class SmsOutbox:
    """The embedded default: ``<outbox_dir>/sms/<reminder_key>.json`` with ``to``, ``body``, ``encoding``,
    ``segments`` (and the ``reminder_key``); nothing is texted."""

    channel = "sms"

    def __init__(
        self,
        outbox_dir: Path,
        *,
        sender_name: str = "Service recouvrement",
        default_region: str = "FR",
        opt_out_number: str | None = None,
        payment_link_template: str | None = None,
    ):
        self.directory = Path(outbox_dir) / "sms"
        self.sender_name = sender_name
        self.default_region = default_region
        self.opt_out_number = opt_out_number
        self.payment_link_template = payment_link_template

    def send(self, message: SmsMessage | Mapping[str, Any], reminder_key: str) -> SendResult:
        sms = _prepare(
            message,
            reminder_key,
            sender_name=self.sender_name,
            region=self.default_region,
            opt_out_number=self.opt_out_number,
            payment_link_template=self.payment_link_template,
        )
        path = self.directory / f"{reminder_key}.json"
        payload = {"reminder_key": reminder_key, **sms.as_json()}
        write_text_atomic(path, json.dumps(payload, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
        return SendResult(provider_message_id=None, outbox_path=path)


class TwilioDeliveryError(DeliveryError):
    """A :class:`DeliveryError` with what Twilio said: its error ``code`` (``21211`` invalid 'To', ``21610``
    the recipient replied STOP, ...) and the ``more_info`` page. Classified like every provider's answer
    (:meth:`DeliveryError.for_status`): 429 ``retryable`` with its ``Retry-After``, 401/403/404 ``pause_channel``,
    another 4xx ``permanent``, a 5xx ``outcome_unknown``."""

    code: int | None = None
    more_info: str | None = None

    @classmethod
    def from_answer(
        cls, status: int, code: int | None, message: str, *, body: str = "", retry_after: float | None = None
    ) -> TwilioDeliveryError:
        error = cls.for_status(status, message, body=body, retry_after=retry_after)
        error.code = code
        error.more_info = f"https://www.twilio.com/docs/errors/{code}" if code else None
        return error


class _RecordingHttpClient(TwilioHttpClient):
    """Twilio's HTTP client, keeping the last response: its exceptions carry no headers (``Retry-After``)."""

    last_response: Any = None

    def request(self, *args: Any, **kwargs: Any) -> Any:
        self.last_response = None
        self.last_response = super().request(*args, **kwargs)
        return self.last_response


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the connection failed before a byte of the request could reach the provider."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    from urllib3.exceptions import NewConnectionError  # NameResolutionError is a NewConnectionError

    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, NewConnectionError):
            return True
        if isinstance(item, BaseException):
            stack += [item.__cause__, item.__context__, getattr(item, "reason", None), *item.args]
    return False


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` added to its query string (existing parameters kept)."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


class TwilioTransport:
    """Sends through the official ``twilio`` client (``messages.create``); ``host`` points it at a stand-in.

    ``from_number`` (an E.164 Twilio number) or ``messaging_service_sid`` (``MG...``) is required.
    ``status_callback``: the URL Twilio posts delivery statuses to; each message's copy carries
    ``?reminder_key=...`` so the webhook can tie a status to its reminder without a lookup.
    """

    channel = "sms"

    def __init__(
        self,
        account_sid: str,
        auth_token: str | SecretStr,
        *,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        host: str = "https://api.twilio.com",
        status_callback: str | None = None,
        timeout: float = 30.0,
        sender_name: str = "Service recouvrement",
        default_region: str = "FR",
        opt_out_number: str | None = None,
        payment_link_template: str | None = None,
    ):
        token = auth_token.get_secret_value() if isinstance(auth_token, SecretStr) else auth_token
        if not account_sid or not token:
            raise ValueError("TwilioTransport needs an account SID and an auth token; leave them unset for the outbox")
        if not from_number and not messaging_service_sid:
            raise ValueError("TwilioTransport needs a from number (E.164) or a messaging service SID (MG...)")
        install_log_redaction([token])
        self._http = _RecordingHttpClient(timeout=timeout)
        # An explicit environment: TWILIO_EDGE / TWILIO_REGION in os.environ would rewrite the host below.
        self._client = Client(
            account_sid, token, http_client=self._http, environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""}
        )
        self._client.api.base_url = host.rstrip("/")
        self.host = host
        self.account_sid = account_sid
        self.from_number = normalize_phone(from_number, default_region) if from_number else None
        self.messaging_service_sid = messaging_service_sid
        self.status_callback = status_callback
        self.sender_name = sender_name
        self.default_region = default_region
        self.opt_out_number = opt_out_number if opt_out_number is not None else self.from_number
        self.payment_link_template = payment_link_template

    def __repr__(self) -> str:  # never show the token
        return f"TwilioTransport(host={self.host!r}, account_sid={self.account_sid!r})"

    def send(self, message: SmsMessage | Mapping[str, Any], reminder_key: str) -> SendResult:
        """POST .../Messages.json; 201 -> the message SID, anything else -> :class:`TwilioDeliveryError`."""
        sms = _prepare(
            message,
            reminder_key,
            sender_name=self.sender_name,
            region=self.default_region,
            opt_out_number=self.opt_out_number,
            payment_link_template=self.payment_link_template,
        )
        kwargs: dict[str, Any] = {"to": sms.to, "body": sms.body}
        if self.messaging_service_sid:
            kwargs["messaging_service_sid"] = self.messaging_service_sid
        if self.from_number:
            kwargs["from_"] = self.from_number
        if self.status_callback:
            kwargs["status_callback"] = with_query(self.status_callback, reminder_key=reminder_key)
        try:
            created = self._client.messages.create(**kwargs)
        except TwilioRestException as exc:
            message = str(exc.msg or "").removeprefix("Unable to create record: ")  # the client's own prefix
            raise self._refused(reminder_key, int(exc.status), exc.code, message, exc.details) from None
        except TwilioServiceException as exc:
            detail = str(exc.detail or exc.title or "")
            raise self._refused(reminder_key, int(exc.status), exc.code, detail, exc.errors) from None
        except requests.RequestException as exc:
            if _never_sent(exc):
                raise TwilioDeliveryError(
                    f"Twilio unreachable for reminder {reminder_key} (request not sent): {type(exc).__name__}",
                    retryable=True,
                ) from None
            if isinstance(
                exc,
                requests.exceptions.InvalidURL | requests.exceptions.InvalidSchema | requests.exceptions.MissingSchema,
            ):
                raise TwilioDeliveryError(f"bad Twilio host {self.host!r}: {exc}", pause_channel=True) from None
            # A read timeout or a dropped connection: Twilio may have queued the SMS; resending could text twice.
            raise TwilioDeliveryError(
                f"no answer from Twilio for reminder {reminder_key} after the request was sent "
                f"({type(exc).__name__}): outcome unknown",
                outcome_unknown=True,
            ) from None
        except TwilioException as exc:  # a 2xx the client could not read: accepted, probably
            raise TwilioDeliveryError(
                f"unreadable Twilio answer for reminder {reminder_key}: {exc!r}: outcome unknown",
                outcome_unknown=True,
            ) from None
        sid = str(getattr(created, "sid", None) or "").strip()
        if not sid:  # no proof of acceptance to record: the same as no answer
            raise TwilioDeliveryError(
                f"Twilio answered reminder {reminder_key} without a message SID: outcome unknown",
                outcome_unknown=True,
            )
        log.info(
            "reminder %s: SMS %s queued by Twilio (%s, %d segment(s))", reminder_key, sid, sms.encoding, sms.segments
        )
        return SendResult(provider_message_id=sid, outbox_path=None)

    def _refused(
        self, reminder_key: str, status: int, code: int | None, message: str, details: Any
    ) -> TwilioDeliveryError:
        headers = getattr(self._http.last_response, "headers", None) or {}
        retry_after = parse_retry_after(next((v for k, v in headers.items() if k.lower() == "retry-after"), None))
        body = json.dumps({"code": code, "message": message, "status": status, "details": details}, default=str)
        twilio_code = f" (Twilio error {code})" if code and code != status else ""
        return TwilioDeliveryError.from_answer(
            status,
            code,
            f"Twilio answered HTTP {status}{twilio_code} for reminder {reminder_key}: {message}",
            body=body,
            retry_after=retry_after,
        )
