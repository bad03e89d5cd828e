"""Paper letters and call tasks: channels with no API, handed to humans through files in the outbox.

Letters are written as self-contained HTML (print to PDF from any browser): no PDF library (reportlab, fpdf)
is among the project's dependencies, and adding one for a print layout is not worth a new dependency yet.
The planned row carries no postal address (``serving.collection_worklist`` has none), so the letter is
addressed to the customer's name and the mail room completes the address from the customer master; the
letter says so in a visible placeholder.

Call tasks are appended to one CSV call list per as-of date, keyed by ``reminder_key`` so that a rerun never
adds a duplicate line for a negotiator to dial twice. Each line says why the invoice is on it: the probability of
being late (``p_late``), the customer's risk grade of the day, the predicted payment date with its p10..p90 range
and the three reasons towards late (blank when the model gives none). A list written by an earlier version with
fewer columns is rewritten with today's header before a line is appended, its lines kept.

The list is opened in a spreadsheet, so its cells are written by :mod:`relance.tabular_output`: a customer name
(or a reason) that starts like a formula is written as text with a leading apostrophe, and so is the E.164 phone
(``'+33199001234``: its ``+`` and every digit kept, never read as a number);
:func:`relance.tabular_output.read_csv_records` reads the list back with the original values.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from relance.channels.email import SendResult, format_amount, format_date, reminder_text
from relance.files import write_text_atomic
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
)
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


class LetterOutbox:
    """Writes ``<outbox_dir>/letter/<reminder_key>.html``, one printable letter per reminder."""

    channel = "letter"

    def __init__(self, outbox_dir: Path, *, sender_name: str, as_of_date: date | None = None):
        self.directory = Path(outbox_dir) / "letter"
        self.sender_name = sender_name
        self.as_of_date = as_of_date

    def render(self, row: Mapping[str, Any]) -> str:
        """The letter as one HTML page: sender, addressee, date, subject, the same words as the email."""
        subject, text = reminder_text(row, sender_name=self.sender_name)
        letter_date = format_date(_value(row, "as_of_date") or self.as_of_date) or ""
        addressee = html.escape(str(_value(row, "recipient") or _value(row, "customer_name") or ""))
        customer = html.escape(str(_value(row, "customer_id") or ""))
        invoice = html.escape(str(row["invoice_id"]))
        amount = html.escape(format_amount(row["open_amount"], str(row["currency"])))
        ref = html.escape(str(row["reminder_key"])[:12])
        paragraphs = "\n".join(f"<p>{html.escape(block).replace(chr(10), '<br>')}</p>" for block in text.split("\n\n"))
        return f"""<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>{html.escape(subject)}</title>
<style>
body {{ font-family: Georgia, serif; max-width: 17cm; margin: 2cm auto; line-height: 1.5; }}
.sender {{ font-weight: bold; }} .addressee {{ margin: 2em 0 2em 9cm; }}
.placeholder {{ color: #a00; font-style: italic; }} .ref {{ color: #555; font-size: 0.9em; }}
</style></head>
<body>
<div class="sender">{html.escape(self.sender_name)}</div>
<div class="addressee">{addressee}<br>
<span class="placeholder">[adresse postale : fiche client {customer}]</span>
</div>
<p>Le {html.escape(letter_date)}</p>
<p><strong>Objet : {html.escape(subject)}</strong><br>
<span class="ref">Facture {invoice} &middot; restant dû {amount} &middot; réf. {ref}</span></p>
{paragraphs}
</body></html>
"""

    def send(self, message: Mapping[str, Any], reminder_key: str) -> SendResult:
        path = self.directory / f"{reminder_key}.html"
        write_text_atomic(path, self.render(message))
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
