"""The read: a ledger file or directory through a profile into one extract per entity and file.

Which files feed which entity (the profile's file patterns), which reader each file needs (CSV, Excel or
Parquet, from the profile or the suffix), the mapping SQL bound once so a bad expression fails with the
profile named, and the extracts the loader receives: streams of Arrow batches, the mapping SQL run on a
sandboxed DuckDB connection that can read only the one file (:func:`~relance.sources.tabular.mapping_sql.sandbox`:
profile expressions never run on the warehouse), with the lines DuckDB could not parse and the rows holding a
cell over the cap (:mod:`relance.sources.limits`) as rejects.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa

from relance.sources.base import SOURCE_ROW, EntityExtract, Reject, SourceError, file_sha256
from relance.sources.limits import DEFAULT_LIMITS, InputLimits, oversized_reason, oversized_sql
from relance.sources.tabular.csv_file import CsvFile, reject_hint
from relance.sources.tabular.excel_sheet import ExcelSheet, excel_extract_reader
from relance.sources.tabular.mapping_sql import (
    ExpressionRefused,
    Resolver,
    mapped_select,
    quote_ident,
    sandbox,
    sandboxed_reader,
)
from relance.sources.tabular.parquet_file import parquet_source
from relance.sources.tabular.profile import DELIMITERS, Profile, ReaderOptions

log = logging.getLogger(__name__)

CSV_SUFFIXES: tuple[str, ...] = (".csv", ".txt", ".tsv")
EXCEL_SUFFIXES: tuple[str, ...] = (".xlsx", ".xlsm")
PARQUET_SUFFIXES: tuple[str, ...] = (".parquet", ".pq")
_SOURCE_TOKEN = "__RELANCE_SOURCE__"  # placeholder for the source relation, filled once the file is scanned


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


def extract_hash(file_hash: str, profile: Profile, entity_name: str) -> str:
    """Identity of one extract: the file's bytes AND how they were mapped.

    Why not the bare file hash: the loader skips an extract whose hash it has seen, so after fixing a profile
    (a wrong date_format that quarantined rows) re-importing the same file must read it again.
    """
    spec = {
        "reader": profile.reader.model_dump(mode="json"),
        "mapping": profile.entities[entity_name].model_dump(mode="json"),
    }
    return hashlib.sha256((file_hash + json.dumps(spec, sort_keys=True)).encode()).hexdigest()


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


def _missing_columns_error(file_label: str, resolver: Resolver, profile: Profile, delimiter: str | None) -> SourceError:
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


def read_tabular(path: Path, profile: Profile, *, limits: InputLimits = DEFAULT_LIMITS) -> list[EntityExtract]:
    """Read a ledger file (or a directory of files) through ``profile``: one extract per entity and file.

    Extract tables hold exactly the raw columns of the entity as text (normalised, not typed) plus
    ``_source_row`` (file line for CSV, sheet row for Excel, 1-based row for Parquet), as RecordBatchReaders
    streaming the mapping SQL from a sandboxed DuckDB connection when the loader reads them. Transcoded copies of
    non-UTF-8 files live in a temporary directory that is removed when the last extract referencing it is
    garbage collected. A row holding a cell over ``limits.max_cell_chars`` is a reject (for Excel, found while
    the stream is read).

    Raises:
        SourceError: structural problems (empty file, header only, missing mapped columns, undecodable bytes,
            too many unparseable lines, a file over ``limits.max_file_bytes``, a workbook that is a zip bomb or
            declares XML entities, a profile expression that is not one scalar expression), naming the file,
            line or column and what was expected.
    """
    path = Path(path)
    by_entity = _files_for(path, profile)
    by_file: dict[Path, list[str]] = {}
    for name, files in by_entity.items():
        for f in files:
            by_file.setdefault(f, []).append(name)
    workdir = tempfile.TemporaryDirectory(prefix="relance-tabular-")
    extracts: list[EntityExtract] = []
    for file, entity_names in by_file.items():
        extracts += _read_file(file, entity_names, profile, workdir, limits)
    for ext in extracts:
        # keeps transcoded temp files alive as long as an extract (whose SELECT reads them) is alive
        ext._workdir = workdir  # type: ignore[attr-defined]
    return extracts


def _oversized_rows(
    con: duckdb.DuckDBPyConnection, source_sql: str, columns: list[str], max_chars: int
) -> list[tuple[int, str, dict[str, str | None]]]:
    """(row, reason, row cut short) of the rows of ``source_sql`` holding a text cell over the cap."""
    lengths = ", ".join(f"coalesce(length(CAST({quote_ident(c)} AS VARCHAR)), 0)" for c in columns)
    heads = ", ".join(f"left(CAST({quote_ident(c)} AS VARCHAR), 200)" for c in columns)
    found = con.execute(
        f"SELECT {SOURCE_ROW}, [{lengths}], [{heads}] FROM {source_sql} "
        f"WHERE {oversized_sql(columns, max_chars)} ORDER BY {SOURCE_ROW}"
    ).fetchall()
    out = []
    for row, lens, cells in found:
        i = next(i for i, n in enumerate(lens) if n > max_chars)
        raw = {
            c: (v if n <= max_chars else f"{v}… ({n:,} characters)")
            for c, n, v in zip(columns, lens, cells, strict=True)
        }
        out.append((int(row), oversized_reason(columns[i], int(lens[i]), max_chars), raw))
    return out


def _read_file(
    file: Path,
    entity_names: list[str],
    profile: Profile,
    workdir: tempfile.TemporaryDirectory[str],
    limits: InputLimits,
) -> list[EntityExtract]:
    """Extracts of every entity mapped from one file."""
    reader = profile.reader
    fmt = _file_format(file, reader)
    csv_file: CsvFile | None = None
    sheet: ExcelSheet | None = None
    oversized = 0
    text_columns: list[str] = []
    if fmt == "csv":
        csv_file = CsvFile(file, reader, Path(workdir.name), limits=limits)
        header, label, source_sql = csv_file.header, str(file), ""
        allowed = [csv_file.utf8_path]
        text_columns = header
    elif fmt == "excel":
        sheet = ExcelSheet(file, reader, limits=limits)
        header, label, source_sql = sheet.header, sheet.label, "src_sheet"
        allowed = []
    else:
        parquet = parquet_source(file, limits=limits)
        source_sql, header, label = parquet.sql, parquet.header, str(file)
        oversized, text_columns = parquet.oversized, parquet.text_columns
        allowed = [file]
    with sandbox(allowed) as con:
        return _map_file(con, file, fmt, entity_names, profile, limits, header, label, source_sql, csv_file, sheet,
                         allowed, oversized, text_columns)  # fmt: skip


def _map_file(
    con: duckdb.DuckDBPyConnection,
    file: Path,
    fmt: str,
    entity_names: list[str],
    profile: Profile,
    limits: InputLimits,
    header: list[str],
    label: str,
    source_sql: str,
    csv_file: CsvFile | None,
    sheet: ExcelSheet | None,
    allowed: list[Path],
    oversized: int,
    text_columns: list[str],
) -> list[EntityExtract]:
    """Bind the profile's mapping to one file's columns (on the file's sandbox) and make its extracts."""
    reader = profile.reader
    resolver = Resolver(con, header)
    try:
        selects = {
            name: mapped_select(name, profile.entities[name], resolver, reader, _SOURCE_TOKEN) for name in entity_names
        }
    except ExpressionRefused as exc:
        raise ExpressionRefused(f"{label}: profile {profile.name!r}: {exc}") from None
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
        oversized = csv_file.oversized
    long_rows: list[tuple[int, str, dict[str, str | None]]] = []
    if oversized:
        long_rows = _oversized_rows(con, source_sql, text_columns, limits.max_cell_chars)
        source_sql = f"(SELECT * FROM {source_sql} WHERE NOT ({oversized_sql(text_columns, limits.max_cell_chars)}))"
        log.warning("%s: %d row(s) hold a cell over %d characters: quarantined", label, len(long_rows),
                    limits.max_cell_chars)  # fmt: skip
    file_hash = file_sha256(file)
    extracts = []
    for name in entity_names:
        select = selects[name].replace(_SOURCE_TOKEN, source_sql)
        _check_select(con, select, sheet, label, name, profile)
        entity_rejects = [
            Reject(
                entity=name,
                row_number=line,
                reason=f"line {line} cannot be parsed: {msg}{reject_hint(msg)}",
                raw={"line": raw},
            )
            for line, msg, raw in rejects
        ]
        entity_rejects += [Reject(entity=name, row_number=r, reason=why, raw=raw) for r, why, raw in long_rows]
        table = (
            excel_extract_reader(sheet, select, name, entity_rejects)
            if sheet is not None
            else sandboxed_reader(select, allowed_paths=allowed)
        )
        extracts.append(
            EntityExtract(
                entity=name,
                table=table,
                source_file=str(file.resolve()),
                file_hash=extract_hash(file_hash, profile, name),
                rejects=entity_rejects,
                full_snapshot=profile.full_snapshot,
            )
        )
        log.info("%s: %s mapped by profile %r (%s)", label, name, profile.name, fmt)
    return extracts


def _check_select(
    con: duckdb.DuckDBPyConnection,
    select: str,
    sheet: ExcelSheet | None,
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
