"""SQL expression building: the DuckDB ``SELECT`` that maps one source file's columns onto a raw entity.

A mapping value is a source column name, a YAML constant or a DuckDB SQL expression over source columns; the
columns an expression references are found with DuckDB's own parser, so a missing column is named rather than
failing deep inside DuckDB. Values are never typed here, only normalised as text: numbers lose their thousands
separators and get a decimal point, dates and timestamps are parsed with the profile's strptime format and
keep their original text when they do not parse (the loader's ``TRY_CAST`` then quarantines the row).
"""

from __future__ import annotations

import json
from typing import Any

import duckdb

from relance.raw_schema import ENTITIES
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


def column_refs(con: duckdb.DuckDBPyConnection, expression: str) -> list[str] | None:
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
        refs = column_refs(self.con, value)
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
        refs = column_refs(self.con, condition)
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
    for col, typ in ENTITIES[entity_name].items():
        if col not in mapping.columns:
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
