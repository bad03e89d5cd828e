"""Reminder emails: the message (French, by tone) and two transports behind one interface.

This module also defines the channel-neutral pieces every transport shares (:class:`SendResult`,
:class:`DeliveryError`, :class:`Transport`): email is the reference channel and the
letter / call-list outboxes in ``relance.channels.outbox`` conform to the same interface.

Why ``personalizations[0].custom_args`` and not top-level ``custom_args``: SendGrid echoes both on every
Event Webhook event, but the official OpenAPI spec types the top-level field as a *string* while the client
emits an object, so a spec-validating gateway rejects it. Per-personalization custom args are an object in
the spec and in the API.
"""

from __future__ import annotations

import html
import http.client
import json
import logging
import urllib.error
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pandas as pd
from pydantic import SecretStr
from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Category, Content, CustomArg, From, Mail, MimeType, Subject, To

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
    """A send that did not go out, with what the ledger and an operator need to decide what to do next.

    ``retryable``: worth trying again later (429, 5xx, connection refused). ``ambiguous``: the request may
    have reached the provider (e.g. a read timeout), so resending could duplicate the message; the ledger
    leaves such rows for reconciliation instead of retrying them.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: str = "",
        retryable: bool = False,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.retryable = retryable
        self.ambiguous = ambiguous

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


@runtime_checkable
class Transport(Protocol):
    """One way out for one channel. ``message`` is a :class:`~sendgrid.helpers.mail.Mail` for email and the
    planned-reminder row (a mapping) for letters and calls.

    Must raise :class:`DeliveryError` for a send that did not happen; any other exception is treated by the
    ledger as a failure too, but with less information.
    """

    def send(self, message: Any, reminder_key: str) -> SendResult: ...


# --- message ------------------------------------------------------------------------------------------------


def format_amount(amount: Any, currency: str) -> str:
    """French money format: ``1 234,56 €`` (narrow no-break space for thousands, comma for decimals)."""
    value = float(amount)
    digits = f"{value:,.2f}".replace(",", "\u202f").replace(".", ",")
    code = (currency or "").upper()
    return f"{digits}\u00a0{CURRENCY_SYMBOLS.get(code, code)}".strip()


def format_date(value: Any) -> str | None:
    """``31/03/2026``; ``None`` if the date is unknown (the sentence mentioning it is then left out)."""
    if value is None:
        return None
    try:
        if pd.isna(value):  # NaT is a datetime too: test it before the date branch
            return None
    except (ValueError, TypeError):  # pd.isna on a list-like: not a date either
        return None
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    try:
        return pd.Timestamp(value).strftime("%d/%m/%Y")
    except (ValueError, TypeError):
        return None


def _texts(tone: str, *, name: str, invoice: str, amount: str, due: str | None, sender: str) -> tuple[str, str]:
    """Subject and plain-text body for one tone. Plain French, no threats beyond the next step."""
    due_past = f", échue le {due}," if due else ""
    if tone == "preventive":
        subject = f"Rappel : facture {invoice} à échéance" + (f" le {due}" if due else "")
        lines = [
            f"Nous vous rappelons que la facture n° {invoice}, d'un montant de {amount}, arrive à échéance"
            + (f" le {due}." if due else " prochainement."),
            "Si votre règlement est déjà programmé, merci de ne pas tenir compte de ce message.",
        ]
    elif tone == "cordial":
        subject = f"Facture {invoice} : règlement en attente"
        lines = [
            f"Sauf erreur de notre part, la facture n° {invoice}{due_past} d'un montant restant dû "
            f"de {amount}, n'a pas encore été réglée.",
            "Il s'agit peut-être d'un simple oubli : nous vous remercions de bien vouloir procéder à son "
            "règlement dans les meilleurs délais.",
            "Si vous l'avez réglée entre-temps, merci de ne pas tenir compte de ce message.",
        ]
    elif tone == "firm":
        subject = f"Relance : facture {invoice} impayée"
        lines = [
            f"Sauf erreur de notre part, la facture n° {invoice}{due_past} d'un montant restant dû de "
            f"{amount}, demeure impayée à ce jour.",
            "Nous vous demandons de procéder à son règlement sous huit jours à compter de la réception de ce message.",
            "En cas de difficulté ou de désaccord sur cette facture, répondez à ce message : nous sommes "
            "prêts à en discuter avec vous.",
        ]
    else:
        raise ValueError(f"unknown tone {tone!r}; expected preventive, cordial or firm")
    greeting = f"Bonjour {name}," if name else "Bonjour,"
    body = "\n\n".join([greeting, *lines, f"Cordialement,\n{sender}"])
    return subject, body


def reminder_text(reminder_row: Mapping[str, Any], *, sender_name: str) -> tuple[str, str]:
    """(subject, plain-text body) of a planned reminder; shared by the email and the paper letter."""
    return _texts(
        str(reminder_row["tone"]),
        name=str(_field(reminder_row, "customer_name") or "").strip(),
        invoice=str(reminder_row["invoice_id"]),
        amount=format_amount(reminder_row["open_amount"], str(reminder_row["currency"])),
        due=format_date(_field(reminder_row, "due_date")),
        sender=sender_name,
    )


def _html(body_text: str) -> str:
    """The same words as the text part, escaped, one paragraph per block: both parts always agree."""
    paragraphs = "".join(f"<p>{html.escape(block).replace(chr(10), '<br>')}</p>" for block in body_text.split("\n\n"))
    return f'<!doctype html><html lang="fr"><body>{paragraphs}</body></html>'


def _field(row: Mapping[str, Any], name: str) -> Any:
    """``row[name]``, with pandas' missing markers (NaN, NaT, NA) read as ``None``."""
    value = row.get(name)
    try:
        return None if value is None or pd.isna(value) else value
    except (ValueError, TypeError):  # pd.isna on a list-like: not a missing marker
        return value


def build_mail(
    reminder_row: Mapping[str, Any],
    *,
    sender_email: str,
    sender_name: str,
    lineage: Mapping[str, str | None],
) -> Mail:
    """The SendGrid message for one planned email reminder.

    ``reminder_row`` is one row of ``relance.reminders.policy.plan_reminders`` (a dict or a pandas Series):
    ``reminder_key, invoice_id, recipient, tone, open_amount, currency``; ``customer_name`` and ``due_date``
    are used when present. Ids in ``personalizations[0].custom_args``: ``reminder_key``, ``invoice_id``,
    ``model_version`` and ``model_run_id`` (the row's, else lineage's), ``flow_run_id`` and the other keys of
    :data:`LINEAGE_CUSTOM_ARGS` found in ``lineage`` (either spelling). Other lineage keys are ignored on
    purpose: custom args are size-limited and must stay free of personal data.
    """
    recipient = str(_field(reminder_row, "recipient") or "").strip()
    if "@" not in recipient:
        raise ValueError(f"reminder {reminder_row.get('reminder_key')} has no email recipient")
    tone = str(reminder_row["tone"])
    invoice = str(reminder_row["invoice_id"])
    name = str(_field(reminder_row, "customer_name") or "").strip()
    subject, text = reminder_text(reminder_row, sender_name=sender_name)

    mail = Mail(from_email=From(sender_email, sender_name), to_emails=To(recipient, name or None))
    mail.subject = Subject(subject)
    mail.content = [Content(MimeType.text, text), Content(MimeType.html, _html(text))]

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
    mail.custom_arg = [CustomArg(k, v, p=0) for k, v in args.items()]
    mail.category = [Category("relance"), Category(tone)]
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

    def send(self, message: Mail, reminder_key: str) -> SendResult:
        """POST /v3/mail/send; 2xx -> the ``X-Message-ID`` header, anything else -> :class:`DeliveryError`."""
        try:
            response = self._client.send(message)
        except HTTPError as exc:
            status = int(exc.status_code)
            body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else str(exc.body or "")
            raise DeliveryError(
                f"SendGrid refused reminder {reminder_key}: HTTP {status} {body[:500]}",
                status=status,
                body=body,
                retryable=status == 429 or status >= 500,
            ) from None
        except urllib.error.URLError as exc:
            # Refused/unresolvable: the request never left, so a retry cannot duplicate the message.
            raise DeliveryError(
                f"SendGrid unreachable for reminder {reminder_key}: {exc.reason}", retryable=True
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            # The request may have been received: resending could email the customer twice.
            raise DeliveryError(
                f"no answer from SendGrid for reminder {reminder_key}: {exc!r}",
                retryable=True,
                ambiguous=True,
            ) from None
        if not 200 <= response.status_code < 300:
            raise DeliveryError(
                f"unexpected SendGrid status {response.status_code} for reminder {reminder_key}",
                status=response.status_code,
                body=response.body.decode("utf-8", "replace") if response.body else "",
            )
        message_id = response.headers.get("X-Message-ID")
        if not message_id:
            log.warning("SendGrid accepted reminder %s without an X-Message-ID header", reminder_key)
        return SendResult(provider_message_id=message_id or None, outbox_path=None)


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
