"""Call outcomes: what a collector's call gave, read from the collector's file, checked row by row, loaded.

Negotiators call the customers of the call list and write down what happened, one row per call, in a CSV (UTF-8,
or Windows-1252 / Latin-1 as Excel saves it; ``;`` or ``,`` separated) or an Excel workbook (first sheet). The
columns, in any order (:func:`template_csv` prints the header; other columns, such as the call list's own, are
ignored):

=================  ======================================================================================
reminder_key       optional: the call task of the call list the call answers
customer_id        required: a customer loaded in the warehouse
called_at          required: ``2026-11-02T10:15:00+01:00`` (with an offset, or ``Z``), or a local time in
                   ``Settings.timezone``: ``2026-11-02 10:15`` or ``02/11/2026 10:15``
outcome            required: one of :data:`CALL_OUTCOMES` (or its French label, :data:`OUTCOME_LABELS_FR`)
promised_date      ``promise`` only, and then required: ``2026-11-20`` or ``20/11/2026``, not before the call
promised_amount    ``promise`` only, optional (empty: the whole balance): > 0, ``1 234,50`` or ``1234.50``
collector          who called
note               free text
call_id            optional: the file's id for the call; default sha256 of ``<customer_id>|<called_at UTC ISO>``
=================  ======================================================================================

A row that breaks a rule is never dropped silently: :func:`read_call_file` gives it as a :class:`RowError` per
field (file, line, field, what was expected), and :meth:`CallFile.extract` hands it to the shared loader as a
:class:`~relance.sources.base.Reject`, which writes it to ``ops.quarantine`` with the reason. Good rows load
through :func:`relance.ingest.load_extracts` into ``raw.call_outcomes`` under source :data:`SOURCE_NAME`, with
the file's sha256 as its hash: the same file imported again is an ``unchanged`` batch and changes nothing, and a
corrected file re-appends only the rows that changed. The data contract (``expectations.suites``, suite
``raw_call_outcomes``) then validates the batch; contact data never blocks the receivables gate
(``relance.ops.CONTACT_DATA_ENTITIES``).

``wrong_contact`` and ``do_not_contact`` also suppress a channel (:data:`SUPPRESSING_OUTCOMES`):
:func:`record_call_suppressions` writes one ``ops.contact_suppressions`` row per such call, once.

No Prefect and no ``expectations`` here: ``flows/import_call_outcomes.py`` composes reading, loading, validation
and suppression.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
from pydantic import BaseModel, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from relance import ops
from relance.ingest import ExtractLoadReport, current_versions_sql, load_extracts
from relance.raw_schema import CONTACT_ENTITIES, entity
from relance.sources.amounts import parse_amount
from relance.sources.base import SOURCE_ROW, EntityExtract, Reject, SourceError, file_sha256
from relance.sources.encoding import detect_encoding
from relance.sources.limits import MAX_CELL_CHARS, check_file_size, oversized_raw, oversized_reason
from relance.sources.separators import best_separator
from relance.tabular_output import restore_cell
from relance.warehouse import ensure_schemas

log = logging.getLogger(__name__)

ENTITY = "call_outcomes"
#: The loader's source name of every call file (CLI and watched folder alike: a file is imported once either way).
SOURCE_NAME = "calls"
CallOutcome = Literal[
    "reached", "voicemail", "no_answer", "promise", "dispute", "wrong_contact", "paid", "do_not_contact"
]
#: What a call can give. ``paid``: the customer says it has paid (the payment itself comes with the ledger).
CALL_OUTCOMES: tuple[str, ...] = get_args(CallOutcome)
#: Outcomes that stop contacts on a channel (``'*'``: every channel) until a person lifts it.
SUPPRESSING_OUTCOMES: dict[str, str] = {"wrong_contact": "call", "do_not_contact": "*"}
#: French words of each outcome (talking points, and accepted in a file instead of the code).
OUTCOME_LABELS_FR: dict[str, str] = {
    "reached": "joint",
    "voicemail": "messagerie",
    "no_answer": "pas de réponse",
    "promise": "promesse de paiement",
    "dispute": "litige",
    "wrong_contact": "mauvais contact",
    "paid": "déclare avoir payé",
    "do_not_contact": "ne plus contacter",
}
_OUTCOME_ALIASES: dict[str, str] = {
    **{label: code for code, label in OUTCOME_LABELS_FR.items()},
    "promesse": "promise",
    "repondeur": "voicemail",
    "répondeur": "voicemail",
    "injoignable": "no_answer",
    "pas de reponse": "no_answer",
    "mauvais numero": "wrong_contact",
    "mauvais numéro": "wrong_contact",
    "paye": "paid",
    "payé": "paid",
    "regle": "paid",
    "réglé": "paid",
}

#: The columns of a call file, in the order :func:`template_csv` writes them.
FILE_COLUMNS: tuple[str, ...] = (
    "reminder_key",
    "customer_id",
    "called_at",
    "outcome",
    "promised_date",
    "promised_amount",
    "collector",
    "note",
    "call_id",
)
REQUIRED_COLUMNS: tuple[str, ...] = ("customer_id", "called_at", "outcome")
CALL_FILE_SUFFIXES: tuple[str, ...] = (".csv", ".xlsx")
#: A collector's file is a few hundred lines: anything this large is the wrong file.
MAX_CALL_FILE_BYTES = 64 * 1024**2
_SEPARATORS: tuple[str, ...] = (";", ",", "\t")
#: Largest DECIMAL(18,2).
_MAX_AMOUNT = Decimal("9999999999999999.99")
#: A call stamped later than this after "now" is a typo (a clock a few minutes off is not).
_FUTURE_TOLERANCE = timedelta(hours=1)
_HAS_TIME = re.compile(r"\d{1,2}[:h]\d{2}")
_LOCAL_FORMATS: tuple[str, ...] = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y %Hh%M", "%d/%m/%y %H:%M")
_DATE_FORMATS: tuple[str, ...] = ("%d/%m/%Y", "%d/%m/%y")


class CallFileError(SourceError):
    """A call file that cannot be read at all (not a table, a required column missing): nothing of it loads."""


def _problem(message: str) -> PydanticCustomError:
    return PydanticCustomError("call_file", "{reason}", {"reason": message})


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def parse_called_at(text: str, zone: ZoneInfo) -> datetime:
    """When a call was made, as an aware UTC datetime: ISO 8601 with an offset, or a local time in ``zone``
    (ISO or ``dd/mm/yyyy hh:mm``). A date without a time is refused. ``ValueError`` says what was expected."""
    s = text.strip()
    expected = (
        f"expected a date and time: 2026-11-02T10:15:00+01:00, or local time ({zone.key}) 2026-11-02 10:15 or "
        "02/11/2026 10:15"
    )
    if not _HAS_TIME.search(s):
        raise ValueError(f"{s!r} has no time of day; {expected}")
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(s)
    except ValueError:
        for fmt in _LOCAL_FORMATS:
            try:
                parsed = datetime.strptime(s, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise ValueError(f"{s!r} is not a date and time; {expected}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)  # fold=0: an ambiguous autumn hour is its first occurrence
    return parsed.astimezone(UTC)


def parse_day(text: str) -> date:
    """A calendar date: ``2026-11-20`` or ``20/11/2026`` (an Excel date cell arrives as the former)."""
    s = text.strip()
    try:
        return date.fromisoformat(s)
    except ValueError:
        pass
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(s, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"{s!r} is not a date (expected 2026-11-20 or 20/11/2026)")


def normalise_outcome(text: str) -> str:
    """The outcome code of what a collector wrote (the code in any case, or its French label)."""
    s = " ".join(text.strip().lower().replace("-", " ").replace("_", " ").split())
    code = s.replace(" ", "_")
    if code in CALL_OUTCOMES:
        return code
    if s in _OUTCOME_ALIASES:
        return _OUTCOME_ALIASES[s]
    raise ValueError(f"{text.strip()!r} is not a call outcome (expected one of {', '.join(CALL_OUTCOMES)})")


def default_call_id(customer_id: str, called_at: datetime) -> str:
    """The id of a call the file gave none: sha256 of ``<customer_id>|<called_at in UTC, ISO 8601>``."""
    stamp = called_at.astimezone(UTC).isoformat()
    return hashlib.sha256(f"{customer_id}|{stamp}".encode()).hexdigest()


class CallRow(BaseModel):
    """One call, checked. Built with ``context={"zone": ZoneInfo, "now": aware datetime}`` (local times of the
    file are in ``zone``; a call after ``now`` is refused). Fields are validated in order, so the cross-field
    rules of ``promised_date`` and ``promised_amount`` see the outcome and the call time."""

    line: int
    customer_id: str
    called_at: datetime
    outcome: CallOutcome
    promised_date: date | None = None
    promised_amount: Decimal | None = None
    reminder_key: str | None = None
    collector: str | None = None
    note: str | None = None
    call_id: str | None = None

    @field_validator("customer_id", mode="before")
    @classmethod
    def _customer(cls, value: Any) -> str:
        text = _text(value)
        if text is None:
            raise _problem("is empty; the customer called is required")
        return text

    @field_validator("called_at", mode="before")
    @classmethod
    def _called_at(cls, value: Any, info: ValidationInfo) -> datetime:
        context = info.context or {}
        zone = context.get("zone") or ZoneInfo("UTC")
        if isinstance(value, datetime):
            moment = (value.replace(tzinfo=zone) if value.tzinfo is None else value).astimezone(UTC)
        else:
            text = _text(value)
            if text is None:
                raise _problem("is empty; when the call was made is required")
            try:
                moment = parse_called_at(text, zone)
            except ValueError as exc:
                raise _problem(str(exc)) from None
        now = context.get("now") or datetime.now(UTC)
        if moment > now + _FUTURE_TOLERANCE:
            raise _problem(f"{moment:%Y-%m-%d %H:%M} UTC is in the future; a call is recorded after it was made")
        return moment

    @field_validator("outcome", mode="before")
    @classmethod
    def _outcome(cls, value: Any) -> str:
        text = _text(value)
        if text is None:
            raise _problem(f"is empty; expected one of {', '.join(CALL_OUTCOMES)}")
        try:
            return normalise_outcome(text)
        except ValueError as exc:
            raise _problem(str(exc)) from None

    @field_validator("promised_date", mode="before")
    @classmethod
    def _promised_date_parse(cls, value: Any) -> date | None:
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        text = _text(value)
        if text is None:
            return None
        try:
            return parse_day(text)
        except ValueError as exc:
            raise _problem(str(exc)) from None

    @field_validator("promised_date", mode="after")
    @classmethod
    def _promised_date_rules(cls, value: date | None, info: ValidationInfo) -> date | None:
        outcome = info.data.get("outcome")
        if outcome is None:  # the outcome itself is wrong: that error says it
            return value
        if outcome != "promise":
            if value is not None:
                raise _problem(f"is set but the outcome is {outcome!r}; a promised date goes with outcome 'promise'")
            return value
        if value is None:
            raise _problem("is empty; outcome 'promise' needs the date the customer promised to pay by")
        called_at = info.data.get("called_at")
        if called_at is not None:
            zone = (info.context or {}).get("zone") or ZoneInfo("UTC")
            called_on = called_at.astimezone(zone).date()
            if value < called_on:
                raise _problem(
                    f"{value.isoformat()} is before the call ({called_on.isoformat()}); a promise is for a date to come"
                )
        return value

    @field_validator("promised_amount", mode="before")
    @classmethod
    def _promised_amount_parse(cls, value: Any) -> Decimal | None:
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            value = str(value)
        text = _text(value)
        if text is None:
            return None
        cleaned = re.sub(r"(?i)\s*(€|eur)\s*$", "", text)
        try:
            return parse_amount(cleaned)
        except ValueError as exc:
            raise _problem(str(exc)) from None

    @field_validator("promised_amount", mode="after")
    @classmethod
    def _promised_amount_rules(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        if value is None:
            return None
        outcome = info.data.get("outcome")
        if outcome is not None and outcome != "promise":
            raise _problem(f"is set but the outcome is {outcome!r}; a promised amount goes with outcome 'promise'")
        if value <= 0:
            raise _problem(f"{value} must be greater than 0 (leave it empty for the whole balance)")
        if value > _MAX_AMOUNT:
            raise _problem(f"{value} is larger than any amount the warehouse holds (18 digits, 2 decimals)")
        return value

    @field_validator("reminder_key", "collector", "note", "call_id", mode="before")
    @classmethod
    def _optional_text(cls, value: Any) -> str | None:
        return _text(value)

    @model_validator(mode="after")
    def _default_id(self) -> CallRow:
        if self.call_id is None:
            self.call_id = default_call_id(self.customer_id, self.called_at)
        return self

    @property
    def suppressed_channel(self) -> str | None:
        """The channel this call's outcome suppresses (``'*'``: all), or None."""
        return SUPPRESSING_OUTCOMES.get(self.outcome)

    def raw_values(self) -> dict[str, str | None]:
        """The row as ``raw.call_outcomes`` text (UTC timestamp without offset, ISO date, amount with a point)."""
        return {
            "call_id": self.call_id,
            "reminder_key": self.reminder_key,
            "customer_id": self.customer_id,
            "called_at": self.called_at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" "),
            "outcome": self.outcome,
            "promised_date": self.promised_date.isoformat() if self.promised_date else None,
            "promised_amount": str(self.promised_amount) if self.promised_amount is not None else None,
            "collector": self.collector,
            "note": self.note,
        }


@dataclass(frozen=True)
class RowError:
    """One broken rule of one row: the line of the file, the field (None: the row as a whole) and what is wrong."""

    line: int
    field: str | None
    message: str
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def reason(self) -> str:
        """What the quarantine keeps after ``<file>, row <line>:`` (the loader adds those)."""
        return f"field {self.field}: {self.message}" if self.field else self.message

    def describe(self, path: Path | str) -> str:
        """``calls.csv, line 7, field promised_date: ...``."""
        where = f"{Path(path).name}, line {self.line}"
        return f"{where}, field {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


@dataclass
class CallFile:
    """A collector's file, read and checked: its good rows and, per bad row, why."""

    path: Path
    file_hash: str
    rows: list[CallRow]
    errors: list[RowError]
    encoding: str | None = None
    delimiter: str | None = None
    ignored_columns: tuple[str, ...] = ()

    @property
    def rejected_lines(self) -> list[int]:
        return sorted({e.line for e in self.errors})

    @property
    def rows_read(self) -> int:
        return len(self.rows) + len(self.rejected_lines)

    def extract(self) -> EntityExtract:
        """The loader's extract: the good rows as text (``_source_row`` = the file line) and one reject per bad
        line, with every field's reason."""
        columns = list(CONTACT_ENTITIES[ENTITY])
        values = [r.raw_values() for r in self.rows]
        arrays = {c: pa.array([v[c] for v in values], pa.string()) for c in columns}
        arrays[SOURCE_ROW] = pa.array([r.line for r in self.rows], pa.int64())
        by_line: dict[int, list[RowError]] = {}
        for err in self.errors:
            by_line.setdefault(err.line, []).append(err)
        rejects = [
            Reject(
                entity=ENTITY,
                row_number=line,
                reason="; ".join(e.reason for e in errs),
                raw=dict(errs[0].raw),
            )
            for line, errs in sorted(by_line.items())
        ]
        return EntityExtract(
            entity=ENTITY, table=pa.table(arrays), source_file=str(self.path), file_hash=self.file_hash, rejects=rejects
        )


def template_csv(separator: str = ";", *, example: bool = False) -> str:
    """The header of a call file (``;``: what a French Excel writes), with two example rows if ``example``."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=separator, lineterminator="\n")
    writer.writerow(FILE_COLUMNS)
    if example:
        writer.writerow(
            ["", "C0042", "2026-11-02 10:15", "promise", "2026-11-20", "1 234,50", "Claire", "paiera le solde", ""]
        )
        writer.writerow(["", "C0043", "2026-11-02 10:40", "voicemail", "", "", "Claire", "message laissé", ""])
    return out.getvalue()


def _column_name(header: str) -> str:
    return "_".join(header.replace("\ufeff", "").strip().lower().replace("-", " ").split())


def _header_score(line: str, separator: str) -> tuple[int, int] | None:
    names = [_column_name(n) for n in next(csv.reader([line], delimiter=separator), [])]
    known = sum(1 for n in names if n in FILE_COLUMNS)
    return (known, len(names)) if known else None


def _map_header(names: list[str], where: str) -> tuple[dict[int, str], tuple[str, ...]]:
    """Position -> column of the known columns, and the names of the ignored ones. ``CallFileError`` when a
    required column is missing or a column comes twice."""
    positions: dict[int, str] = {}
    ignored: list[str] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(names):
        name = _column_name(raw or "")
        if name in FILE_COLUMNS:
            if name in seen:
                raise CallFileError(f"{where}: column {name} appears twice (columns {seen[name] + 1} and {i + 1})")
            seen[name] = i
            positions[i] = name
        elif raw and raw.strip():
            ignored.append(raw.strip())
    missing = [c for c in REQUIRED_COLUMNS if c not in seen]
    if missing:
        raise CallFileError(
            f"{where}: missing column(s) {', '.join(missing)}; found {[n for n in names if n]}; expected the header "
            f"{';'.join(FILE_COLUMNS)} (`relance calls template` prints it)"
        )
    return positions, tuple(ignored)


def _csv_records(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]], str, str]:
    """(header, (line, cells) of each non-blank record, encoding, separator) of a delimited text file."""
    encoding = detect_encoding(path)
    text = path.read_text(encoding=encoding)
    lines = text.splitlines(keepends=True)
    offset = 0
    forced: str | None = None
    if lines and lines[0].lower().startswith("sep=") and len(lines[0].rstrip("\r\n")) == 5:
        forced, offset = lines[0][4], 1  # Excel's "sep=;" first line
    body = "".join(lines[offset:])
    first = next((ln for ln in lines[offset:] if ln.strip()), None)
    if first is None:
        raise CallFileError(f"{path}: empty file; expected the header {';'.join(FILE_COLUMNS)}")
    separator = forced or best_separator(_SEPARATORS, lambda s: _header_score(first, s))
    if separator is None:
        raise CallFileError(
            f"{path}: the first line names none of the columns {', '.join(FILE_COLUMNS)} with ';', ',' or a tab"
        )
    reader = csv.reader(io.StringIO(body, newline=""), delimiter=separator)

    def records() -> Iterator[tuple[int, list[str]]]:
        previous = reader.line_num
        for cells in reader:
            start = previous + 1 + offset
            previous = reader.line_num
            if any(c.strip() for c in cells):
                yield start, [restore_cell(c) for c in cells]

    stream = records()
    try:
        _, header = next(stream)
    except StopIteration:  # pragma: no cover - `first` guarantees a non-blank line
        raise CallFileError(f"{path}: no header line") from None
    except csv.Error as exc:
        raise CallFileError(f"{path}: not a readable CSV: {exc}") from exc
    return header, stream, encoding, separator


def _xlsx_records(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str | None]]], list[RowError]]:
    """(header, (sheet row, cells) of each non-blank row, rows refused for a cell over the cap) of a workbook."""
    from relance.sources.tabular.excel_sheet import ExcelSheet
    from relance.sources.tabular.profile import ReaderOptions

    sheet = ExcelSheet(path, ReaderOptions(format="excel"))
    refused: list[RowError] = []

    def on_reject(row: int, reason: str, raw: dict[str, Any]) -> None:
        refused.append(RowError(row, None, reason, raw))

    def records() -> Iterator[tuple[int, list[str | None]]]:
        for batch in sheet.batches(on_reject):
            for record in batch.to_pylist():
                line = int(record.pop(SOURCE_ROW))
                yield line, [record.get(name) for name in sheet.header]

    return list(sheet.header), records(), refused


def read_call_file(
    path: Path,
    *,
    timezone: str,
    known_customers: Iterable[str] | None = None,
    now: datetime | None = None,
) -> CallFile:
    """Read and check a collector's file (see the module docstring for its columns).

    Every row is checked with :class:`CallRow`; a row that breaks a rule gives one :class:`RowError` per field.
    With ``known_customers``, a ``customer_id`` outside it is an error too. Two rows of one call (the same
    ``call_id``) are an error on the later one. ``now`` (default: the current time) bounds ``called_at``.

    Raises:
        CallFileError: the file is not a call file (no table, a required column missing, too large).
        SourceError: its bytes do not decode, or an .xlsx is not a readable workbook.
    """
    path = Path(path)
    if not path.is_file():
        raise CallFileError(f"{path}: no such file")
    check_file_size(path, MAX_CALL_FILE_BYTES)
    file_hash = file_sha256(path)
    encoding = delimiter = None
    errors: list[RowError] = []
    if path.suffix.lower() == ".xlsx":
        header, records, refused = _xlsx_records(path)
    elif path.suffix.lower() in (".xls", ".xlsm", ".ods"):
        raise CallFileError(f"{path}: save the sheet as .xlsx or as CSV (UTF-8 or 'CSV (séparateur: point-virgule)')")
    else:
        try:
            header, records, encoding, delimiter = _csv_records(path)
        except UnicodeDecodeError as exc:  # detect_encoding said one thing, a later byte another
            raise CallFileError(f"{path}: not readable as {exc.encoding}: {exc}") from exc
        refused = []
    positions, ignored = _map_header(header, str(path))
    if ignored:
        log.info("%s: columns ignored: %s", path.name, ", ".join(ignored))
    context = {"zone": ZoneInfo(timezone), "now": now or datetime.now(UTC)}
    customers = None if known_customers is None else set(known_customers)
    rows: list[CallRow] = []
    first_line_of: dict[str, int] = {}
    try:
        for line, cells in records:
            raw = {positions[i]: cells[i] for i in positions if i < len(cells)}
            raw_cells = {positions.get(i, f"column {i + 1}"): c for i, c in enumerate(cells)}
            if len(cells) > len(header) and any(_text(c) for c in cells[len(header) :]):
                errors.append(
                    RowError(
                        line,
                        None,
                        f"{len(cells)} fields but the header has {len(header)} (a separator inside an unquoted note?)",
                        raw_cells,
                    )
                )
                continue
            long = next((k for k, v in raw.items() if isinstance(v, str) and len(v) > MAX_CELL_CHARS), None)
            if long is not None:
                reason = oversized_reason(long, len(raw[long]), MAX_CELL_CHARS)
                errors.append(RowError(line, long, reason, oversized_raw(raw, MAX_CELL_CHARS)))
                continue
            try:
                row = CallRow.model_validate({**raw, "line": line}, context=context)
            except ValidationError as exc:
                for e in exc.errors():
                    name = str(e["loc"][0]) if e["loc"] else None
                    errors.append(RowError(line, name, e["msg"], raw))
                continue
            if customers is not None and row.customer_id not in customers:
                errors.append(
                    RowError(line, "customer_id", f"{row.customer_id!r} is not a customer loaded in the warehouse", raw)
                )
                continue
            assert row.call_id is not None
            if row.call_id in first_line_of:
                errors.append(
                    RowError(
                        line,
                        "call_id",
                        f"the same call as line {first_line_of[row.call_id]} (call_id {row.call_id[:16]}); "
                        "a call is recorded once",
                        raw,
                    )
                )
                continue
            first_line_of[row.call_id] = line
            rows.append(row)
    except csv.Error as exc:
        raise CallFileError(f"{path}: not a readable CSV: {exc}") from exc
    errors += refused
    errors.sort(key=lambda e: e.line)
    return CallFile(path, file_hash, rows, errors, encoding, delimiter, ignored)


def load_call_file(
    con: duckdb.DuckDBPyConnection, call_file: CallFile, *, flow_run_id: str | None
) -> ExtractLoadReport | None:
    """Load the good rows into ``raw.call_outcomes`` and quarantine the bad ones, through the shared loader, in
    one transaction. None when the file holds no row at all (a header only): nothing is recorded."""
    if not call_file.rows and not call_file.errors:
        return None
    return load_extracts(con, [call_file.extract()], source_name=SOURCE_NAME, flow_run_id=flow_run_id)


def known_customer_ids(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Every customer id loaded in raw (the same set the data contract's reference check reads)."""
    ensure_schemas(con)
    rows = con.execute("SELECT DISTINCT customer_id FROM raw.customers WHERE customer_id IS NOT NULL").fetchall()
    return {r[0] for r in rows}


def record_call_suppressions(con: duckdb.DuckDBPyConnection) -> int:
    """Write an ``ops.contact_suppressions`` row (source ``'call'``) for each accepted ``wrong_contact`` /
    ``do_not_contact`` call that has none yet; returns how many were written.

    Accepted: the call's current version, in a batch validated and not excluded, not quarantined by the data
    contract. Once: a call whose customer already has an unlifted suppression of that channel, or one lifted after
    the call, writes nothing (a person lifted it knowing the call), and of several new calls of one customer and
    channel only the first writes. ``created_at`` is the call's time, so a rerun conflicts with the row it wrote.
    """
    ops.ensure_ops(con)
    ent = entity(ENTITY)
    pairs = ", ".join(f"('{outcome}', '{channel}')" for outcome, channel in SUPPRESSING_OUTCOMES.items())
    sql = f"""
        INSERT INTO ops.contact_suppressions (customer_id, channel, reason, source, created_at, lifted_at)
        SELECT customer_id, channel, reason, 'call', called_at, NULL FROM (
            SELECT c.customer_id, m.channel, c.called_at,
                c.outcome || ' (call ' || c.call_id || coalesce(' by ' || c.collector, '')
                    || coalesce(': ' || c.note, '') || ')' AS reason,
                row_number() OVER (PARTITION BY c.customer_id, m.channel ORDER BY c.called_at, c.call_id) AS n
            FROM ({current_versions_sql(ent)}) AS c
            JOIN (VALUES {pairs}) AS m(outcome, channel) ON c.outcome = m.outcome
            WHERE NOT coalesce(c._deleted, false)
                AND c.customer_id IS NOT NULL AND c.called_at IS NOT NULL
                AND NOT EXISTS (
                    SELECT 1 FROM ops.ingest_batches AS b
                    WHERE b.batch_id = c._batch_id AND b.validation_state = 'pending')
                AND NOT EXISTS (
                    SELECT 1 FROM ops.quarantine AS q
                    WHERE q.entity = '{ENTITY}' AND q.batch_id = c._batch_id AND q.natural_key = c.call_id)
                AND NOT EXISTS (
                    SELECT 1 FROM ops.contact_suppressions AS s
                    WHERE s.customer_id = c.customer_id AND s.channel = m.channel
                        AND (s.lifted_at IS NULL OR s.lifted_at >= c.called_at OR s.created_at = c.called_at))
        ) WHERE n = 1
        ON CONFLICT DO NOTHING
    """
    written = int(con.execute(sql, [list(ops.EXCLUDED_STATES)]).fetchone()[0])
    if written:
        log.info("%d contact suppression(s) written from call outcomes", written)
    return written


def call_files(directory: Path) -> list[Path]:
    """The call files of a folder, by name (sub-folders, such as ``done/``, are not read; nor are Excel's
    ``~$`` lock files)."""
    if not directory.is_dir():
        return []
    return sorted(
        p
        for p in directory.iterdir()
        if p.is_file() and p.suffix.lower() in CALL_FILE_SUFFIXES and not p.name.startswith(("~$", "."))
    )


def archive_call_file(path: Path, done_dir: Path, file_hash: str) -> Path:
    """Move an imported file into ``done_dir``; a different file already there under the same name keeps its name
    and this one gets ``<stem>.<hash prefix><suffix>``. Returns where the file is now."""
    done_dir.mkdir(parents=True, exist_ok=True)
    target = done_dir / path.name
    if target.exists():
        if target.is_file() and file_sha256(target) == file_hash:
            path.unlink()
            return target
        target = done_dir / f"{path.stem}.{file_hash[:12]}{path.suffix}"
    os.replace(path, target)
    return target
