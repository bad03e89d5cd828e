"""Reminder emails: the message (by tone, French or English) and two transports behind one interface.

The message (:func:`render_reminder`) is shared with the paper letter. Its wording is in Jinja templates, one per
language, shape (one invoice, or a statement) and tone, under ``relance/channels/templates/email/``; the plain-text
part is rendered without escaping, the HTML part by an autoescaping environment.

A row of the per-invoice policy reads as it always did; a row of the reminder engine may group several invoices (its
``statement``: the message then carries a statement of account, one line per invoice and the total), be a formal
notice (``tone='formal_notice'``: for a business debtor it states the late-payment penalties of Code de commerce
L441-10 and the fixed 40 euro recovery indemnity per invoice of D441-5; for a consumer neither, only the legal-rate
interest a formal notice starts), be in English (``language='en'``), and carry a ``deliver_at`` moment, which
becomes SendGrid's ``send_at`` so an email planned outside the debtor's contact hours arrives when it may. The
amounts of penalties are not computed here.

This module also defines the channel-neutral pieces every transport shares (:class:`SendResult`,
:class:`DeliveryError`, :class:`Transport`): email is the reference channel and the
letter / call-list outboxes in ``relance.channels.outbox`` conform to the same interface.

Why ``personalizations[0].custom_args`` and not top-level ``custom_args``: SendGrid echoes both on every
Event Webhook event, but the official OpenAPI spec types the top-level field as a *string* while the client
emits an object, so a spec-validating gateway rejects it. Per-personalization custom args are an object in
the spec and in the API.
"""

from __future__ import annotations

import email.utils
import html
import http.client
import json
import logging
import math
import re
import string
import urllib.error
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from pydantic import SecretStr
from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import (
    Asm,
    Category,
    Content,
    CustomArg,
    From,
    GroupId,
    Mail,
    MailSettings,
    MimeType,
    SandBoxMode,
    SendAt,
    Subject,
    To,
)

from relance.files import write_text_atomic
from relance.redaction import install_log_redaction

log = logging.getLogger(__name__)

#: Lineage keys that may travel in custom_args, with the names they take there. Only opaque identifiers:
#: custom args and categories are stored by SendGrid as non-PII, so no names, addresses or amounts.
LINEAGE_CUSTOM_ARGS: dict[str, tuple[str, ...]] = {
    "flow_run_id": ("flow_run_id", "prefect.flow_run_id"),
    "model_version": ("model_version", "model.version"),
    "model_run_id": ("model_run_id", "model.run_id"),
    "dbt_invocation_id": ("dbt_invocation_id", "dbt.invocation_id"),
}

CURRENCY_SYMBOLS: dict[str, str] = {"EUR": "€", "USD": "$", "GBP": "£", "CHF": "CHF", "JPY": "¥"}


# --- channel-neutral interface ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SendResult:
    """What the ledger stores about a successful hand-off: the provider's id, or the file written."""

    provider_message_id: str | None
    outbox_path: Path | None


class DeliveryError(Exception):
    """A send that did not go out, or whose outcome is unknown, with what the ledger needs to decide what next.

    Every transport (email, SMS, outboxes) raises it; :meth:`for_status` classifies an HTTP answer the same way
    for every provider. Exactly one of these describes the error (the delivery loop acts on them in this order):

    * ``outcome_unknown``: the request may have reached the provider and been accepted (a 5xx, which a gateway
      can return after an accepted send; a timeout or a dropped connection after the request was written; an
      accepted answer without the provider's id). Mail Send has no idempotency key, so resending could deliver
      the message twice: the ledger row stays ``'sending'`` with the error, is never retried, and is settled by
      a provider event or by a person (``relance sends reconcile``). ``ambiguous`` is its older name.
    * ``retryable``: it provably did not go through and may succeed in a moment (connection refused, a name
      that does not resolve, 429, 408): retried in the same run with backoff and jitter, honouring
      ``retry_after`` (seconds, from the ``Retry-After`` header) when the provider gave one.
    * ``permanent``: the provider refused this very message (400, 413, 422...): not retried in the run; the next
      run tries again (the plan row may have been corrected), and after a bounded number of refusals the row is
      ``'abandoned'``.
    * ``pause_channel``: refused for the account or the endpoint, not for this message (401, 403, 404, 405: a
      revoked key, a wrong host): the row is ``'failed'`` without counting against the message, and the channel
      is paused for the rest of the run.
    * none of them: ``'failed'``, tried again by the next run.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: str = "",
        retryable: bool = False,
        outcome_unknown: bool = False,
        permanent: bool = False,
        pause_channel: bool = False,
        retry_after: float | None = None,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.outcome_unknown = bool(outcome_unknown or ambiguous)
        # an unknown outcome is never retried nor counted as a refusal, whatever the caller also said
        self.retryable = bool(retryable) and not self.outcome_unknown
        self.permanent = bool(permanent) and not self.outcome_unknown and not self.retryable
        self.pause_channel = bool(pause_channel) and not self.outcome_unknown
        self.retry_after = retry_after

    @property
    def ambiguous(self) -> bool:
        """The older name of :attr:`outcome_unknown`."""
        return self.outcome_unknown

    @classmethod
    def for_status(
        cls, status: int, message: str, *, body: str = "", retry_after: float | None = None
    ) -> DeliveryError:
        """The error for an HTTP answer that is not the provider's acceptance (:data:`HTTP_OUTCOMES`)."""
        kind = classify_status(status)
        return cls(
            message,
            status=status,
            body=body,
            retryable=kind == "retry",
            outcome_unknown=kind == "unknown",
            permanent=kind == "refused",
            pause_channel=kind == "account",
            retry_after=retry_after if kind == "retry" else None,
        )

    @property
    def errors(self) -> list[dict[str, Any]]:
        """SendGrid's ``{"errors": [{"message", "field"}]}`` list, or ``[]`` if the body is not that shape."""
        try:
            parsed = json.loads(self.body)
        except ValueError:
            return []
        errors = parsed.get("errors") if isinstance(parsed, dict) else None
        return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []

    @property
    def fields(self) -> list[str]:
        """The request fields the provider blamed (e.g. ``["custom_args"]``)."""
        return [str(e["field"]) for e in self.errors if e.get("field") not in (None, "null")]


#: How a provider's HTTP answer is read when it is not its acceptance (202 + X-Message-ID for SendGrid, 201 + a
#: SID for Twilio). ``retry``: provably not processed, worth retrying now; ``refused``: this message is refused;
#: ``account``: the account or the endpoint is refused (pause the channel); ``unknown``: may have been accepted.
HTTP_OUTCOMES: dict[str, str] = {
    "408, 425, 429": "retry (not processed; backoff with jitter, Retry-After honoured)",
    "401, 403, 404, 405": "account (failed, not counted against the message; channel paused for the run)",
    "other 4xx (400, 413, 422...)": "refused (failed; abandoned after a bounded number of refusals across runs)",
    "5xx, other 1xx/2xx/3xx": "unknown (left 'sending' for reconciliation, never resent)",
}


def classify_status(status: int) -> str:
    """``'retry'``, ``'account'``, ``'refused'`` or ``'unknown'`` for an HTTP status (see :data:`HTTP_OUTCOMES`)."""
    if status in (408, 425, 429):
        return "retry"
    if status in (401, 403, 404, 405):
        return "account"
    if 400 <= status < 500:
        return "refused"
    return "unknown"


def parse_retry_after(value: Any, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); ``None`` if absent or
    unreadable. Never negative."""
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max((moment - (now or datetime.now(UTC))).total_seconds(), 0.0)


@runtime_checkable
class Transport(Protocol):
    """One way out for one channel. ``message`` is a :class:`~sendgrid.helpers.mail.Mail` for email and the
    planned-reminder row (a mapping) for letters and calls.

    Must raise :class:`DeliveryError` for a send that did not happen; any other exception is treated by the
    ledger as a failure too, but with less information.
    """

    def send(self, message: Any, reminder_key: str) -> SendResult: ...


# --- message ------------------------------------------------------------------------------------------------

#: The tones a planned message may carry, mildest first (``formal_notice`` = mise en demeure).
TONES: tuple[str, ...] = ("preventive", "cordial", "firm", "formal_notice")
#: Languages with their own wording; anything else is written in French, the default.
LANGUAGES: tuple[str, ...] = ("fr", "en")
#: Fixed recovery indemnity per invoice paid late by a professional debtor (Code de commerce D441-5), in euros.
RECOVERY_INDEMNITY_EUR = 40
#: Days a formal notice gives the debtor to pay, counted from its receipt.
FORMAL_NOTICE_DEADLINE_DAYS = 8
#: SendGrid refuses a ``send_at`` more than 72 hours ahead (Mail Send spec, ``send_at``).
SENDGRID_MAX_SCHEDULE = timedelta(hours=72)
#: What a value must look like to travel as a custom arg beside the ids (scenario and step names from the
#: scenario YAML): a short slug, so free text (a name, an address) can never reach SendGrid that way.
_CONFIG_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_amount(amount: Any, currency: str, language: str = "fr") -> str:
    """Money as the reader writes it: French ``1 234,56 €`` (narrow no-break space for thousands, comma for
    decimals, symbol after); English (``language="en"``) ``€1,234.56`` (``CHF 1,234.56`` for a code)."""
    value = float(amount)
    code = (currency or "").upper()
    symbol = CURRENCY_SYMBOLS.get(code, code)
    if language == "en":
        digits = f"{value:,.2f}"
        if not symbol:
            return digits
        return f"{symbol}{digits}" if len(symbol) == 1 else f"{symbol}\u00a0{digits}"
    digits = f"{value:,.2f}".replace(",", "\u202f").replace(".", ",")
    return f"{digits}\u00a0{symbol}".strip()


def format_date(value: Any, language: str = "fr") -> str | None:
    """``31/03/2026`` (English: ``31 Mar 2026``, unambiguous on both sides of the Atlantic); ``None`` if the date
    is unknown (the sentence mentioning it is then left out)."""
    day = _as_date(value)
    if day is None:
        return None
    if language == "en":
        return f"{day.day} {_MONTHS_EN[day.month - 1]} {day.year}"
    return day.strftime("%d/%m/%Y")


def _as_date(value: Any) -> date | None:
    if value is None:
        return None
    try:
        if pd.isna(value):  # NaT is a datetime too: test it before the date branch
            return None
    except (ValueError, TypeError):  # pd.isna on a list-like: not a date either
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return pd.Timestamp(value).date()
    except (ValueError, TypeError):
        return None


def message_language(row: Mapping[str, Any]) -> str:
    """``'en'`` when the row's ``language`` says English (``en``, ``EN``, ``en-GB``), else ``'fr'``."""
    language = str(_field(row, "language") or "").strip().lower()
    return "en" if language[:2] == "en" else "fr"


@dataclass(frozen=True)
class StatementLine:
    """One invoice of a statement of account, as the engine's ``statement`` JSON gives it."""

    invoice_id: str
    open_amount: float
    due_date: date | None = None
    days_overdue: int | None = None
    issue_date: date | None = None
    amount: float | None = None

    @property
    def is_overdue(self) -> bool | None:
        return None if self.days_overdue is None else self.days_overdue > 0


def parse_statement(value: Any) -> list[StatementLine]:
    """The lines of a row's ``statement`` (JSON list text, or the list itself), oldest due date first; ``[]``
    when the row has none. Raises ``ValueError`` on a statement that is not a list of invoices."""
    value = _missing_to_none(value)
    if value is None or value == "":
        return []
    items = json.loads(value) if isinstance(value, str | bytes) else value
    if not isinstance(items, list | tuple):
        raise ValueError(f"statement must be a JSON list of invoices, got {type(items).__name__}")
    lines = []
    for item in items:
        if not isinstance(item, Mapping) or _missing_to_none(item.get("invoice_id")) is None:
            raise ValueError(f"statement line without an invoice_id: {item!r}")
        days = _missing_to_none(item.get("days_overdue"))
        amount = _missing_to_none(item.get("amount"))
        lines.append(
            StatementLine(
                invoice_id=str(item["invoice_id"]),
                open_amount=float(_missing_to_none(item.get("open_amount")) or 0.0),
                due_date=_as_date(item.get("due_date")),
                days_overdue=None if days is None else int(days),
                issue_date=_as_date(item.get("issue_date")),
                amount=None if amount is None else float(amount),
            )
        )
    return sorted(lines, key=lambda line: (line.due_date is None, line.due_date or date.min))


#: The placeholders a payment link template may use (``Settings.payment_link_template``).
PAYMENT_LINK_FIELDS: tuple[str, ...] = ("invoice_id", "amount", "currency", "customer_id")


def check_payment_link_template(template: str) -> str:
    """``template`` if it is an http(s) URL whose only placeholders are :data:`PAYMENT_LINK_FIELDS` (no format
    specs or conversions: each value is URL-quoted as a whole); ``ValueError`` otherwise."""
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ValueError(f"payment link template {template!r}: {exc}") from None
    for name, spec, conv in fields:
        if name not in PAYMENT_LINK_FIELDS or spec or conv:
            raise ValueError(
                f"payment link template {template!r}: unknown placeholder {{{name}}}; use "
                + ", ".join(f"{{{f}}}" for f in PAYMENT_LINK_FIELDS)
            )
    if urllib.parse.urlsplit(template).scheme not in ("https", "http"):
        raise ValueError(f"payment link template {template!r} is not an http(s) URL")
    return template


def payment_link(template: str, *, invoice_id: Any, amount: Any, currency: Any, customer_id: Any = None) -> str:
    """The payment link of one invoice: ``template`` with ``{invoice_id}``, ``{amount}`` (the open amount, two
    decimals with a dot), ``{currency}`` (ISO code) and ``{customer_id}`` filled in, each value URL-quoted (a
    ``/``, ``&`` or space in an invoice number cannot change the link's path or parameters). A placeholder whose
    value is missing raises ``ValueError``: the message is not prepared rather than sent with a wrong link."""
    values = {
        "invoice_id": _missing_to_none(invoice_id),
        "amount": None if _missing_to_none(amount) is None else f"{float(amount):.2f}",
        "currency": None if _missing_to_none(currency) is None else str(currency).strip().upper(),
        "customer_id": _missing_to_none(customer_id),
    }
    used = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    missing = sorted(name for name in used if values.get(name) in (None, ""))
    if missing:
        raise ValueError(f"payment link of invoice {invoice_id}: no value for {', '.join(missing)}")
    return template.format_map({k: urllib.parse.quote(str(v), safe="") for k, v in values.items() if v is not None})


@dataclass(frozen=True)
class PaymentLink:
    """A paragraph with a payment link: the URL itself in the text part, a link in the HTML part."""

    label: str
    url: str

    def text(self) -> str:
        return f"{self.label} {self.url}"

    def html(self) -> str:
        url = html.escape(self.url, quote=True)
        return f'<p>{html.escape(self.label)} <a href="{url}">{url}</a></p>'


@dataclass(frozen=True)
class Statement:
    """A statement of account block: one line per invoice and the total, in the message's language.

    ``payment_links``: (invoice_id, URL) pairs; an invoice with one gets it under its line (text) or in a last
    column (HTML)."""

    lines: tuple[StatementLine, ...]
    currency: str
    language: str
    payment_links: tuple[tuple[str, str], ...] = ()

    def link(self, invoice_id: str) -> str | None:
        return next((url for inv, url in self.payment_links if inv == invoice_id), None)

    @property
    def total(self) -> float:
        return round(sum(line.open_amount for line in self.lines), 2)

    def _money(self, amount: float) -> str:
        return format_amount(amount, self.currency, self.language)

    def _status(self, line: StatementLine, *, short: bool = False) -> str:
        """How late the invoice is (``short``: without the words the table's column heading already says)."""
        d, en = line.days_overdue, self.language == "en"
        if d is None:
            return ""
        if d > 0:
            days = f"{d} day{'s' if d > 1 else ''}" if en else f"{d} jour{'s' if d > 1 else ''}"
            return days if short else f"{days} overdue" if en else f"{days} de retard"
        if d == 0:
            return "due today" if en else "échue ce jour"
        return "not yet due" if en else "non échue"

    def text(self) -> str:
        en = self.language == "en"
        rows = []
        for line in self.lines:
            issued = format_date(line.issue_date, self.language)
            due = format_date(line.due_date, self.language)
            status = self._status(line)
            head = f"- {'Invoice' if en else 'Facture'} {line.invoice_id}"
            if issued:
                head += f" {'of' if en else 'du'} {issued}"
            if due:
                head += f", {'due' if en else 'échéance le'} {due}"
            if status:
                head += f" ({status})"
            open_ = self._money(line.open_amount)
            of_total = (
                f" {'of' if en else 'sur'} {self._money(line.amount)}"
                if line.amount is not None and abs(line.amount - line.open_amount) >= 0.005
                else ""
            )
            rows.append(f"{head}: {open_}{of_total} outstanding" if en else f"{head} : restant dû {open_}{of_total}")
            url = self.link(line.invoice_id)
            if url:
                rows.append(f"  {'Pay online:' if en else 'Régler en ligne :'} {url}")
        total = self._money(self.total)
        rows.append(f"Total outstanding: {total}" if en else f"Total restant dû : {total}")
        return "\n".join(rows)

    def html(self) -> str:
        """The same lines as :meth:`text`, as a table with inline styles (mail clients drop ``<style>``); every
        value escaped."""
        en = self.language == "en"
        heads = (
            ("Invoice", "Date", "Due", "Overdue", "Amount", "Outstanding")
            if en
            else ("Facture", "Date", "Échéance", "Retard", "Montant", "Restant dû")
        )
        cell = 'style="padding:2px 8px;border-bottom:1px solid #ddd"'
        num = 'style="padding:2px 8px;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap"'
        links = bool(self.payment_links)
        if links:
            heads = (*heads, "Pay online" if en else "Paiement")
        head = "".join(f'<th style="padding:2px 8px;text-align:left">{html.escape(h)}</th>' for h in heads)
        body = []
        for line in self.lines:
            values = (
                line.invoice_id,
                format_date(line.issue_date, self.language) or "",
                format_date(line.due_date, self.language) or "",
                self._status(line, short=True),
            )
            amounts = (
                "" if line.amount is None else self._money(line.amount),
                self._money(line.open_amount),
            )
            body.append(
                "<tr>"
                + "".join(f"<td {cell}>{html.escape(v)}</td>" for v in values)
                + "".join(f"<td {num}>{html.escape(v)}</td>" for v in amounts)
                + (f"<td {cell}>{self._link_html(line.invoice_id)}</td>" if links else "")
                + "</tr>"
            )
        total_label = "Total outstanding" if en else "Total restant dû"
        return (
            '<table class="statement" style="border-collapse:collapse;margin:1em 0">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody>"
            f'<tfoot><tr><th colspan="5" style="padding:2px 8px;text-align:left">{html.escape(total_label)}</th>'
            f'<th style="padding:2px 8px;text-align:right;white-space:nowrap">{html.escape(self._money(self.total))}'
            "</th>" + ("<th></th>" if links else "") + "</tr></tfoot></table>"
        )

    def _link_html(self, invoice_id: str) -> str:
        url = self.link(invoice_id)
        if not url:
            return ""
        label = "Pay" if self.language == "en" else "Régler"
        return f'<a href="{html.escape(url, quote=True)}">{label}</a>'


@dataclass(frozen=True)
class ReminderMessage:
    """A rendered reminder: its subject and its blocks (paragraphs, at most one statement of account), from which
    the text part, the HTML part and the letter are all made, so they always say the same thing."""

    subject: str
    language: str
    blocks: tuple[str | Statement | PaymentLink, ...]

    @property
    def text(self) -> str:
        """The plain-text part (``email/message.txt``): the blocks, a blank line between two."""
        return TEXT_TEMPLATES.get_template("email/message.txt").render(blocks=self.blocks)

    def html_blocks(self, separator: str = "") -> str:
        """One ``<p>`` per paragraph (escaped, line breaks kept), the statement as a table."""
        return separator.join(
            f"<p>{html.escape(b).replace(chr(10), '<br>')}</p>" if isinstance(b, str) else b.html() for b in self.blocks
        )

    @property
    def statement(self) -> Statement | None:
        return next((b for b in self.blocks if isinstance(b, Statement)), None)


def _count_label(lines: tuple[StatementLine, ...], en: bool) -> str:
    """``3 factures échues`` / ``3 factures à échéance`` / ``3 factures dont 2 échues`` (English alike)."""
    n = len(lines)
    overdue = [line.is_overdue for line in lines]
    late = sum(1 for o in overdue if o)
    if None in overdue:
        return f"{n} invoices" if en else f"{n} factures"
    if late == n:
        return f"{n} overdue invoices" if en else f"{n} factures échues"
    if late == 0:
        return f"{n} invoices falling due" if en else f"{n} factures à échéance"
    return f"{n} invoices, {late} overdue" if en else f"{n} factures dont {late} échue{'s' if late > 1 else ''}"


# --- templates ----------------------------------------------------------------------------------------------

#: The wording lives in ``relance/channels/templates/email/`` (shipped in the wheel, loaded through the package):
#: ``<language>/<single|statement>_<tone>.txt`` per language, shape and tone, ``<language>/frame.txt`` (greeting,
#: closing, payment link label), ``<language>/formal_notice_demand.txt``, and ``message.txt`` / ``message.html``
#: (on ``base.html``) for the two parts of the email.
_TEMPLATES = PackageLoader("relance.channels", "templates")
#: Where a statement template puts the statement of account (a paragraph of its own).
_STATEMENT_SLOT = "\x00statement\x00"


def _escape_html(value: Any) -> Markup:
    """The HTML environment's escaping: a value is escaped unless it is already markup, spelled as
    :func:`html.escape` spells it (``&#x27;``, ``&quot;``) rather than MarkupSafe (``&#39;``, ``&#34;``), so the
    HTML part reads byte for byte as it always did."""
    return value if hasattr(value, "__html__") else Markup(html.escape(str(value)))


def _paragraph_html(text: str) -> Markup:
    """A paragraph of the text part in HTML: escaped, its line breaks as ``<br>``."""
    return Markup(html.escape(text).replace("\n", "<br>"))


#: The wording and the plain-text part: never escaped.
TEXT_TEMPLATES = Environment(loader=_TEMPLATES, autoescape=False, undefined=StrictUndefined)
#: The HTML part: autoescaped (every ``.html`` template).
HTML_TEMPLATES = Environment(
    loader=_TEMPLATES, autoescape=select_autoescape(["html"]), finalize=_escape_html, undefined=StrictUndefined
)
HTML_TEMPLATES.filters["paragraph"] = _paragraph_html
HTML_TEMPLATES.tests["payment_link"] = lambda value: isinstance(value, PaymentLink)


def _paragraphs(text: str) -> list[str]:
    """The paragraphs of a rendered wording template: blocks separated by blank lines; the lines of a block are
    one paragraph (joined with a space), so a template may wrap a long sentence."""
    blocks = re.split(r"\n(?:[ \t]*\n)+", text.strip(" \t\n"))
    return [" ".join(line.strip(" \t") for line in block.split("\n") if line.strip(" \t")) for block in blocks]


def _wording(language: str, kind: str, context: Mapping[str, Any]) -> tuple[str, list[str]]:
    """(subject, paragraphs) of ``email/<language>/<kind>.txt`` rendered with ``context``."""
    module = TEXT_TEMPLATES.get_template(f"email/{language}/{kind}.txt").make_module(dict(context))
    return str(module.subject), [p for p in _paragraphs(str(module)) if p]


def render_reminder(
    reminder_row: Mapping[str, Any], *, sender_name: str, payment_link_template: str | None = None
) -> ReminderMessage:
    """The message of one planned reminder, shared by the email (text and HTML parts) and the paper letter.

    Reads ``tone``, ``invoice_id``, ``open_amount``, ``currency`` and, when present, ``customer_name``,
    ``due_date``, ``customer_type`` (``'B2B'`` gets the professional formal notice: penalties and the fixed
    indemnity), ``language`` (``'en'`` for English, French otherwise) and ``statement`` (the engine's JSON list of
    invoices: with more than one invoice the message carries a statement of account, its total is the sum of
    the lines). A row with none of those columns reads exactly as the per-invoice policy always wrote it.

    ``payment_link_template`` (``Settings.payment_link_template``, see :func:`payment_link`): a payment link per
    invoice, under each line of a statement, or in a paragraph of its own before the closing for one invoice.
    """
    tone = str(reminder_row["tone"])
    if tone not in TONES:
        raise ValueError(f"unknown tone {tone!r}; expected one of {', '.join(TONES)}")
    language = message_language(reminder_row)
    currency = str(reminder_row["currency"])
    name = str(_field(reminder_row, "customer_name") or "").strip()
    b2b = str(_field(reminder_row, "customer_type") or "").strip().upper() == "B2B"
    lines = parse_statement(_field(reminder_row, "statement"))

    customer_id = _field(reminder_row, "customer_id")

    def link(invoice_id: Any, amount: Any) -> str | None:
        if not payment_link_template:
            return None
        return payment_link(
            payment_link_template, invoice_id=invoice_id, amount=amount, currency=currency, customer_id=customer_id
        )

    context: dict[str, Any] = {
        "b2b": b2b,
        "deadline_days": FORMAL_NOTICE_DEADLINE_DAYS,
        "indemnity_eur": RECOVERY_INDEMNITY_EUR,
    }
    statement: Statement | None = None
    url: str | None = None
    if len(lines) > 1:
        links = tuple(
            (line.invoice_id, line_url)
            for line in lines
            if (line_url := link(line.invoice_id, line.open_amount)) is not None
        )
        statement = Statement(tuple(lines), currency, language, payment_links=links)
        row_total = _field(reminder_row, "open_amount")
        if row_total is not None and abs(float(row_total) - statement.total) >= 0.005:
            log.warning(
                "reminder %s: open_amount %s differs from its statement's total %s; the message shows the "
                "statement's lines and their total",
                reminder_row.get("reminder_key"),
                row_total,
                statement.total,
            )
        context |= {
            "statement": _STATEMENT_SLOT,
            "n": len(lines),
            "count": _count_label(statement.lines, en=language == "en"),
            "total": format_amount(statement.total, currency, language),
            # a formal notice claims the indemnity for every invoice not known to be not yet due
            "late_invoices": sum(1 for line in statement.lines if line.is_overdue is not False),
        }
    else:
        due = _field(reminder_row, "due_date")
        if due is None and lines:
            due = lines[0].due_date
        amount = format_amount(reminder_row["open_amount"], currency, language)
        context |= {
            "invoice": str(reminder_row["invoice_id"]),
            "amount": amount,
            "due": format_date(due, language),
            "total": amount,
            "late_invoices": 1,
        }
        url = link(reminder_row["invoice_id"], reminder_row["open_amount"])
    context["indemnity"] = format_amount(RECOVERY_INDEMNITY_EUR * context["late_invoices"], "EUR", language)

    subject, paragraphs = _wording(language, f"{'statement' if statement else 'single'}_{tone}", context)
    blocks: list[str | Statement | PaymentLink] = [
        statement if p == _STATEMENT_SLOT and statement is not None else p for p in paragraphs
    ]
    frame = TEXT_TEMPLATES.get_template(f"email/{language}/frame.txt").make_module(
        {"formal": tone == "formal_notice", "name": name, "sender_name": sender_name}
    )
    if url is not None:
        blocks.append(PaymentLink(str(frame.payment_link_label), url))
    return ReminderMessage(subject, language, (str(frame.greeting), *blocks, str(frame.closing)))


def reminder_text(reminder_row: Mapping[str, Any], *, sender_name: str) -> tuple[str, str]:
    """(subject, plain-text body) of a planned reminder; shared by the email and the paper letter."""
    message = render_reminder(reminder_row, sender_name=sender_name)
    return message.subject, message.text


def message_html(message: ReminderMessage) -> str:
    """The HTML part (``email/message.html``, autoescaped): the message's blocks, escaped (a statement as a table),
    in the message's language."""
    return HTML_TEMPLATES.get_template("email/message.html").render(language=message.language, blocks=message.blocks)


def _missing_to_none(value: Any) -> Any:
    try:
        return None if value is None or pd.isna(value) else value
    except (ValueError, TypeError):  # pd.isna on a list-like: not a missing marker
        return value


def _field(row: Mapping[str, Any], name: str) -> Any:
    """``row[name]``, with pandas' missing markers (NaN, NaT, NA) read as ``None``."""
    return _missing_to_none(row.get(name))


def send_at_for(deliver_at: Any, *, now: datetime | None = None) -> int | None:
    """SendGrid's ``send_at`` (unix seconds) for a planned delivery moment, or ``None`` to send at once.

    ``deliver_at``: a timezone-aware datetime, or a naive one read as UTC (``ops.reminders_planned.deliver_at``
    is a UTC ``TIMESTAMP``); missing or not after ``now`` -> ``None``. Rounded up to the second, so the mail never
    leaves before the allowed moment. More than 72 hours ahead (SendGrid's limit) -> ``ValueError``: the message
    is not prepared, the ledger records the failure, and a later run (closer to the moment) sends it.
    """
    value = _missing_to_none(deliver_at)
    if value is None:
        return None
    try:
        moment = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"deliver_at {deliver_at!r} is not a date and time") from exc
    moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
    current = pd.Timestamp(now or datetime.now(UTC))
    current = current.tz_localize("UTC") if current.tzinfo is None else current.tz_convert("UTC")
    if moment <= current:
        return None
    if moment - current > SENDGRID_MAX_SCHEDULE:
        raise ValueError(
            f"deliver_at {moment.isoformat()} is more than {SENDGRID_MAX_SCHEDULE.total_seconds() / 3600:.0f} hours "
            "ahead, beyond what SendGrid schedules; a later run sends it"
        )
    return math.ceil(moment.timestamp())


@dataclass(frozen=True)
class MailOptions:
    """What the settings add to every reminder email (:meth:`from_settings`).

    * ``payment_link_template``: a payment link per invoice in the text and HTML parts (:func:`payment_link`);
      a setting rather than a plan column, since the payment page is the firm's, not the debtor's. Checked when
      the options are made, so a wrong template stops the run before any send.
    * ``unsubscribe_group_id``: SendGrid's ``asm.group_id`` on consumers' emails (any debtor not ``B2B``, as
      for the wording of the formal notice), so SendGrid adds its unsubscribe link and honours the group's
      opt-outs; business debtors' reminders carry none.
    * ``sandbox_mode``: ``mail_settings.sandbox_mode.enable``: SendGrid validates the message, answers 200 and
      delivers nothing; the ledger records ``provider_message_id`` ``'sandbox:<reminder_key>'``.
    """

    payment_link_template: str | None = None
    unsubscribe_group_id: int | None = None
    sandbox_mode: bool = False

    def __post_init__(self) -> None:
        if self.payment_link_template:
            check_payment_link_template(self.payment_link_template)
        if self.unsubscribe_group_id is not None and int(self.unsubscribe_group_id) < 1:
            raise ValueError(f"unsubscribe group id must be a positive integer, got {self.unsubscribe_group_id}")

    @classmethod
    def from_settings(cls, settings: Any) -> MailOptions:
        """From :class:`~relance.settings.Settings` (``payment_link_template``, ``sendgrid_unsubscribe_group_id``,
        ``sendgrid_sandbox_mode``)."""
        return cls(
            payment_link_template=settings.payment_link_template or None,
            unsubscribe_group_id=settings.sendgrid_unsubscribe_group_id,
            sandbox_mode=bool(settings.sendgrid_sandbox_mode),
        )


#: What the ledger records as the provider's id of a message SendGrid validated in sandbox mode (nothing sent).
SANDBOX_ID_PREFIX = "sandbox:"


def is_consumer(reminder_row: Mapping[str, Any]) -> bool:
    """A consumer (B2C) debtor: anything but ``customer_type == 'B2B'`` (the formal notice reads the same way)."""
    return str(_field(reminder_row, "customer_type") or "").strip().upper() != "B2B"


def build_mail(
    reminder_row: Mapping[str, Any],
    *,
    sender_email: str,
    sender_name: str,
    lineage: Mapping[str, str | None],
    now: datetime | None = None,
    options: MailOptions | None = None,
) -> Mail:
    """The SendGrid message for one planned email reminder.

    ``reminder_row`` is one row of a plan (``relance.reminders.policy.plan_reminders`` or the engine's; a dict or
    a pandas Series): ``reminder_key, invoice_id, recipient, tone, open_amount, currency``; the columns
    :func:`render_reminder` reads are used when present. ``deliver_at`` in the future (compared with ``now``,
    default the current time) sets SendGrid's top-level ``send_at`` (see :func:`send_at_for`).

    Ids in ``personalizations[0].custom_args``: ``reminder_key``, ``invoice_id`` (the lead invoice of a grouped
    message), ``model_version`` and ``model_run_id`` (the row's, else lineage's), ``flow_run_id`` and the other
    keys of :data:`LINEAGE_CUSTOM_ARGS` found in ``lineage`` (either spelling); for an engine row (one with a
    ``scenario``), ``scenario`` and ``step`` too: names from the scenario configuration, not personal data, sent
    only when they look like a slug. Other keys are left out on purpose: custom args are size-limited and must
    stay free of personal data (the invoices of a grouped message are in ``ops.reminders_planned``, found by
    ``reminder_key``).

    ``options`` (:class:`MailOptions`): payment links, the unsubscribe group of consumers' emails, sandbox mode.
    """
    options = options or MailOptions()
    recipient = str(_field(reminder_row, "recipient") or "").strip()
    if "@" not in recipient:
        raise ValueError(f"reminder {reminder_row.get('reminder_key')} has no email recipient")
    tone = str(reminder_row["tone"])
    invoice = str(reminder_row["invoice_id"])
    name = str(_field(reminder_row, "customer_name") or "").strip()
    message = render_reminder(
        reminder_row, sender_name=sender_name, payment_link_template=options.payment_link_template
    )
    send_at = send_at_for(_field(reminder_row, "deliver_at"), now=now)

    mail = Mail(from_email=From(sender_email, sender_name), to_emails=To(recipient, name or None))
    mail.subject = Subject(message.subject)
    mail.content = [Content(MimeType.text, message.text), Content(MimeType.html, message_html(message))]
    if send_at is not None:
        mail.send_at = SendAt(send_at)

    args: dict[str, str] = {"reminder_key": str(reminder_row["reminder_key"]), "invoice_id": invoice}
    for arg in ("model_version", "model_run_id"):  # the row's own scoring lineage wins over the run's
        value = _field(reminder_row, arg)
        if value is not None:
            args[arg] = str(value)
    for arg, spellings in LINEAGE_CUSTOM_ARGS.items():
        if arg in args:
            continue
        value = next((lineage[k] for k in spellings if lineage.get(k)), None)
        if value:
            args[arg] = str(value)
    if _field(reminder_row, "scenario") is not None:
        for arg in ("scenario", "step"):
            value = str(_field(reminder_row, arg) or "")
            if _CONFIG_NAME.fullmatch(value):
                args[arg] = value
            elif value:
                log.warning(
                    "reminder %s: %s %r is not a plain name; left out of custom_args", args["reminder_key"], arg, value
                )
    mail.custom_arg = [CustomArg(k, v, p=0) for k, v in args.items()]
    mail.category = [Category("relance"), Category(tone)]
    if options.unsubscribe_group_id is not None and is_consumer(reminder_row):
        mail.asm = Asm(GroupId(int(options.unsubscribe_group_id)))
    if options.sandbox_mode:
        settings = MailSettings()
        settings.sandbox_mode = SandBoxMode(True)
        mail.mail_settings = settings
    return mail


# --- transports ---------------------------------------------------------------------------------------------


class SendGridTransport:
    """Sends through the real SendGrid v3 client; ``host`` points it at a stand-in or the EU region."""

    channel = "email"

    def __init__(self, api_key: str | SecretStr, host: str = "https://api.sendgrid.com", timeout: float = 30.0):
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        if not key:
            raise ValueError("SendGridTransport needs an API key; leave it unset to use the outbox instead")
        # python_http_client logs every request's headers at DEBUG, ``Authorization: Bearer <key>`` included:
        # whoever turns DEBUG on (or Prefect ships the records to its database) sees ``Bearer ***`` instead.
        install_log_redaction([key])
        self._client = SendGridAPIClient(api_key=key, host=host)
        # python_http_client has no default timeout: without one a stalled connection hangs the flow forever.
        self._client.client.timeout = timeout
        self.host = host

    def __repr__(self) -> str:  # never show the key
        return f"SendGridTransport(host={self.host!r})"

    def send(self, message: Mail | Mapping[str, Any], reminder_key: str) -> SendResult:
        """POST /v3/mail/send. Accepted = ``202`` with an ``X-Message-ID`` header (its value is returned), or
        ``200`` for a message in sandbox mode (validated, not delivered: ``'sandbox:<reminder_key>'``).
        Anything else raises :class:`DeliveryError`, classified by what it proves:

        * connection refused, a host that does not resolve, any error while the request was being written
          (urllib raises ``URLError`` only before the request is complete): not sent, ``retryable``;
        * an HTTP error answer: :meth:`DeliveryError.for_status` (429 retryable with its ``Retry-After``, a 4xx
          refused, a 5xx of unknown outcome);
        * a timeout or a dropped connection while waiting for the answer, a ``2xx`` without ``X-Message-ID``,
          ``200`` outside sandbox mode, any other status: ``outcome_unknown``.
        """
        body = message.get() if isinstance(message, Mail) else dict(message)
        sandbox = (body.get("mail_settings") or {}).get("sandbox_mode", {}).get("enable") is True
        try:
            response = self._client.send(body)
        except HTTPError as exc:
            status = int(exc.status_code)
            text = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else str(exc.body or "")
            headers = exc.headers or {}
            raise DeliveryError.for_status(
                status,
                f"SendGrid answered HTTP {status} for reminder {reminder_key}: {text[:500]}",
                body=text,
                retry_after=_retry_after(headers),
            ) from None
        except urllib.error.URLError as exc:
            # urllib wraps only what fails before the whole request is written (connect, DNS, TLS, the body):
            # SendGrid cannot have accepted a request it did not fully receive, so a retry cannot duplicate it.
            raise DeliveryError(
                f"SendGrid unreachable for reminder {reminder_key} (request not sent): {exc.reason}", retryable=True
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            # A timeout or a broken connection while waiting for the answer: the request was sent and may have
            # been accepted. Mail Send has no idempotency key: never resend, reconcile from events.
            raise DeliveryError(
                f"no answer from SendGrid for reminder {reminder_key} after the request was sent: {exc!r}",
                outcome_unknown=True,
            ) from None
        status = int(response.status_code)
        message_id = (response.headers.get("X-Message-ID") or "").strip() if response.headers else ""
        if status == 202 and message_id:
            if sandbox:
                log.warning("SendGrid answered 202 to reminder %s in sandbox mode: it was really sent", reminder_key)
            return SendResult(provider_message_id=message_id, outbox_path=None)
        if status == 200 and sandbox:
            return SendResult(provider_message_id=f"{SANDBOX_ID_PREFIX}{reminder_key}", outbox_path=None)
        text = (
            response.body.decode("utf-8", "replace") if isinstance(response.body, bytes) else str(response.body or "")
        )
        if status == 202:
            problem = "accepted it without an X-Message-ID header"
        elif status == 200:
            problem = "answered 200, which it does only in sandbox mode, and this message is not in sandbox mode"
        else:
            problem = f"answered an unexpected HTTP {status}"
        raise DeliveryError(
            f"SendGrid {problem} for reminder {reminder_key}: not proof of acceptance",
            status=status,
            body=text,
            outcome_unknown=True,
        )


def _retry_after(headers: Any) -> float | None:
    """``Retry-After`` (seconds or a date), else SendGrid's ``X-RateLimit-Reset`` (unix seconds)."""
    get = headers.get if hasattr(headers, "get") else dict(headers).get
    seconds = parse_retry_after(get("Retry-After"))
    if seconds is not None:
        return seconds
    reset = get("X-RateLimit-Reset")
    try:
        return max(float(reset) - datetime.now(UTC).timestamp(), 0.0) if reset else None
    except (TypeError, ValueError):
        return None


class OutboxTransport:
    """The embedded default: writes exactly the JSON the SendGrid client would POST, one file per reminder.

    ``<outbox_dir>/email/<reminder_key>.json``; replaying a file through the API later sends the same message.
    """

    channel = "email"

    def __init__(self, outbox_dir: Path):
        self.directory = Path(outbox_dir) / "email"

    def send(self, message: Mail, reminder_key: str) -> SendResult:
        path = self.directory / f"{reminder_key}.json"
        write_text_atomic(path, json.dumps(message.get(), ensure_ascii=False, indent=2, sort_keys=True) + "\n")
        return SendResult(provider_message_id=None, outbox_path=path)
