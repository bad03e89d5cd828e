"""Tabular ledgers (CSV, Excel, Parquet) mapped to the canonical raw entities by declarative YAML profiles.

Why profiles: every ERP, accounting package and spreadsheet exports receivables with its own column names,
separators, encodings, decimal commas and date formats. A profile states that mapping once, in data, so a new
export needs a YAML file and no code (``relance/sources/profiles/*.yaml`` ship with relance; any YAML file path
works too).

A profile has ``name``, ``description``, ``reader`` options, optional ``ignore_columns`` (source columns left
out on purpose, e.g. outcome columns that would leak the label) and, per canonical entity, the source
``file`` pattern(s), an optional ``where`` filter, ``distinct`` and a ``columns`` mapping from canonical column
to a source column name or a DuckDB SQL expression over source columns (``"'PAY-' || invoiceNumber"``,
``"false"``). Several entities may come from the same file.

What this adapter does and does not do (see :mod:`relance.sources.base`): it never types values. Every column
is read as text (``read_csv(..., all_varchar=true)``, Excel cells as text) and only *normalised* in SQL (decimal
comma, thousands separators, ``date_format`` via ``try_strptime``) so that a value that does not fit stays the
original non-null text and the loader's ``TRY_CAST`` quarantines that row with the value and expected type,
instead of one bad cell failing the file. A date that ``try_strptime`` cannot parse with ``date_format`` keeps
its original text: the loader then accepts it only if it is an ISO date and quarantines it otherwise, which is
how a file with mixed date formats ends up as loaded rows plus quarantined rows with a reason.

CSV and Parquet extracts are DuckDB ``SELECT`` strings over the file (nothing is read into Python, a 10M-row
file streams); Excel sheets are streamed row by row with openpyxl into Arrow record batches and mapped with the
same SQL on a private DuckDB connection. Lines DuckDB cannot parse (a truncated last line, a line with too
many fields) become :class:`~relance.sources.base.Reject` rows naming the line, so counts reconcile.
"""

from __future__ import annotations

import csv
import datetime as dt
import fnmatch
import hashlib
import json
import logging
import re
import tempfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from relance.raw_schema import ENTITIES
from relance.sources.base import EntityExtract, Reject, SourceError, file_sha256
from relance.sources.encoding import normalize_encoding, utf8_view

log = logging.getLogger(__name__)

PROFILES_PACKAGE = "relance.sources.profiles"
DELIMITERS: tuple[str, ...] = (",", ";", "\t", "|")
THOUSANDS_SEPARATORS: tuple[str, ...] = (",", ".", " ", "'", "\u00a0", "\u202f")
CSV_SUFFIXES: tuple[str, ...] = (".csv", ".txt", ".tsv")
EXCEL_SUFFIXES: tuple[str, ...] = (".xlsx", ".xlsm")
PARQUET_SUFFIXES: tuple[str, ...] = (".parquet", ".pq")
SOURCE_ROW = "_source_row"
MAX_REJECTED_LINES = 1000  # more unparseable lines than this means the dialect is wrong, not a few bad rows
EXCEL_BATCH_ROWS = 10_000
_SAMPLE_BYTES = 1 << 16
_SOURCE_TOKEN = "__RELANCE_SOURCE__"  # placeholder for the source relation, filled once the file is scanned

# Canonical columns a profile must map for each entity (natural keys plus what the loader and the critical
# expectations cannot do without). Unmapped optional columns are loaded as NULL.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id",),
    "invoices": ("invoice_id", "customer_id", "issue_date", "due_date", "amount"),
    "payments": ("payment_id", "customer_id", "payment_date", "amount"),
    "payment_allocations": ("payment_id", "invoice_id", "allocated_amount"),
    "disputes": ("dispute_id", "invoice_id", "opened_date"),
    "reminders": ("reminder_id", "invoice_id", "sent_at", "channel"),
}


class ProfileError(SourceError):
    """A profile that cannot be used: unreadable YAML, unknown entity or column, missing mapping, bad option."""


# --------------------------------------------------------------------------------------------- profile model


class ReaderOptions(BaseModel):
    """How to read the source files (one set per profile: one export format)."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["auto", "csv", "excel", "parquet"] = "auto"
    delimiter: str = "auto"
    encoding: str = "auto"
    decimal: Literal[".", ","] = "."
    thousands: str | None = None
    date_format: str | None = None  # strptime format of DATE columns, e.g. "%m/%d/%Y"
    timestamp_format: str | None = None  # strptime format of TIMESTAMP columns
    header_row: int = Field(default=1, ge=1)  # 1-based line (CSV) or sheet row (Excel) holding the column names
    sheet: str | int | None = None  # Excel sheet name, or 1-based position; default: the first sheet
    quote: str = '"'

    @field_validator("delimiter")
    @classmethod
    def _delimiter(cls, value: str) -> str:
        if value == "\\t":
            value = "\t"
        if value != "auto" and value not in DELIMITERS:
            raise ValueError(f"expected auto or one of {', '.join(repr(d) for d in DELIMITERS)}, got {value!r}")
        return value

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        if value == "auto":
            return value
        try:
            return normalize_encoding(value)
        except SourceError as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("thousands")
    @classmethod
    def _thousands(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if value not in THOUSANDS_SEPARATORS:
            raise ValueError(f"expected one of {', '.join(repr(t) for t in THOUSANDS_SEPARATORS)}, got {value!r}")
        return value

    @field_validator("date_format", "timestamp_format")
    @classmethod
    def _strptime_format(cls, value: str | None) -> str | None:
        if value is not None and "%" not in value:
            raise ValueError(f"expected a strptime format such as '%d/%m/%Y', got {value!r}")
        return value

    @field_validator("quote")
    @classmethod
    def _quote(cls, value: str) -> str:
        if len(value) != 1:
            raise ValueError(f"expected a single character, got {value!r}")
        return value

    @model_validator(mode="after")
    def _separators_differ(self) -> ReaderOptions:
        if self.thousands is not None and self.thousands == self.decimal:
            raise ValueError(f"thousands separator {self.thousands!r} cannot be the decimal separator too")
        return self


MappingValue = str | bool | int | float | None


class EntityMapping(BaseModel):
    """Where one canonical entity comes from and how its columns are computed."""

    model_config = ConfigDict(extra="forbid")

    file: str | list[str]  # glob pattern(s) matched against file names in the input directory
    where: str | None = None  # SQL filter over source columns
    distinct: bool = False  # one row per distinct mapped row (e.g. customers repeated on every invoice line)
    required: bool = False  # a directory without a matching file is an error
    columns: dict[str, MappingValue]

    @property
    def patterns(self) -> list[str]:
        """File patterns as a list."""
        return [self.file] if isinstance(self.file, str) else list(self.file)


class Profile(BaseModel):
    """A declarative mapping of one tabular export format onto the raw entities."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    description: str = ""
    reader: ReaderOptions = Field(default_factory=ReaderOptions)
    ignore_columns: list[str] = Field(default_factory=list)
    entities: dict[str, EntityMapping] = Field(min_length=1)
    origin: str | None = Field(default=None, exclude=True)  # where it was loaded from, for messages

    @model_validator(mode="after")
    def _known_entities_and_columns(self) -> Profile:
        problems: list[str] = []
        for name, mapping in self.entities.items():
            if name not in ENTITIES:
                problems.append(f"entities.{name}: unknown entity (expected one of {', '.join(ENTITIES)})")
                continue
            unknown = [c for c in mapping.columns if c not in ENTITIES[name]]
            if unknown:
                problems.append(
                    f"entities.{name}.columns: unknown target column(s) {', '.join(unknown)} "
                    f"(expected columns of raw.{name}: {', '.join(ENTITIES[name])})"
                )
            missing = [c for c in REQUIRED_COLUMNS[name] if mapping.columns.get(c) is None]
            if missing:
                problems.append(
                    f"entities.{name}.columns: missing required mapping for {', '.join(missing)} "
                    f"(required for {name}: {', '.join(REQUIRED_COLUMNS[name])})"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _profile_error(origin: str, exc: ValidationError) -> ProfileError:
    """One readable message per problem: profile file, key path, what was expected."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        lines.append(f"{loc}: {msg}" if err["loc"] else msg)
    return ProfileError(f"profile {origin}: " + "; ".join(lines))


def parse_profile(text: str, origin: str) -> Profile:
    """Validate profile YAML ``text``; ``origin`` names it in errors (a file path or a packaged name)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ProfileError(f"profile {origin}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict):
        raise ProfileError(f"profile {origin}: expected a mapping of keys (name, reader, entities), got {data!r}")
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        raise _profile_error(origin, exc) from exc
    return profile.model_copy(update={"origin": origin})


def packaged_profiles() -> list[str]:
    """Names of the profiles shipped with relance."""
    root = resources.files(PROFILES_PACKAGE)
    return sorted(p.name.removesuffix(".yaml") for p in root.iterdir() if p.name.endswith(".yaml"))


def load_profile(name_or_path: str | Path) -> Profile:
    """A profile by packaged name (``"ibm_ar"``) or by path to a YAML file.

    Raises:
        ProfileError: unknown name, unreadable file, or a profile that does not validate (the message names the
            profile file, the key and what was expected).
    """
    candidate = Path(name_or_path)
    looks_like_path = isinstance(name_or_path, Path) or candidate.suffix in (".yaml", ".yml") or "/" in str(candidate)
    if looks_like_path:
        if not candidate.is_file():
            raise ProfileError(f"profile file {candidate} does not exist")
        return parse_profile(candidate.read_text(encoding="utf-8"), str(candidate))
    resource = resources.files(PROFILES_PACKAGE) / f"{name_or_path}.yaml"
    if not resource.is_file():
        raise ProfileError(
            f"unknown profile {name_or_path!r}: packaged profiles are {', '.join(packaged_profiles())}; "
            "or pass the path to a YAML file"
        )
    return parse_profile(resource.read_text(encoding="utf-8"), f"{name_or_path} ({resource})")


# --------------------------------------------------------------------------------------------- SQL helpers


def _q(identifier: str) -> str:
    """A quoted SQL identifier."""
    return '"' + identifier.replace('"', '""') + '"'


def _lit(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _literal(value: bool | int | float | None) -> str:
    """A YAML scalar (``false``, ``30``, ``null``) as a SQL literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _column_refs(con: duckdb.DuckDBPyConnection, expression: str) -> list[str] | None:
    """Column names an SQL expression references (via DuckDB's parser); ``None`` if it does not parse."""
    try:
        tree = con.execute("SELECT json_serialize_sql(?)", [f"SELECT {expression}"]).fetchone()[0]  # type: ignore[index]
    except duckdb.Error:
        return None
    parsed = json.loads(tree)
    if parsed.get("error"):
        return None
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("class") == "COLUMN_REF" and node.get("column_names"):
                refs.append(node["column_names"][-1])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(parsed["statements"])
    return refs


class _Resolver:
    """Turns mapping values into SQL over one file's columns, collecting missing-column problems."""

    def __init__(self, con: duckdb.DuckDBPyConnection, header: list[str]) -> None:
        self.con = con
        self.header = header
        self.by_lower = {h.lower(): h for h in header}
        self.used: set[str] = set()
        self.missing: dict[str, list[str]] = {}  # missing source column -> "entity.column" using it
        self.unparsable: list[str] = []

    def expr(self, value: MappingValue, where: str) -> str:
        """SQL for a mapping value: a source column (quoted), a YAML constant, or an SQL expression."""
        if not isinstance(value, str):
            return _literal(value)
        if value in self.header:
            self.used.add(value)
            return _q(value)
        refs = _column_refs(self.con, value)
        if refs is None:
            # not SQL: it can only be meant as a column name (e.g. "N° facture") that the file lacks
            self.missing.setdefault(value, []).append(where)
            return "NULL"
        for ref in refs:
            actual = self.by_lower.get(ref.lower())
            if actual is None:
                self.missing.setdefault(ref, []).append(where)
            else:
                self.used.add(actual)
        return f"({value})"


def _number_expr(sql: str, decimal: str, thousands: str | None) -> str:
    """Normalise a money/count text to DuckDB's '1234.56' form (thousands removed, decimal comma -> point)."""
    if decimal == "." and thousands is None:
        return sql
    out = f"trim(CAST({sql} AS VARCHAR))"
    if thousands is not None:
        seps = [thousands] + (["\u00a0", "\u202f"] if thousands == " " else [])
        for sep in seps:
            out = f"replace({out}, {_lit(sep)}, '')"
    if decimal == ",":
        out = f"replace({out}, ',', '.')"
    return out


def _temporal_expr(sql: str, fmt: str | None, target: str) -> str:
    """Parse text with ``fmt``; a value that does not parse keeps its original text (the loader quarantines it)."""
    if fmt is None:
        return sql
    text = f"trim(CAST({sql} AS VARCHAR))"
    return f"coalesce(CAST(CAST(try_strptime({text}, {_lit(fmt)}) AS {target}) AS VARCHAR), {text})"


def _mapped_select(
    entity_name: str, mapping: EntityMapping, resolver: _Resolver, reader: ReaderOptions, source_sql: str
) -> str:
    """The SELECT producing exactly the raw columns of ``entity_name`` (+ ``_source_row``) from ``source_sql``."""
    cols = []
    for col, typ in ENTITIES[entity_name].items():
        if col not in mapping.columns:
            cols.append(f"CAST(NULL AS VARCHAR) AS {_q(col)}")
            continue
        sql = resolver.expr(mapping.columns[col], f"{entity_name}.{col}")
        if typ.startswith("DECIMAL") or typ in ("INTEGER", "BIGINT", "DOUBLE"):
            sql = _number_expr(sql, reader.decimal, reader.thousands)
        elif typ == "DATE":
            sql = _temporal_expr(sql, reader.date_format, "DATE")
        elif typ == "TIMESTAMP":
            sql = _temporal_expr(sql, reader.timestamp_format, "TIMESTAMP")
        cols.append(f"{sql} AS {_q(col)}")
    where = ""
    if mapping.where:
        refs = _column_refs(resolver.con, mapping.where)
        if refs is None:
            raise SourceError(f"entity {entity_name}: 'where' is not a valid SQL expression: {mapping.where!r}")
        for ref in refs:
            actual = resolver.by_lower.get(ref.lower())
            if actual is None:
                resolver.missing.setdefault(ref, []).append(f"{entity_name}.where")
            else:
                resolver.used.add(actual)
        where = f" WHERE ({mapping.where})"
    select = f"SELECT {', '.join(cols)}, {SOURCE_ROW} FROM {source_sql} AS src{where}"
    if mapping.distinct:
        names = ", ".join(_q(c) for c in ENTITIES[entity_name])
        select = (
            f"SELECT {names}, min({SOURCE_ROW}) AS {SOURCE_ROW} FROM ({select}) AS mapped "
            f"GROUP BY ALL ORDER BY {SOURCE_ROW}"
        )
    return select


# --------------------------------------------------------------------------------------------- file readers


def _file_format(path: Path, reader: ReaderOptions) -> str:
    """csv | excel | parquet, from the profile or the file suffix."""
    if reader.format != "auto":
        return reader.format
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in EXCEL_SUFFIXES:
        return "excel"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix == ".xls":
        raise SourceError(f"{path}: legacy .xls workbooks are not supported; save the sheet as .xlsx or CSV")
    raise SourceError(
        f"{path}: cannot tell the format from suffix {suffix!r} (expected {', '.join(CSV_SUFFIXES)}, "
        f"{', '.join(EXCEL_SUFFIXES)} or {', '.join(PARQUET_SUFFIXES)}); set reader.format in the profile"
    )


def _extract_hash(file_hash: str, profile: Profile, entity_name: str) -> str:
    """Identity of one extract: the file's bytes AND how they were mapped.

    Why not the bare file hash: the loader skips an extract whose hash it has seen, so after fixing a profile
    (a wrong date_format that quarantined rows) re-importing the same file must read it again.
    """
    spec = {
        "reader": profile.reader.model_dump(mode="json"),
        "mapping": profile.entities[entity_name].model_dump(mode="json"),
    }
    return hashlib.sha256((file_hash + json.dumps(spec, sort_keys=True)).encode()).hexdigest()


def _check_header(names: list[str], where: str, header_row: int) -> list[str]:
    """Reject empty or duplicated column names: they usually mean a title row or a two-row header."""
    empty = [i + 1 for i, n in enumerate(names) if not n]
    lowered = [n.lower() for n in names if n]
    dupes = sorted({n for n in names if n and lowered.count(n.lower()) > 1})
    problems = []
    if empty:
        problems.append(f"empty column name(s) at position(s) {', '.join(map(str, empty))}")
    if dupes:
        problems.append(f"duplicated column name(s) {', '.join(repr(d) for d in dupes)}")
    if problems:
        raise SourceError(
            f"{where}: header row {header_row} has {' and '.join(problems)} (found: {names}); "
            "title rows above the header or a two-row header? set reader.header_row to the 1-based row "
            "that holds the column names"
        )
    return names


def _detect_delimiter(lines: list[str], quote: str) -> str:
    """The delimiter giving the header the most fields with the same count on the following lines."""
    best, best_score = ",", (0, 0.0)
    for delim in DELIMITERS:
        counts = [len(r) for r in csv.reader(lines, delimiter=delim, quotechar=quote)]
        if not counts or counts[0] < 2:
            continue
        consistent = sum(c == counts[0] for c in counts) / len(counts)
        score = (1 if consistent >= 0.8 else 0, consistent * counts[0])
        if score > best_score:
            best, best_score = delim, score
    return best


class _CsvFile:
    """One CSV file made ready for DuckDB: UTF-8 path, dialect, header, rejected lines."""

    def __init__(self, path: Path, reader: ReaderOptions, workdir: Path) -> None:
        self.path = path
        if path.stat().st_size == 0:
            raise SourceError(f"{path}: file is empty (0 bytes); expected a header row and data rows")
        self.utf8_path, self.encoding = utf8_view(path, reader.encoding, workdir=workdir)
        with self.utf8_path.open("r", encoding="utf-8-sig", newline="") as fh:
            head = fh.read(_SAMPLE_BYTES)
            complete = fh.read(1) == ""
        if not complete:
            head = head[: head.rfind("\n") + 1] or head
        lines = head.splitlines()
        self.header_row = reader.header_row
        body = lines[self.header_row - 1 :]
        if not "".join(lines).strip():
            raise SourceError(f"{path}: file is empty (only blank lines); expected a header row and data rows")
        if not body or not body[0].strip():
            raise SourceError(
                f"{path}: no header at line {self.header_row} (reader.header_row); the file has {len(lines)} line(s)"
            )
        self.delimiter = reader.delimiter if reader.delimiter != "auto" else _detect_delimiter(body[:50], reader.quote)
        self.quote = reader.quote
        header = next(csv.reader([body[0]], delimiter=self.delimiter, quotechar=self.quote))
        self.header = _check_header([h.strip() for h in header], f"{path}", self.header_row)
        if complete and not any(line.strip() for line in body[1:]):
            raise SourceError(
                f"{path}: header only: line {self.header_row} holds the column names but there are no data rows"
            )
        self.rejects: list[tuple[int, str, str]] = []  # (line, reason, raw line)

    def read_csv(self, *, ignore_errors: bool, store_rejects: bool = False) -> str:
        """DuckDB ``read_csv`` call with the fixed dialect and every column as text (no sniffing)."""
        columns = ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in self.header)
        opts = [
            "header = true",
            "auto_detect = false",
            f"delim = {_lit(self.delimiter)}",
            f"quote = {_lit(self.quote)}",
            f"escape = {_lit(self.quote)}",
            f"skip = {self.header_row - 1}",
            f"columns = {{{columns}}}",
        ]
        if ignore_errors:
            opts.append("ignore_errors = true")
        if store_rejects:
            opts += ["store_rejects = true", f"rejects_limit = {MAX_REJECTED_LINES + 1}"]
        return f"read_csv({_lit(str(self.utf8_path))}, {', '.join(opts)})"

    def scan_rejects(self) -> int:
        """Read the whole file once (DuckDB, parallel) to find lines it cannot parse; return the good rows."""
        with duckdb.connect() as scratch:
            try:
                # fetchall, not fetchone: the rejects table is written only once the scan has fully finished
                good = scratch.sql(
                    f"SELECT count(*) FROM {self.read_csv(ignore_errors=True, store_rejects=True)}"
                ).fetchall()[0][0]
            except duckdb.Error as exc:
                raise SourceError(
                    f"{self.path}: DuckDB cannot read the file as CSV: {str(exc).splitlines()[0]}"
                ) from exc
            try:
                rows = scratch.sql(
                    "SELECT line, string_agg(DISTINCT error_message, '; '), any_value(csv_line) "
                    "FROM reject_errors GROUP BY line ORDER BY line"
                ).fetchall()
            except duckdb.CatalogException:  # DuckDB creates the rejects table only when a line was rejected
                rows = []
        self.rejects = [(int(line), str(msg), str(raw or "").rstrip("\r\n")) for line, msg, raw in rows]
        if len(self.rejects) > MAX_REJECTED_LINES or (self.rejects and good == 0):
            first = self.rejects[0]
            raise SourceError(
                f"{self.path}: {len(self.rejects)}{'+' if len(self.rejects) > MAX_REJECTED_LINES else ''} line(s) "
                f"cannot be parsed with delimiter {self.delimiter!r} and quote {self.quote!r} (first: line "
                f"{first[0]}: {first[1]}); wrong delimiter or quote character?"
            )
        for line, msg, _ in self.rejects[:5]:
            log.warning("%s: line %d cannot be parsed: %s", self.path, line, msg)
        return int(good)

    def source_sql(self) -> str:
        """Every column as text plus ``_source_row`` = the file line number of the row."""
        header_line = self.header_row
        rn = "__relance_rn"
        line = f"{rn} + {header_line}"
        if self.rejects:
            # rows after a rejected line sit one line further down: shift by the rejected lines before them
            thresholds = [r - header_line - i for i, (r, _, _) in enumerate(self.rejects, start=1)]
            line += f" + len(list_filter({thresholds}, lambda t: {rn} > t))"
        inner = f"(SELECT *, row_number() OVER () AS {rn} FROM {self.read_csv(ignore_errors=bool(self.rejects))})"
        return f"(SELECT * EXCLUDE ({rn}), CAST({line} AS BIGINT) AS {SOURCE_ROW} FROM {inner})"


_COLUMN_COUNT_RE = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")


def _reject_hint(message: str) -> str:
    """What a DuckDB reject message most likely means for a ledger file."""
    m = _COLUMN_COUNT_RE.search(message)
    if m and int(m[2]) < int(m[1]):
        return " (truncated line?)"
    if m and int(m[2]) > int(m[1]):
        return " (a value holding the delimiter without quotes?)"
    return ""


def _parquet_source(path: Path) -> tuple[str, list[str]]:
    """``read_parquet`` with the 1-based row number, and the file's column names."""
    if path.stat().st_size == 0:
        raise SourceError(f"{path}: file is empty (0 bytes); expected a Parquet file")
    reader = f"read_parquet({_lit(str(path))}, file_row_number = true)"
    with duckdb.connect() as scratch:
        try:
            described = scratch.sql(f"DESCRIBE SELECT * FROM {reader}").fetchall()
            n_rows = scratch.sql(f"SELECT count(*) FROM {reader}").fetchone()[0]  # type: ignore[index]
        except duckdb.Error as exc:
            raise SourceError(f"{path}: not a readable Parquet file: {str(exc).splitlines()[0]}") from exc
    header = [r[0] for r in described if r[0] != "file_row_number"]
    if n_rows == 0:
        raise SourceError(f"{path}: header only: the Parquet file has columns {header} but no rows")
    sql = f"(SELECT * EXCLUDE (file_row_number), file_row_number + 1 AS {SOURCE_ROW} FROM {reader})"
    return sql, header


def _cell_text(value: Any, decimal: str) -> str | None:
    """An Excel cell as the text a CSV export would hold (numbers in the profile's decimal convention)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float):
        text = str(int(value)) if value.is_integer() else repr(value)
        return text.replace(".", ",") if decimal == "," else text
    if isinstance(value, int):
        return str(value)
    text = str(value)
    return text if text.strip() else None


class _ExcelSheet:
    """One worksheet: its header (validated) and a lazy stream of its rows as Arrow batches of text."""

    def __init__(self, path: Path, reader: ReaderOptions) -> None:
        self.path, self.reader = path, reader
        if path.stat().st_size == 0:
            raise SourceError(f"{path}: file is empty (0 bytes); expected an .xlsx workbook")
        with self._open() as (ws, label):
            self.label = label
            rows = ws.iter_rows(min_row=reader.header_row, max_row=reader.header_row + 5, values_only=True)
            header_cells = next(rows, None)
            data = [r for r in rows if any(_cell_text(c, ".") is not None for c in r)]
        if header_cells is None or all(c is None for c in header_cells):
            raise SourceError(f"{label}: row {reader.header_row} (reader.header_row) is empty; expected column names")
        cells = list(header_cells)
        while cells and cells[-1] is None:
            cells.pop()
        # a title row is narrower than the data below it: its missing cells are empty column names
        data_width = max(
            (max(i + 1 for i, c in enumerate(r) if _cell_text(c, ".") is not None) for r in data), default=0
        )
        cells += [None] * (data_width - len(cells))
        first_data = data[0] if data else None
        names = ["" if c is None else str(c).strip() for c in cells]
        self.header = _check_header(names, label, reader.header_row)
        if first_data is None:
            raise SourceError(f"{label}: header only: row {reader.header_row} holds the column names but no data rows")

    def _open(self) -> Any:
        """Context manager yielding (worksheet, label) of the workbook opened read-only."""
        import contextlib

        import openpyxl
        from openpyxl.utils.exceptions import InvalidFileException

        @contextlib.contextmanager
        def opened() -> Iterator[tuple[Any, str]]:
            try:
                wb = openpyxl.load_workbook(self.path, read_only=True, data_only=True)
            except (InvalidFileException, OSError, KeyError, ValueError) as exc:
                raise SourceError(f"{self.path}: not a readable .xlsx workbook: {exc}") from exc
            except Exception as exc:  # zipfile.BadZipFile and friends
                raise SourceError(f"{self.path}: not a readable .xlsx workbook: {exc}") from exc
            try:
                sheet = self.reader.sheet
                if sheet is None:
                    ws = wb.worksheets[0]
                elif isinstance(sheet, int):
                    if not 1 <= sheet <= len(wb.worksheets):
                        raise SourceError(f"{self.path}: no sheet number {sheet}; the workbook has {wb.sheetnames}")
                    ws = wb.worksheets[sheet - 1]
                else:
                    if sheet not in wb.sheetnames:
                        raise SourceError(f"{self.path}: no sheet named {sheet!r}; the workbook has {wb.sheetnames}")
                    ws = wb[sheet]
                yield ws, f"{self.path} [sheet {ws.title!r}]"
            finally:
                wb.close()

        return opened()

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([*(pa.field(n, pa.string()) for n in self.header), pa.field(SOURCE_ROW, pa.int64())])

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Data rows below the header, fully blank rows skipped, ``_source_row`` = the sheet row number."""
        width = len(self.header)
        with self._open() as (ws, _):
            buf: list[list[str | None]] = [[] for _ in range(width)]
            row_numbers: list[int] = []
            start = self.reader.header_row + 1
            for number, row in enumerate(ws.iter_rows(min_row=start, values_only=True), start=start):
                cells = [_cell_text(v, self.reader.decimal) for v in row[:width]]
                if all(c is None for c in cells):
                    continue
                cells += [None] * (width - len(cells))
                for i, c in enumerate(cells):
                    buf[i].append(c)
                row_numbers.append(number)
                if len(row_numbers) >= EXCEL_BATCH_ROWS:
                    yield pa.record_batch([*buf, row_numbers], schema=self.schema)
                    buf, row_numbers = [[] for _ in range(width)], []
            if row_numbers:
                yield pa.record_batch([*buf, row_numbers], schema=self.schema)


def _excel_extract_reader(sheet: _ExcelSheet, select_sql: str) -> pa.RecordBatchReader:
    """Stream the sheet through the mapping SQL on a private DuckDB connection (opened when first read)."""
    with duckdb.connect() as scratch:
        scratch.register("src_sheet", pa.Table.from_batches([], schema=sheet.schema))
        schema = scratch.execute(select_sql).fetch_record_batch().schema

    def batches() -> Iterator[pa.RecordBatch]:
        con = duckdb.connect()
        try:
            con.register("src_sheet", pa.RecordBatchReader.from_batches(sheet.schema, sheet.batches()))
            result = con.execute(select_sql).fetch_record_batch(EXCEL_BATCH_ROWS)
            for batch in result:
                yield batch.cast(schema) if batch.schema != schema else batch
        finally:
            con.close()

    return pa.RecordBatchReader.from_batches(schema, batches())


# --------------------------------------------------------------------------------------------- the adapter


def _files_for(path: Path, profile: Profile) -> dict[str, list[Path]]:
    """Entity -> matching files; a single input file feeds every entity whose pattern matches its name."""
    found: dict[str, list[Path]] = {}
    if path.is_file():
        for name, mapping in profile.entities.items():
            if any(fnmatch.fnmatch(path.name, p) for p in mapping.patterns):
                found[name] = [path]
        if not found:
            patterns = {n: m.patterns for n, m in profile.entities.items()}
            raise SourceError(f"{path}: file name matches none of profile {profile.name!r}'s file patterns {patterns}")
        return found
    if not path.is_dir():
        raise SourceError(f"{path} does not exist (expected a file or a directory)")
    for name, mapping in profile.entities.items():
        files = sorted({f for p in mapping.patterns for f in path.glob(p) if f.is_file()})
        if files:
            found[name] = files
        elif mapping.required:
            raise SourceError(
                f"{path}: no file for required entity {name!r} (profile {profile.name!r} expects "
                f"{' or '.join(mapping.patterns)})"
            )
    if not found:
        raise SourceError(f"{path}: no file matches profile {profile.name!r}'s patterns")
    return found


def _missing_columns_error(
    file_label: str, resolver: _Resolver, profile: Profile, delimiter: str | None
) -> SourceError:
    """Name every missing source column, what uses it, what the file has, and a delimiter hint if it fits."""
    missing = "; ".join(f"{col!r} (for {', '.join(uses)})" for col, uses in resolver.missing.items())
    msg = (
        f"{file_label}: missing column(s) {missing} mapped by profile {profile.name!r}; "
        f"the file has {len(resolver.header)} column(s): {', '.join(repr(h) for h in resolver.header)}"
    )
    if len(resolver.header) == 1:
        others = [d for d in DELIMITERS if d != delimiter and d in resolver.header[0]]
        if others:
            msg += (
                f". Wrong delimiter? the header parsed as a single column with delimiter {delimiter!r} but contains "
                f"{others[0]!r}: set reader.delimiter to {others[0]!r} or auto"
            )
        else:
            msg += (
                f". A title row above the header? set reader.header_row (now {profile.reader.header_row}) to the "
                "1-based line that holds the column names"
            )
    return SourceError(msg)


def read_tabular(path: Path, profile: Profile) -> list[EntityExtract]:
    """Read a ledger file (or a directory of files) through ``profile``: one extract per entity and file.

    Extract tables hold exactly the raw columns of the entity as text (normalised, not typed) plus
    ``_source_row`` (file line for CSV, sheet row for Excel, 1-based row for Parquet). CSV/Parquet tables are
    DuckDB SELECT strings; Excel tables are RecordBatchReaders. Transcoded copies of non-UTF-8 files live in a
    temporary directory that is removed when the last extract referencing it is garbage collected.

    Raises:
        SourceError: structural problems (empty file, header only, missing mapped columns, undecodable bytes,
            too many unparseable lines), naming the file, line or column and what was expected.
    """
    path = Path(path)
    by_entity = _files_for(path, profile)
    by_file: dict[Path, list[str]] = {}
    for name, files in by_entity.items():
        for f in files:
            by_file.setdefault(f, []).append(name)
    workdir = tempfile.TemporaryDirectory(prefix="relance-tabular-")
    extracts: list[EntityExtract] = []
    with duckdb.connect() as con:
        for file, entity_names in by_file.items():
            extracts += _read_file(con, file, entity_names, profile, workdir)
    for ext in extracts:
        # keeps transcoded temp files alive as long as an extract (whose SELECT reads them) is alive
        ext._workdir = workdir  # type: ignore[attr-defined]
    return extracts


def _read_file(
    con: duckdb.DuckDBPyConnection,
    file: Path,
    entity_names: list[str],
    profile: Profile,
    workdir: tempfile.TemporaryDirectory[str],
) -> list[EntityExtract]:
    """Extracts of every entity mapped from one file."""
    reader = profile.reader
    fmt = _file_format(file, reader)
    csv_file: _CsvFile | None = None
    sheet: _ExcelSheet | None = None
    if fmt == "csv":
        csv_file = _CsvFile(file, reader, Path(workdir.name))
        header, label, source_sql = csv_file.header, str(file), ""
    elif fmt == "excel":
        sheet = _ExcelSheet(file, reader)
        header, label, source_sql = sheet.header, sheet.label, "src_sheet"
    else:
        source_sql, header = _parquet_source(file)
        label = str(file)
    resolver = _Resolver(con, header)
    selects = {
        name: _mapped_select(name, profile.entities[name], resolver, reader, _SOURCE_TOKEN) for name in entity_names
    }
    if resolver.missing:
        raise _missing_columns_error(label, resolver, profile, csv_file.delimiter if csv_file else None)
    unused = [h for h in header if h not in resolver.used and h not in profile.ignore_columns]
    if unused:
        log.warning(
            "%s: ignoring column(s) %s: not mapped by profile %r (list them in ignore_columns to silence this)",
            label,
            ", ".join(unused),
            profile.name,
        )
    rejects: list[tuple[int, str, str]] = []
    if csv_file is not None:
        csv_file.scan_rejects()
        rejects = csv_file.rejects
        source_sql = csv_file.source_sql()
    file_hash = file_sha256(file)
    extracts = []
    for name in entity_names:
        select = selects[name].replace(_SOURCE_TOKEN, source_sql)
        _check_select(con, select, sheet, label, name, profile)
        table: str | pa.RecordBatchReader = _excel_extract_reader(sheet, select) if sheet is not None else select
        entity_rejects = [
            Reject(
                entity=name,
                row_number=line,
                reason=f"line {line} cannot be parsed: {msg}{_reject_hint(msg)}",
                raw={"line": raw},
            )
            for line, msg, raw in rejects
        ]
        extracts.append(
            EntityExtract(
                entity=name,
                table=table,
                source_file=str(file.resolve()),
                file_hash=_extract_hash(file_hash, profile, name),
                rejects=entity_rejects,
            )
        )
        log.info("%s: %s mapped by profile %r (%s)", label, name, profile.name, fmt)
    return extracts


def _check_select(
    con: duckdb.DuckDBPyConnection,
    select: str,
    sheet: _ExcelSheet | None,
    label: str,
    entity_name: str,
    profile: Profile,
) -> None:
    """Bind the mapping SQL without reading data, so a bad expression fails here with the profile named."""
    try:
        if sheet is not None:
            con.register("src_sheet", pa.Table.from_batches([], schema=sheet.schema))
        con.execute(f"DESCRIBE {select}")
    except duckdb.Error as exc:
        raise SourceError(
            f"{label}: profile {profile.name!r}, entity {entity_name}: the column mapping does not compile: "
            f"{str(exc).splitlines()[0]}"
        ) from exc
    finally:
        if sheet is not None:
            con.unregister("src_sheet")


__all__ = [
    "EntityMapping",
    "Profile",
    "ProfileError",
    "ReaderOptions",
    "load_profile",
    "packaged_profiles",
    "parse_profile",
    "read_tabular",
]
