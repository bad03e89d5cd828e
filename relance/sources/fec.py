"""Read a French FEC (Fichier des Écritures Comptables) into the canonical raw entities.

The FEC is the legal general-ledger export (article A.47 A-1 of the Livre des procédures fiscales): one line
per accounting line, 18 columns (JournalCode, JournalLib, EcritureNum, EcritureDate, CompteNum, CompteLib,
CompAuxNum, CompAuxLib, PieceRef, PieceDate, EcritureLib, Debit, Credit, EcritureLet, DateLet, ValidDate,
Montantdevise, Idevise). Every accounting package can write it, which makes it the one receivables source
every French company has. It holds no customer master data, no due dates and no payment allocations as
such: this module derives them, as documented below.

Reading what real exporters write
---------------------------------
* Encoding: UTF-8 (with or without BOM) is tried first; a file that is not valid UTF-8 is decoded as CP1252,
  and if that fails (bytes CP1252 leaves undefined) as ISO-8859-15, which maps every byte. No file crashes
  the reader and no accented letter turns into an error.
* Separator: tab, pipe (or semicolon) is detected from the header line: the one that yields the FEC columns.
  Header names are matched case-insensitively (``CompteLIB``, ``MontantDevise``); extra columns (DateRglt,
  ModeRglt, NatOp, IdClient...) are kept available and otherwise ignored. The variant layout with
  ``Montant`` + ``Sens`` instead of ``Debit`` + ``Credit`` is accepted.
* Line ends: LF, CRLF, CR and CR CR LF all end one record. Blank lines are skipped. Line numbers in
  rejects count records the way they appear in the file, header = line 1.
* Fields are trimmed (fixed-width exporters pad with spaces) and a trailing separator (one extra empty
  field on every line) is tolerated; any other field-count mismatch is a :class:`~relance.sources.base.Reject`.
* Amounts: decimal comma or point, optional sign, zero padding (``+000001107,13``, ``0000000069,60``),
  whole numbers (``2592``), thousands separators; parsed to :class:`~decimal.Decimal` (exact cents, never
  float). Dates: ``YYYYMMDD`` (also ``YYYY-MM-DD`` and ``DD/MM/YYYY``).
* A file whose header lacks mandatory FEC columns raises :class:`~relance.sources.base.SourceError` naming
  them. A customer line whose date or amount does not parse becomes a ``Reject`` (line number and reason);
  lines of other accounts are not inspected beyond the field count.

Derivation
----------
* Customer lines are the lines whose ``CompteNum`` starts with ``customer_accounts`` (``411``). Other lines
  (revenue, VAT, bank...) are read but produce nothing.
* Customer: ``CompAuxNum``/``CompAuxLib`` when ``CompAuxNum`` is filled (auxiliary ledger under a collective
  411 account), otherwise the 411 sub-account itself, ``CompteNum``/``CompteLib`` (one 411 account per
  customer). Its name is the most frequent label on its lines. Nothing else is known (nulls).
* Each customer line is netted (``Debit - Credit``); zero lines are skipped. A net debit is an invoice (in an
  opening-balance journal: an open item carried from an earlier year). A net credit is a credit note
  (``document_type = 'credit_note'``, negative amount) when the journal is a sales journal (code V, VE, VT,
  VEN, VTE or a label containing "vente"), otherwise part of a payment.
* Payment: the credit lines of one customer in one accounting entry (same journal, ``EcritureNum``,
  ``EcritureDate`` and ``PieceRef``) are one payment (a receipt split per invoice is one payment, not
  several; where an exporter writes ``EcritureNum`` 0 everywhere, same-day lines of one ``PieceRef`` merge).
  ``payment_date`` is the entry's ``EcritureDate``, the day the money was booked as received; ``DateLet`` is
  when the accountant matched it and is not used. Payment method is unknown (null).
* Lettering: the lines of one customer with the same ``EcritureLet`` (trimmed, non-empty, case-sensitive:
  Sage writes lower case for partial lettering) are matched. In each group the credits (payments and
  credit notes, oldest first) are allocated to the debits (invoices, oldest first) until one side runs out:
  a group that does not balance (partial lettering) leaves the remainder of its invoices open, or the
  remainder of its credits unallocated. A payment yields one ``payment_allocations`` row per invoice it
  pays. A credit note is a row of ``invoices`` that credits exactly one invoice (``credited_invoice_id``);
  when lettering spreads it over several invoices, or part of it stays unallocated, it is written as one
  row per part: the first keeps the credit note's id, the others get ``~2``, ``~3``... (the amounts sum to
  the credit note). Unlettered credits stay unallocated (money on account).
  Hence, for every customer: open invoices - unallocated credits = sum of debits - sum of credits on its
  411 lines (its ledger balance), to the cent.
* Dates: ``issue_date`` is ``PieceDate`` (the document's date) when it is a valid date not after
  ``EcritureDate``, otherwise ``EcritureDate``. In opening-balance journals (AN, ANO, RAN, or a label with
  "nouveau"/"ouverture") ``PieceDate`` keeps the original date of the carried item, which is what aging
  needs; the same rule gives such a carried credit its original ``payment_date``. The FEC has no due date:
  ``due_date`` is the extra column ``DateRglt`` when present, valid and not before ``issue_date``, else ``issue_date +
  default_terms_days`` (30); ``payment_terms_days`` is ``due_date - issue_date``.
* Currency: EUR (the book currency of ``Debit``/``Credit``), unless ``Idevise`` names another currency and
  ``Montantdevise`` holds an amount: then the amount is ``|Montantdevise|`` in ``Idevise``.
* Ids are deterministic and survive a re-export of the same books with more lines (they never use the line
  number). A document (invoice or credit note) uses its trimmed ``PieceRef`` when that reference is carried
  by exactly one document line of the file (software that numbers invoices, like relance's own
  ``write_fec``, round-trips its ids); otherwise ``FEC-`` + 16 hex digits of a sha1 over (journal code,
  ``EcritureNum``, ``EcritureDate``, ``PieceRef``, account, auxiliary account, ``EcritureLib``, debit,
  credit, rank among identical lines). Lettering and validation columns are deliberately not part of the
  hash, so lettering an old line later does not change its id. Payments likewise use ``PieceRef`` when it
  names exactly one payment of the file, else ``FEC-P`` + a hash of (customer, journal, ``EcritureNum``,
  ``EcritureDate``, ``PieceRef``). Limit: a ``PieceRef`` unique in one export but repeated in a later one
  switches that document to its hash id (the loader then sees a new document).
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pyarrow as pa

from relance.sources.base import EntityExtract, Reject, SourceError

log = logging.getLogger(__name__)

# The 18 columns of the legal layout, canonical spelling.
FEC_COLUMNS: tuple[str, ...] = (
    "JournalCode",
    "JournalLib",
    "EcritureNum",
    "EcritureDate",
    "CompteNum",
    "CompteLib",
    "CompAuxNum",
    "CompAuxLib",
    "PieceRef",
    "PieceDate",
    "EcritureLib",
    "Debit",
    "Credit",
    "EcritureLet",
    "DateLet",
    "ValidDate",
    "Montantdevise",
    "Idevise",
)
# The variant layout (A.47 A-1, II) writes one signed amount column and its direction instead.
AMOUNT_VARIANT: tuple[str, ...] = ("Montant", "Sens")
SEPARATORS: tuple[str, ...] = ("\t", "|", ";")
ENCODINGS: tuple[str, ...] = ("utf-8-sig", "cp1252", "iso-8859-15")
DEFAULT_TERMS_DAYS = 30
BOOK_CURRENCY = "EUR"
CENT = Decimal("0.01")

SALES_JOURNAL_CODES = frozenset({"V", "VE", "VT", "VEN", "VTE", "VENTE", "VENTES"})
OPENING_JOURNAL_CODES = frozenset({"AN", "ANO", "RAN"})

_LINE_END = re.compile(r"\r*\n|\r+")
_AMOUNT = re.compile(r"^[+-]?\d+(?:[.,]\d+)?$")
_KNOWN_EXTRA = ("DateRglt", "ModeRglt", "NatOp", "IdClient", "Montant", "Sens")
_CANONICAL = {name.lower(): name for name in (*FEC_COLUMNS, *_KNOWN_EXTRA)}


# ---------------------------------------------------------------------------------------------------------
# layout detection and low-level parsing
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FecLayout:
    """How one FEC file is written: what :func:`detect_layout` found, kept so errors and logs can say it."""

    encoding: str  # the Python codec that decoded the file ('utf-8-sig', 'cp1252' or 'iso-8859-15')
    separator: str  # '\t', '|' or ';'
    columns: tuple[str, ...]  # header names as canonical FEC spelling when known, else as written
    trailing_separator: bool  # the header ends with a separator (every line then has one empty extra field)
    has_bom: bool

    def index(self, column: str) -> int | None:
        """Position of a canonical column, or ``None`` when the file does not have it."""
        try:
            return self.columns.index(column)
        except ValueError:
            return None

    @property
    def separator_name(self) -> str:
        """Human name of the separator, for messages."""
        return {"\t": "tab", "|": "pipe", ";": "semicolon"}.get(self.separator, repr(self.separator))


def decode_fec(data: bytes) -> tuple[str, str]:
    """Decode FEC bytes: UTF-8 (BOM or not) first, then CP1252, then ISO-8859-15 (which never fails).

    Why this order: a CP1252 file almost never happens to be valid UTF-8, while any byte string is valid
    single-byte text, so trying UTF-8 first is what tells them apart.
    """
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise AssertionError("iso-8859-15 decodes every byte")  # pragma: no cover


def _canonical(name: str) -> str:
    """Canonical spelling of a header name (case, padding and quotes ignored); unknown names kept as written."""
    clean = name.strip().strip('"').strip()
    return _CANONICAL.get(clean.lower(), clean)


def _missing_columns(columns: tuple[str, ...]) -> list[str]:
    """Mandatory FEC columns absent from a header (Debit/Credit may be replaced by Montant/Sens)."""
    present = set(columns)
    missing = [c for c in FEC_COLUMNS if c not in present]
    if {"Debit", "Credit"} & set(missing) and all(c in present for c in AMOUNT_VARIANT):
        missing = [c for c in missing if c not in ("Debit", "Credit")]
    return missing


def detect_layout(header_line: str, *, encoding: str, has_bom: bool, source: str = "FEC file") -> FecLayout:
    """Find the separator and columns from the header line; :class:`SourceError` if it is not an FEC header.

    The separator is the candidate whose split yields the fewest missing mandatory columns (ties: the most
    fields), so a pipe inside a label of a tab file cannot fool it.
    """
    best: tuple[tuple[int, int], str, tuple[str, ...]] | None = None
    for sep in SEPARATORS:
        names = [_canonical(n) for n in header_line.split(sep)]
        columns = tuple(names)
        score = (len(_missing_columns(columns)), -len(names))
        if best is None or score < best[0]:
            best = (score, sep, columns)
    assert best is not None
    _, sep, columns = best
    trailing = len(columns) > 1 and columns[-1] == ""
    if trailing:
        columns = columns[:-1]
    missing = _missing_columns(columns)
    if missing:
        raise SourceError(
            f"{source}: not an FEC file: header line 1 lacks mandatory column(s) {', '.join(missing)} "
            f"(best separator guess: {'tab' if sep == chr(9) else repr(sep)}; header read: "
            f"{header_line[:200]!r})"
        )
    dupes = sorted({c for c in columns if c and columns.count(c) > 1})
    if dupes:
        raise SourceError(f"{source}: header line 1 repeats column(s) {', '.join(dupes)}")
    return FecLayout(encoding, sep, columns, trailing, has_bom)


def parse_amount(text: str) -> Decimal:
    """An FEC amount as exact Decimal cents; empty means zero. ``ValueError`` when it is not an amount.

    Accepts what exporters write: ``1234,56``, ``1234.56``, ``+000001107,13``, ``-12``, ``1 234,56``,
    ``1.234,56``; more than two decimals is refused rather than silently rounded.
    """
    s = text.strip().replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
    if not s:
        return Decimal("0.00")
    if "," in s and "." in s:  # the last one is the decimal mark, the other groups thousands
        thousands = "." if s.rfind(",") > s.rfind(".") else ","
        s = s.replace(thousands, "")
    if not _AMOUNT.match(s):
        raise ValueError(f"{text.strip()!r} is not an amount (expected digits with a decimal comma)")
    try:
        value = Decimal(s.replace(",", "."))
    except InvalidOperation as exc:  # pragma: no cover - the regex already guards this
        raise ValueError(f"{text.strip()!r} is not an amount") from exc
    if value != value.quantize(CENT):
        raise ValueError(f"{text.strip()!r} has more than two decimals")
    return value.quantize(CENT)


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


def _fold(text: str) -> str:
    """Upper case without accents, for matching journal labels."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).upper()


def is_sales_journal(code: str, label: str) -> bool:
    """A sales journal, where a credit on a customer line is a credit note rather than a payment."""
    return code.strip().upper() in SALES_JOURNAL_CODES or "VENTE" in _fold(label)


def is_opening_journal(code: str, label: str) -> bool:
    """An opening-balance journal (à-nouveaux), whose lines carry items from earlier years."""
    folded = _fold(label)
    return code.strip().upper() in OPENING_JOURNAL_CODES or "NOUVEAU" in folded or "OUVERTURE" in folded


# ---------------------------------------------------------------------------------------------------------
# customer lines
# ---------------------------------------------------------------------------------------------------------
@dataclass
class _Line:
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


def _identity_hash(*parts: object) -> str:
    """16 hex digits of sha1 over the parts, joined unambiguously."""
    return hashlib.sha1("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()[:16]


def _records(text: str) -> list[tuple[int, str]]:
    """(line number, text) of every non-blank record, header included; any line-end style."""
    return [(n, rec) for n, rec in enumerate(_LINE_END.split(text), start=1) if rec.strip()]


def _split(record: str, layout: FecLayout) -> list[str] | None:
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


def _parse_line(line_no: int, fields: list[str], layout: FecLayout, customer_accounts: str) -> _Line | Reject | None:
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
    return _Line(
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


# ---------------------------------------------------------------------------------------------------------
# derivation
# ---------------------------------------------------------------------------------------------------------
def _assign_document_ids(docs: list[_Line]) -> None:
    """Invoice / credit-note ids: PieceRef when unique among document lines, else a content hash."""
    ref_counts = Counter(d.piece_ref for d in docs if d.piece_ref)
    seen: Counter[tuple[object, ...]] = Counter()
    for d in docs:
        if d.piece_ref and ref_counts[d.piece_ref] == 1:
            d.identity = d.piece_ref
            continue
        key = (
            d.journal.upper(),
            d.entry_num,
            d.entry_date.isoformat(),
            d.piece_ref,
            d.account,
            d.aux_account,
            d.label,
            d.debit,
            d.credit,
        )
        seen[key] += 1
        d.identity = "FEC-" + _identity_hash(*key, seen[key])


def _payment_key(line: _Line) -> tuple[str, str, str, str, str]:
    """Lines of one customer in one accounting entry form one payment (carried items: one per original date)."""
    return (line.customer_id, line.journal.upper(), line.entry_num, _payment_date(line).isoformat(), line.piece_ref)


def _allocate(group: list[_Line]) -> None:
    """Allocate a lettering group's credits to its debits, oldest first, into each credit's ``parts``."""
    debits = sorted((ln for ln in group if ln.is_debit), key=lambda ln: (ln.doc_date, ln.line_no))
    credits = sorted((ln for ln in group if not ln.is_debit), key=lambda ln: (_credit_date(ln), ln.line_no))
    remaining = [d.amount for d in debits]
    i = 0
    for credit in credits:
        left = credit.amount
        while left > 0 and i < len(debits):
            if debits[i].currency != credit.currency:  # never net two currencies; leave it on account
                break
            take = min(left, remaining[i])
            credit.parts.append((debits[i].identity, take))
            left -= take
            remaining[i] -= take
            if remaining[i] == 0:
                i += 1
        if left > 0:
            credit.parts.append((None, left))


def _credit_date(line: _Line) -> date:
    """When a credit took effect: a credit note's document date, a payment's booking date (see module doc)."""
    return line.doc_date if line.is_credit_note else _payment_date(line)


def _payment_date(line: _Line) -> date:
    """Payment date: EcritureDate; for an item carried in an opening journal, its original PieceDate."""
    return line.doc_date if line.is_opening else line.entry_date


@dataclass(frozen=True)
class _FecParse:
    """What one read found, for the log line (the derived rows travel separately)."""

    layout: FecLayout
    lines_read: int  # data records (header excluded)
    customer_lines: int  # customer lines parsed (zero lines included, rejected lines excluded)
    rejects: list[Reject]


def read_fec(
    path: Path,
    *,
    customer_accounts: str = "411",
    default_terms_days: int = DEFAULT_TERMS_DAYS,
) -> list[EntityExtract]:
    """Read an FEC file into extracts of customers, invoices, payments and payment_allocations.

    Args:
        path: the FEC file (any of the encodings, separators and line ends described in the module doc).
        customer_accounts: account prefix of customer lines (``411``; ``41`` would include 416 doubtful
            debts and 419 advances).
        default_terms_days: payment terms used for the due date when the file has no ``DateRglt``.

    Returns:
        Four :class:`EntityExtract` (customers, invoices, payments, payment_allocations) sharing the file's
        path and sha256; rejects are attached to the entity each broken line was meant to become.

    Raises:
        SourceError: the file cannot be read, is empty, or its header lacks mandatory FEC columns.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{path}: cannot read FEC file: {exc}") from exc
    file_hash = hashlib.sha256(data).hexdigest()
    parsed, tables = _derive(data, str(path), customer_accounts, default_terms_days)
    source_file = str(path.resolve())
    by_entity: dict[str, list[Reject]] = defaultdict(list)
    for r in parsed.rejects:
        by_entity[r.entity].append(r)
    extracts = [
        EntityExtract(name, table, source_file, file_hash, rejects=by_entity.get(name, []))
        for name, table in tables.items()
    ]
    log.info(
        "%s: FEC %s/%s, %d lines, %d customer lines -> %s; %d rejected",
        path.name,
        parsed.layout.encoding,
        parsed.layout.separator_name,
        parsed.lines_read,
        parsed.customer_lines,
        ", ".join(f"{e.entity} {e.table.num_rows}" for e in extracts if isinstance(e.table, pa.Table)),
        len(parsed.rejects),
    )
    return extracts


def _derive(
    data: bytes, source: str, customer_accounts: str, default_terms_days: int
) -> tuple[_FecParse, dict[str, pa.Table]]:
    """Parse the bytes and derive the four entity tables (pure: no I/O)."""
    if not customer_accounts:
        raise ValueError("customer_accounts must be a non-empty account prefix such as '411'")
    text, encoding = decode_fec(data)
    if encoding != "utf-8-sig":
        log.info("%s: not valid UTF-8, decoded as %s", source, encoding)
    records = _records(text)
    if not records:
        raise SourceError(f"{source}: empty file, expected an FEC header line")
    _, header = records[0]
    layout = detect_layout(
        header.lstrip("\ufeff"), encoding=encoding, has_bom=data.startswith(b"\xef\xbb\xbf"), source=source
    )
    rejects: list[Reject] = []
    lines: list[_Line] = []
    for line_no, record in records[1:]:
        fields = _split(record, layout)
        if fields is None:
            n_fields = len(record.split(layout.separator))
            rejects.append(
                Reject(
                    "invoices",
                    line_no,
                    f"line has {n_fields} {layout.separator_name}-separated fields, header has {len(layout.columns)}",
                    {"line": line_no, "text": record[:1000]},
                )
            )
            continue
        parsed = _parse_line(line_no, fields, layout, customer_accounts)
        if isinstance(parsed, Reject):
            rejects.append(parsed)
        elif parsed is not None:
            lines.append(parsed)
    info = _FecParse(layout, len(records) - 1, len(lines), rejects)
    return info, _tables(lines, default_terms_days)


def _tables(all_lines: list[_Line], default_terms_days: int) -> dict[str, pa.Table]:
    """Customers, invoices, payments and allocations from parsed customer lines."""
    # customers: every account seen, zero lines included (an account with a nil balance is still a customer)
    names: dict[str, Counter[str]] = defaultdict(Counter)
    currencies: dict[str, Counter[str]] = defaultdict(Counter)
    for ln in all_lines:
        names[ln.customer_id][ln.customer_name] += 1
        currencies[ln.customer_id][ln.currency] += 1
    lines = [ln for ln in all_lines if ln.net != 0]

    docs = [ln for ln in lines if ln.is_debit or ln.is_credit_note]
    _assign_document_ids(docs)

    groups: dict[tuple[str, str], list[_Line]] = defaultdict(list)
    for ln in lines:
        if ln.lettering:
            groups[(ln.customer_id, ln.lettering)].append(ln)
    for group in groups.values():
        _allocate(group)
    for ln in lines:
        if not ln.is_debit and not ln.parts:
            ln.parts.append((None, ln.amount))  # unlettered credit: on account

    # invoices and credit notes
    inv: dict[str, list[object]] = defaultdict(list)

    def add_document(
        doc_id: str, ln: _Line, doc_type: str, credited: str | None, amount: Decimal, issue: date, due: date
    ) -> None:
        inv["invoice_id"].append(doc_id)
        inv["customer_id"].append(ln.customer_id)
        inv["document_type"].append(doc_type)
        inv["credited_invoice_id"].append(credited)
        inv["issue_date"].append(issue)
        inv["due_date"].append(due)
        inv["amount"].append(amount)
        inv["currency"].append(ln.currency)
        inv["payment_terms_days"].append((due - issue).days)
        inv["is_end_of_month_terms"].append(None)
        inv["_source_row"].append(ln.line_no)

    for ln in docs:
        issue = ln.doc_date
        if ln.is_debit:
            due = ln.due_date if ln.due_date and ln.due_date >= issue else issue + timedelta(days=default_terms_days)
            add_document(ln.identity, ln, "invoice", None, ln.amount, issue, due)
        else:
            for k, (credited, part) in enumerate(ln.parts, start=1):
                doc_id = ln.identity if k == 1 else f"{ln.identity}~{k}"
                add_document(doc_id, ln, "credit_note", credited, -part, issue, issue)

    # payments: credit lines of one entry and customer, allocations summed per (payment, invoice)
    pay_lines: dict[tuple[str, str, str, str, str], list[_Line]] = defaultdict(list)
    for ln in lines:
        if not ln.is_debit and not ln.is_credit_note:
            pay_lines[_payment_key(ln)].append(ln)
    ref_counts = Counter(key[4] for key in pay_lines if key[4])
    pay: dict[str, list[object]] = defaultdict(list)
    alloc: dict[tuple[str, str], Decimal] = {}
    for key, members in pay_lines.items():
        piece_ref = key[4]
        payment_id = piece_ref if piece_ref and ref_counts[piece_ref] == 1 else "FEC-P" + _identity_hash(*key)
        currency = Counter(m.currency for m in members).most_common(1)[0][0]
        pay["payment_id"].append(payment_id)
        pay["customer_id"].append(key[0])
        pay["payment_date"].append(min(_payment_date(m) for m in members))
        pay["amount"].append(sum((m.amount for m in members), Decimal("0.00")))
        pay["currency"].append(currency)
        pay["payment_method"].append(None)
        pay["_source_row"].append(min(m.line_no for m in members))
        for m in members:
            for invoice_id, part in m.parts:
                if invoice_id is not None:
                    alloc[(payment_id, invoice_id)] = alloc.get((payment_id, invoice_id), Decimal("0.00")) + part

    money = pa.decimal128(18, 2)
    customers = pa.table(
        {
            "customer_id": pa.array(list(names), pa.string()),
            "customer_name": pa.array([c.most_common(1)[0][0] for c in names.values()], pa.string()),
            **{
                col: pa.nulls(len(names), pa.string())
                for col in (
                    "customer_type",
                    "siren",
                    "naf_code",
                    "sector_section",
                    "size_band",
                    "region",
                    "country_code",
                    "email",
                    "phone",
                )
            },
            "credit_limit": pa.nulls(len(names), money),
            "currency": pa.array([currencies[c].most_common(1)[0][0] for c in names], pa.string()),
            "payment_terms_days": pa.nulls(len(names), pa.int32()),
            "is_end_of_month_terms": pa.nulls(len(names), pa.bool_()),
            "created_date": pa.nulls(len(names), pa.date32()),
        }
    )
    invoices = pa.table(
        {
            "invoice_id": pa.array(inv["invoice_id"], pa.string()),
            "customer_id": pa.array(inv["customer_id"], pa.string()),
            "document_type": pa.array(inv["document_type"], pa.string()),
            "credited_invoice_id": pa.array(inv["credited_invoice_id"], pa.string()),
            "issue_date": pa.array(inv["issue_date"], pa.date32()),
            "due_date": pa.array(inv["due_date"], pa.date32()),
            "amount": pa.array(inv["amount"], money),
            "currency": pa.array(inv["currency"], pa.string()),
            "payment_terms_days": pa.array(inv["payment_terms_days"], pa.int32()),
            "is_end_of_month_terms": pa.array(inv["is_end_of_month_terms"], pa.bool_()),
            "_source_row": pa.array(inv["_source_row"], pa.int64()),
        }
    )
    payments = pa.table(
        {
            "payment_id": pa.array(pay["payment_id"], pa.string()),
            "customer_id": pa.array(pay["customer_id"], pa.string()),
            "payment_date": pa.array(pay["payment_date"], pa.date32()),
            "amount": pa.array(pay["amount"], money),
            "currency": pa.array(pay["currency"], pa.string()),
            "payment_method": pa.array(pay["payment_method"], pa.string()),
            "_source_row": pa.array(pay["_source_row"], pa.int64()),
        }
    )
    allocations = pa.table(
        {
            "payment_id": pa.array([k[0] for k in alloc], pa.string()),
            "invoice_id": pa.array([k[1] for k in alloc], pa.string()),
            "allocated_amount": pa.array(list(alloc.values()), money),
        }
    )
    return {"customers": customers, "invoices": invoices, "payments": payments, "payment_allocations": allocations}
