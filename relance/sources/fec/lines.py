"""FEC lines: the records of a file, their fields, and one customer (411) line parsed into what it says.

Any line end (LF, CRLF, CR, CR CR LF) ends a record; blank records are skipped and line numbers count records
as they appear in the file (header = line 1). Fields are trimmed; a trailing separator is tolerated, any other
field-count mismatch is the caller's reject. A customer line whose date or amount does not parse becomes a
:class:`~relance.sources.base.Reject` naming the line and the column; lines of other accounts give ``None``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from relance.sources.amounts import parse_amount
from relance.sources.base import Reject
from relance.sources.fec.journals import is_opening_journal, is_sales_journal
from relance.sources.fec.layout import FecLayout

BOOK_CURRENCY = "EUR"
_LINE_END = re.compile(r"\r*\n|\r+")


@dataclass
class CustomerLine:
    """One parsed customer line (net of debit and credit)."""

    line_no: int
    customer_id: str
    customer_name: str
    journal: str
    entry_num: str
    entry_date: date
    doc_date: date  # PieceDate when usable, else EcritureDate
    due_date: date | None  # DateRglt when present
    piece_ref: str
    label: str
    account: str
    aux_account: str
    debit: Decimal
    credit: Decimal
    net: Decimal  # debit - credit, in the book currency
    amount: Decimal  # |net| in `currency`
    currency: str
    lettering: str
    is_credit_note: bool = False
    is_opening: bool = False  # opening-balance journal: an item carried from an earlier year
    identity: str = ""  # deterministic id, set later
    parts: list[tuple[str | None, Decimal]] = field(default_factory=list)  # credits: (invoice_id, amount)

    @property
    def is_debit(self) -> bool:
        """A net debit: an invoice (or an open item carried forward)."""
        return self.net > 0

    @property
    def payment_date(self) -> date:
        """Payment date: EcritureDate; for an item carried in an opening journal, its original PieceDate."""
        return self.doc_date if self.is_opening else self.entry_date

    @property
    def credit_date(self) -> date:
        """When a credit took effect: a credit note's document date, a payment's booking date."""
        return self.doc_date if self.is_credit_note else self.payment_date


def parse_date(text: str) -> date:
    """An FEC date (``YYYYMMDD``; also ``YYYY-MM-DD`` and ``DD/MM/YYYY``). ``ValueError`` otherwise."""
    s = text.strip()
    try:
        if len(s) == 8 and s.isdigit():
            return date(int(s[:4]), int(s[4:6]), int(s[6:]))
        if len(s) == 10 and s[4] == "-" and s[7] == "-":
            return date.fromisoformat(s)
        if len(s) == 10 and s[2] == "/" and s[5] == "/":
            return date(int(s[6:]), int(s[3:5]), int(s[:2]))
    except ValueError as exc:
        raise ValueError(f"{s!r} is not a valid date: {exc}") from exc
    raise ValueError(f"{s!r} is not a date (expected YYYYMMDD)")


class LineTooLong(ValueError):
    """A record longer than the line cap: the file is not a line-oriented ledger."""

    def __init__(self, line: int, length: int, cap: int) -> None:
        super().__init__(f"line {line} is longer than {cap:,} characters ({length:,} so far)")
        self.line, self.length, self.cap = line, length, cap


def iter_records(chunks: Iterable[str], max_line_chars: int | None = None) -> Iterator[tuple[int, str]]:
    """(line number, text) of every non-blank record of a text given in chunks, header included; any line end.

    Streaming: only the current, unfinished record is held between chunks. Trailing CRs of a chunk wait for the
    next one (``CR CR | LF`` is one line end, as in the whole text). :class:`LineTooLong` past ``max_line_chars``.
    """
    n, tail = 0, ""
    for chunk in chunks:
        buf = tail + chunk
        body = buf.rstrip("\r")
        pieces = _LINE_END.split(body)
        tail = pieces.pop() + buf[len(body) :]
        for rec in pieces:
            n += 1
            if max_line_chars is not None and len(rec) > max_line_chars:
                raise LineTooLong(n, len(rec), max_line_chars)
            if rec.strip():
                yield n, rec
        if max_line_chars is not None and len(tail) > max_line_chars:
            raise LineTooLong(n + 1, len(tail), max_line_chars)
    for rec in _LINE_END.split(tail):
        n += 1
        if rec.strip():
            yield n, rec


def records(text: str) -> list[tuple[int, str]]:
    """(line number, text) of every non-blank record, header included; any line-end style."""
    return list(iter_records([text]))


def split_fields(record: str, layout: FecLayout) -> list[str] | None:
    """The trimmed fields of a record, or ``None`` when the field count does not match the header."""
    fields = record.split(layout.separator)
    n = len(layout.columns)
    if len(fields) > n and not any(f.strip() for f in fields[n:]):
        fields = fields[:n]  # trailing separator(s)
    if len(fields) != n:
        return None
    return [f.strip().strip('"').strip() if f.startswith('"') else f.strip() for f in fields]


def _net_amounts(get: dict[str, str], layout: FecLayout) -> tuple[Decimal, Decimal]:
    """(debit, credit) of a line, from Debit/Credit or the Montant/Sens variant."""
    if layout.index("Debit") is not None and layout.index("Credit") is not None:
        return parse_amount(get["Debit"]), parse_amount(get["Credit"])
    amount = parse_amount(get["Montant"])
    sens = get["Sens"].strip().upper()
    if sens in ("D", "+1", "1", "+"):
        return amount, Decimal("0.00")
    if sens in ("C", "-1", "-"):
        return Decimal("0.00"), amount
    raise ValueError(f"Sens {get['Sens']!r} is not D/C or +1/-1")


def _reject_entity(get: dict[str, str]) -> str:
    """Best guess of the entity a broken customer line was meant to become (for quarantine counts)."""
    credit = get.get("Credit", "").strip().lstrip("+0,.")
    debit = get.get("Debit", "").strip().lstrip("+0,.")
    if credit and not debit and not is_sales_journal(get.get("JournalCode", ""), get.get("JournalLib", "")):
        return "payments"
    return "invoices"


def parse_line(
    line_no: int, fields: list[str], layout: FecLayout, customer_accounts: str
) -> CustomerLine | Reject | None:
    """A customer line, a Reject for a customer line that does not parse, or None for other accounts."""
    get = dict(zip(layout.columns, fields, strict=True))
    account = get["CompteNum"]
    if not account.startswith(customer_accounts):
        return None
    aux = get["CompAuxNum"]
    customer_id = aux or account
    customer_name = (get["CompAuxLib"] if aux else get["CompteLib"]) or customer_id
    raw = {"line": line_no, **get}
    try:
        entry_date = parse_date(get["EcritureDate"])
    except ValueError as exc:
        return Reject(_reject_entity(get), line_no, f"EcritureDate: {exc}", raw)
    try:
        debit, credit = _net_amounts(get, layout)
    except ValueError as exc:
        return Reject(_reject_entity(get), line_no, f"Debit/Credit: {exc}", raw)
    doc_date = entry_date
    if get["PieceDate"]:
        try:
            piece_date = parse_date(get["PieceDate"])
        except ValueError:
            piece_date = None
        if piece_date is not None and piece_date <= entry_date:
            doc_date = piece_date
    due: date | None = None
    if get.get("DateRglt"):
        try:
            due = parse_date(get["DateRglt"])
        except ValueError:
            due = None
    net = debit - credit
    amount, currency = abs(net), BOOK_CURRENCY
    foreign = get["Idevise"].strip().upper()
    if foreign and foreign != BOOK_CURRENCY and get["Montantdevise"]:
        try:
            foreign_amount = abs(parse_amount(get["Montantdevise"]))
        except ValueError as exc:
            return Reject(_reject_entity(get), line_no, f"Montantdevise: {exc}", raw)
        if foreign_amount:
            amount, currency = foreign_amount, foreign
    return CustomerLine(
        line_no=line_no,
        customer_id=customer_id,
        customer_name=customer_name,
        journal=get["JournalCode"],
        entry_num=get["EcritureNum"],
        entry_date=entry_date,
        doc_date=doc_date,
        due_date=due,
        piece_ref=get["PieceRef"],
        label=get["EcritureLib"],
        account=account,
        aux_account=aux,
        debit=debit,
        credit=credit,
        net=net,
        amount=amount,
        currency=currency,
        lettering=get["EcritureLet"],
        is_credit_note=net < 0 and is_sales_journal(get["JournalCode"], get["JournalLib"]),
        is_opening=is_opening_journal(get["JournalCode"], get["JournalLib"]),
    )
