"""Paper letters and call tasks: channels with no API, handed to humans through files in the outbox.

Letters are PDF files, ``<outbox>/letter/<reminder_key>.pdf``, ready to print and post
(:func:`relance.channels.letters.render_letter_pdf`: the email's words, the customer's postal address from the
planned row, and for a formal notice to a business the L441-10 penalties and D441-5 indemnities computed per
invoice). A row without an address still gets its letter, with a visible "adresse postale manquante" warning for
the mail room. A letter that cannot be computed (an ECB rate older than the rate table) is a
:class:`~relance.channels.email.DeliveryError` that is not retried: nothing was written.

Call tasks are appended to one CSV call list per as-of date, keyed by ``reminder_key`` so that a rerun never
adds a duplicate line for a negotiator to dial twice. Each line says why the invoice is on it: the probability of
being late (``p_late``), the customer's risk grade of the day, the predicted payment date with its p10..p90 range
and the three reasons towards late (blank when the model gives none). A list written by an earlier version with
fewer columns is rewritten with today's header before a line is appended, its lines kept.

A line of the reminder engine is one customer, not one invoice: after the columns above (where ``invoice_id`` is
the lead invoice and ``open_amount`` the customer's total due) come :data:`CALL_CONTEXT_COLUMNS`: the scenario,
the call's priority, ``total_due``, ``invoice_count`` and ``invoices`` (one readable cell, ``F-0012 1 200,00 €
+45 j; F-0040 310,00 € +12 j``: number, amount open, days past due), the talking points, the window in which the
debtor may be called and the last contact (UTC, with its channel). A per-invoice line fills them from its one
invoice. A letter with several invoices carries the statement of account of the email.

The list is opened in a spreadsheet, so its cells are written by :mod:`relance.tabular_output`: a customer name
(or a reason) that starts like a formula is written as text with a leading apostrophe, and so is the E.164 phone
(``'+33199001234``: its ``+`` and every digit kept, never read as a number);
:func:`relance.tabular_output.read_csv_records` reads the list back with the original values.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from relance.channels.email import DeliveryError, SendResult, format_amount, parse_statement
from relance.channels.letters import EcbRateError, EcbRates, render_letter_pdf
from relance.files import write_bytes_atomic, write_text_atomic
from relance.tabular_output import csv_rows, read_csv_records

log = logging.getLogger(__name__)

CALL_LIST_COLUMNS: tuple[str, ...] = (
    "reminder_key",
    "as_of_date",
    "invoice_id",
    "customer_id",
    "customer_name",
    "phone",
    "open_amount",
    "currency",
    "due_date",
    "days_overdue",
    "p_late",
    "risk_grade",
    "predicted_payment_date",
    "predicted_payment_date_p10",
    "predicted_payment_date_p90",
    "reason_1",
    "reason_2",
    "reason_3",
    "step",
    "tone",
    "scenario",
    "priority",
    "total_due",
    "invoice_count",
    "invoices",
    "talking_points",
    "call_window",
    "last_contact",
)
#: The columns added for the reminder engine's one-line-per-customer calls (see the module docstring); they come
#: last so that the columns of a per-invoice list keep their place.
CALL_CONTEXT_COLUMNS: tuple[str, ...] = CALL_LIST_COLUMNS[CALL_LIST_COLUMNS.index("scenario") :]
#: Date columns of the call list, written as ISO dates (whatever date flavour the plan holds).
_DATE_COLUMNS: tuple[str, ...] = (
    "due_date",
    "predicted_payment_date",
    "predicted_payment_date_p10",
    "predicted_payment_date_p90",
)


def _value(row: Mapping[str, Any], name: str) -> Any:
    value = row.get(name)
    try:
        return None if value is None or pd.isna(value) else value
    except (ValueError, TypeError):
        return value


def _readable(value: Any, separator: str = " | ") -> str | None:
    """One cell for a list-like value (a list, or JSON list text): its items joined; other values as text."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                return text
        else:
            return text or None
    if isinstance(value, list | tuple):
        items = [str(v).strip() for v in value if v is not None and str(v).strip()]
        return separator.join(items) or None
    return str(value)


def _invoices_cell(lines: list[tuple[str, float, Any]], currency: str) -> str:
    """``F-0012 1 200,00 € +45 j; F-0040 310,00 € +12 j``: number, amount open, days past due (when known)."""
    cells = []
    for invoice_id, open_amount, days in lines:
        cell = f"{invoice_id} {format_amount(open_amount, currency)}"
        if days is not None:
            cell += f" {int(days):+d} j"
        cells.append(cell)
    return "; ".join(cells)


def _last_contact(row: Mapping[str, Any]) -> str | None:
    """``2026-03-20 14:05 UTC (email)`` from ``last_contact_at`` (a UTC timestamp) and ``last_contact_channel``."""
    at = _value(row, "last_contact_at")
    if at is None:
        return None
    moment = pd.Timestamp(at)
    moment = moment.tz_convert("UTC") if moment.tzinfo is not None else moment
    channel = _value(row, "last_contact_channel")
    return f"{moment:%Y-%m-%d %H:%M} UTC" + (f" ({channel})" if channel else "")


def call_context(row: Mapping[str, Any]) -> dict[str, Any]:
    """The :data:`CALL_CONTEXT_COLUMNS` cells of one planned call (see the module docstring)."""
    currency = str(_value(row, "currency") or "")
    statement = parse_statement(_value(row, "statement"))
    if statement:
        lines = [(s.invoice_id, s.open_amount, s.days_overdue) for s in statement]
    elif _value(row, "open_amount") is not None:
        lines = [(str(row["invoice_id"]), float(row["open_amount"]), _value(row, "days_overdue"))]
    else:
        lines = []
    ids = _value(row, "invoice_ids")
    if isinstance(ids, str):
        ids = json.loads(ids) if ids.strip().startswith("[") else [ids]
    ids = [] if ids is None else list(ids)
    count = len(statement) if statement else len(ids) if ids else len(lines) or None
    return {
        "scenario": _value(row, "scenario"),
        "priority": _value(row, "priority"),
        # the statement's own total when there is one: the figure the debtor's email and letter show
        "total_due": round(sum(amount for _, amount, _ in lines), 2) if statement else _value(row, "open_amount"),
        "invoice_count": count,
        "invoices": _invoices_cell(lines, currency) if lines else None,
        "talking_points": _readable(_value(row, "talking_points")),
        "call_window": _readable(_value(row, "call_window"), " / "),
        "last_contact": _last_contact(row),
    }


class LetterOutbox:
    """Writes ``<outbox_dir>/letter/<reminder_key>.pdf``, one printable letter per reminder (written atomically:
    a crash never leaves half a PDF for the mail room).

    ``sender_address``: the creditor's postal address, one line per line. ``ecb_rates`` (default the shipped
    table), ``margin_points`` (setting ``late_penalty_margin_points``) and ``indemnity_eur`` (setting
    ``recovery_indemnity_eur``): the figures of a formal notice to a business. ``as_of_date``: the letters' date
    when a row has none.
    """

    channel = "letter"

    def __init__(
        self,
        outbox_dir: Path,
        *,
        sender_name: str,
        as_of_date: date | None = None,
        sender_address: str = "",
        ecb_rates: EcbRates | None = None,
        margin_points: float = 10.0,
        indemnity_eur: float = 40.0,
    ):
        self.directory = Path(outbox_dir) / "letter"
        self.sender_name = sender_name
        self.sender_address = sender_address
        self.as_of_date = as_of_date
        self.ecb_rates = ecb_rates
        self.margin_points = margin_points
        self.indemnity_eur = indemnity_eur

    def render(self, row: Mapping[str, Any]) -> bytes:
        """The letter of one planned row, as PDF bytes (dated the row's ``as_of_date``, else this outbox's)."""
        day = _value(row, "as_of_date")
        return render_letter_pdf(
            row,
            sender_name=self.sender_name,
            sender_address=self.sender_address,
            as_of_date=pd.Timestamp(day).date() if day is not None else self.as_of_date,
            ecb_rates=self.ecb_rates,
            margin_points=self.margin_points,
            indemnity_eur=self.indemnity_eur,
        )

    def send(self, message: Mapping[str, Any], reminder_key: str) -> SendResult:
        try:
            pdf = self.render(message)
        except EcbRateError as exc:
            raise DeliveryError(f"letter {reminder_key} not written: {exc}", retryable=False) from None
        path = self.directory / f"{reminder_key}.pdf"
        write_bytes_atomic(path, pdf)
        return SendResult(provider_message_id=None, outbox_path=path)


class CallListOutbox:
    """Appends call tasks to ``<outbox_dir>/calls/<as_of_date>.csv``; a key already listed is not added again.

    One line is appended with a single ``write`` on a file opened in append mode, so concurrent readers see
    whole lines; the keys already in the file are read once per instance.
    """

    channel = "call"

    def __init__(self, outbox_dir: Path, as_of_date: date):
        self.path = Path(outbox_dir) / "calls" / f"{as_of_date.isoformat()}.csv"
        self.as_of_date = as_of_date
        self._keys: set[str] | None = None

    def _known_keys(self) -> set[str]:
        if self._keys is None:
            self._keys = set()
            if self.path.exists():
                records = read_csv_records(self.path)
                self._keys = {r["reminder_key"] for r in records if r.get("reminder_key")}
                if records and tuple(records[0]) != CALL_LIST_COLUMNS:  # written by an earlier version
                    write_text_atomic(self.path, csv_rows(records, CALL_LIST_COLUMNS, header=True))
                    log.info("call list %s rewritten with the columns %s", self.path.name, CALL_LIST_COLUMNS)
        return self._keys

    def send(self, message: Mapping[str, Any], reminder_key: str) -> SendResult:
        keys = self._known_keys()
        if reminder_key in keys:
            log.info("call task %s already on %s", reminder_key, self.path.name)
            return SendResult(provider_message_id=None, outbox_path=self.path)
        record = {c: _value(message, c) for c in CALL_LIST_COLUMNS}
        record.update(call_context(message))
        record["reminder_key"] = reminder_key
        record["phone"] = _value(message, "phone") or _value(message, "recipient")
        record["as_of_date"] = (_value(message, "as_of_date") and str(message["as_of_date"])[:10]) or str(
            self.as_of_date
        )
        for column in _DATE_COLUMNS:
            day = _value(message, column)
            record[column] = pd.Timestamp(day).date().isoformat() if day is not None else None
        new_file = not self.path.exists() or self.path.stat().st_size == 0
        lines = csv_rows([record], CALL_LIST_COLUMNS, header=new_file)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, lines.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        keys.add(reminder_key)
        return SendResult(provider_message_id=None, outbox_path=self.path)
