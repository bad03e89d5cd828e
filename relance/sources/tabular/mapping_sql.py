"""SQL expression building: the DuckDB ``SELECT`` that maps one source file's columns onto a raw entity.

A mapping value is a source column name, a YAML constant or a DuckDB SQL expression over source columns; the
columns an expression references are found with DuckDB's own parser, so a missing column is named rather than
failing deep inside DuckDB. Values are never typed here, only normalised as text: numbers lose their thousands
separators and get a decimal point, dates and timestamps are parsed with the profile's strptime format and
keep their original text when they do not parse (the loader's ``TRY_CAST`` then quarantines the row).

Least privilege: a profile is configuration a user may copy from anywhere, and its expressions are SQL. An
expression must be one scalar expression over the file's columns (no subquery, no ``FROM``, no second statement,
no ``*``), checked on DuckDB's parse tree (:class:`ExpressionRefused` otherwise), and the mapping runs on a
:func:`sandbox` connection: in-memory, external access off except for the one file being read, configuration
locked. It holds nothing but the file's rows, so even an expression that slipped past the check could read
neither the warehouse nor any other file, nor write anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from relance.raw_schema import ENTITIES, OPTIONAL_COLUMNS
from relance.sources.amounts import thousands_marks
from relance.sources.base import SOURCE_ROW, SourceError
from relance.sources.tabular.profile import EntityMapping, MappingValue, ReaderOptions


def quote_ident(identifier: str) -> str:
    """A quoted SQL identifier."""
    return '"' + identifier.replace('"', '""') + '"'


def sql_string(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _literal(value: bool | int | float | None) -> str:
    """A YAML scalar (``false``, ``30``, ``null``) as a SQL literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


STREAM_BATCH_ROWS = 100_000


class ExpressionRefused(SourceError):
    """A profile expression that is not one scalar expression over the file's columns."""


def sandbox(allowed_paths: Sequence[Path | str] = ()) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that can read only ``allowed_paths``: no other file, no database, no extension, no
    configuration change. Profile expressions run here, never on the warehouse connection."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        if allowed_paths:
            paths = ", ".join(sql_string(str(Path(p).resolve())) for p in allowed_paths)
            con.execute(f"SET allowed_paths = [{paths}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def sandboxed_reader(
    select: str,
    *,
    allowed_paths: Sequence[Path | str] = (),
    sources: Mapping[str, tuple[pa.Schema, Callable[[], pa.RecordBatchReader]]] | None = None,
    batch_rows: int = STREAM_BATCH_ROWS,
) -> pa.RecordBatchReader:
    """The rows of ``select`` run on a :func:`sandbox` connection, streamed as Arrow batches.

    ``sources`` are Arrow streams registered under a name (an Excel sheet), made when the reader is first read.
    The schema is bound now (no data read); the connection opens when the loader starts reading.
    """
    sources = dict(sources or {})
    with sandbox(allowed_paths) as scratch:
        for name, (schema, _) in sources.items():
            scratch.register(name, pa.Table.from_batches([], schema=schema))
        schema = scratch.execute(f"SELECT * FROM ({select}) LIMIT 0").fetch_arrow_table().schema

    def batches() -> Iterator[pa.RecordBatch]:
        con = sandbox(allowed_paths)
        try:
            for name, (_, make) in sources.items():
                con.register(name, make())
            for batch in con.execute(select).fetch_record_batch(batch_rows):
                yield batch.cast(schema) if batch.schema != schema else batch
        finally:
            con.close()

    return pa.RecordBatchReader.from_batches(schema, batches())


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    """Every object of DuckDB's JSON parse tree (``json_serialize_sql``), depth first, parents before children."""
    if isinstance(tree, dict):
        yield tree
        for v in tree.values():
            yield from _nodes(v)
    elif isinstance(tree, list):
        for v in tree:
            yield from _nodes(v)


def _refusal(statements: list[Any]) -> str | None:
    """Why a parsed ``SELECT <expression>`` is not one scalar expression, or ``None`` when it is."""
    if len(statements) != 1:
        return "it holds more than one SQL statement"
    node = statements[0].get("node", {})
    if node.get("type") != "SELECT_NODE" or len(node.get("select_list", [])) != 1:
        return "it is not a single expression"
    if (node.get("from_table") or {}).get("type", "EMPTY") != "EMPTY":
        return "it reads a table (FROM)"
    if any(node.get(k) for k in ("where_clause", "having", "qualify", "group_expressions", "modifiers")):
        return "it is a query, not an expression"
    if (node.get("cte_map") or {}).get("map"):
        return "it holds a WITH clause"
    for n in _nodes(node["select_list"]):
        if n.get("class") == "SUBQUERY":
            return "it holds a subquery"
        if n.get("class") == "STAR":
            return "it holds a * (all columns)"
    return None


def column_refs(con: duckdb.DuckDBPyConnection, expression: str) -> list[str] | None:
    """Column names an SQL expression references (via DuckDB's parser); ``None`` if it does not parse.

    Raises:
        ExpressionRefused: it parses but is not one scalar expression (subquery, ``FROM``, several statements).
    """
    try:
        tree = con.execute("SELECT json_serialize_sql(?)", [f"SELECT {expression}"]).fetchone()[0]  # type: ignore[index]
    except duckdb.Error:
        return None
    parsed = json.loads(tree)
    if parsed.get("error"):
        return None
    why = _refusal(parsed["statements"])
    if why is not None:
        raise ExpressionRefused(
            f"expression {expression!r} is refused: {why}; a profile expression may only use the file's columns, "
            "constants and scalar functions"
        )
    return [
        n["column_names"][-1]
        for n in _nodes(parsed["statements"])
        if n.get("class") == "COLUMN_REF" and n.get("column_names")
    ]


class Resolver:
    """Turns mapping values into SQL over one file's columns, collecting missing-column problems."""

    def __init__(self, con: duckdb.DuckDBPyConnection, header: list[str]) -> None:
        self.con = con
        self.header = header
        self.by_lower = {h.lower(): h for h in header}
        self.used: set[str] = set()
        self.missing: dict[str, list[str]] = {}  # missing source column -> "entity.column" using it

    def expr(self, value: MappingValue, where: str) -> str:
        """SQL for a mapping value: a source column (quoted), a YAML constant, or an SQL expression."""
        if not isinstance(value, str):
            return _literal(value)
        if value in self.header:
            self.used.add(value)
            return quote_ident(value)
        try:
            refs = column_refs(self.con, value)
        except ExpressionRefused as exc:
            raise ExpressionRefused(f"{where}: {exc}") from None
        if refs is None:
            # not SQL: it can only be meant as a column name (e.g. "N° facture") that the file lacks
            self.missing.setdefault(value, []).append(where)
            return "NULL"
        self._note(refs, where)
        return f"({value})"

    def _note(self, refs: list[str], where: str) -> None:
        """Record the source columns an expression uses, and those the file lacks."""
        for ref in refs:
            actual = self.by_lower.get(ref.lower())
            if actual is None:
                self.missing.setdefault(ref, []).append(where)
            else:
                self.used.add(actual)

    def condition(self, condition: str, entity_name: str) -> str:
        """A ``where`` filter over source columns, its columns checked like a mapping value's."""
        try:
            refs = column_refs(self.con, condition)
        except ExpressionRefused as exc:
            raise ExpressionRefused(f"{entity_name}.where: {exc}") from None
        if refs is None:
            raise SourceError(f"entity {entity_name}: 'where' is not a valid SQL expression: {condition!r}")
        self._note(refs, f"{entity_name}.where")
        return f"({condition})"


def number_expr(sql: str, decimal: str, thousands: str | None) -> str:
    """Normalise a money/count text to DuckDB's '1234.56' form (thousands removed, decimal comma -> point)."""
    if decimal == "." and thousands is None:
        return sql
    out = f"trim(CAST({sql} AS VARCHAR))"
    if thousands is not None:
        for sep in thousands_marks(thousands):
            out = f"replace({out}, {sql_string(sep)}, '')"
    if decimal == ",":
        out = f"replace({out}, ',', '.')"
    return out


def temporal_expr(sql: str, fmt: str | None, target: str) -> str:
    """Parse text with ``fmt``; a value that does not parse keeps its original text (the loader quarantines it)."""
    if fmt is None:
        return sql
    text = f"trim(CAST({sql} AS VARCHAR))"
    return f"coalesce(CAST(CAST(try_strptime({text}, {sql_string(fmt)}) AS {target}) AS VARCHAR), {text})"


def mapped_select(
    entity_name: str, mapping: EntityMapping, resolver: Resolver, reader: ReaderOptions, source_sql: str
) -> str:
    """The SELECT producing exactly the raw columns of ``entity_name`` (+ ``_source_row``) from ``source_sql``."""
    cols = []
    optional = OPTIONAL_COLUMNS.get(entity_name, ())
    for col, typ in ENTITIES[entity_name].items():
        value = mapping.columns.get(col)
        # unmapped, or an optional column mapped to a source column this file does not have (an export written
        # before the column existed): NULL
        absent = isinstance(value, str) and col in optional and value.lower() not in resolver.by_lower
        if col not in mapping.columns or absent:
            cols.append(f"CAST(NULL AS VARCHAR) AS {quote_ident(col)}")
            continue
        sql = resolver.expr(mapping.columns[col], f"{entity_name}.{col}")
        if typ.startswith("DECIMAL") or typ in ("INTEGER", "BIGINT", "DOUBLE"):
            sql = number_expr(sql, reader.decimal, reader.thousands)
        elif typ == "DATE":
            sql = temporal_expr(sql, reader.date_format, "DATE")
        elif typ == "TIMESTAMP":
            sql = temporal_expr(sql, reader.timestamp_format, "TIMESTAMP")
        cols.append(f"{sql} AS {quote_ident(col)}")
    where = f" WHERE {resolver.condition(mapping.where, entity_name)}" if mapping.where else ""
    select = f"SELECT {', '.join(cols)}, {SOURCE_ROW} FROM {source_sql} AS src{where}"
    if mapping.distinct:
        names = ", ".join(quote_ident(c) for c in ENTITIES[entity_name])
        select = (
            f"SELECT {names}, min({SOURCE_ROW}) AS {SOURCE_ROW} FROM ({select}) AS mapped "
            f"GROUP BY ALL ORDER BY {SOURCE_ROW}"
        )
    return select
