"""Declared SQL source: read the canonical entities straight from an ERP / accounting database.

A YAML file declares the connection and one ``SELECT`` per canonical entity (``relance.raw_schema.ENTITIES``)
whose result columns are the canonical columns (alias them: ``SELECT f.numero AS invoice_id, ...``)::

    name: erp                      # the source name: watermarks are stored per (name, entity)
    url: postgresql+psycopg://relance_ro:${ERP_DB_PASSWORD}@erp-db:5432/erp
    chunk_size: 5000               # rows per fetch / Arrow batch (optional)
    entities:
      invoices:
        query: |
          SELECT f.numero AS invoice_id, ..., f.modifie_le AS updated_at FROM factures f
        watermark_column: updated_at   # optional: incremental reads

``url`` is a SQLAlchemy URL. ``${VAR}`` placeholders are replaced from the environment so that secrets live
there, not in the file; a substituted value is percent-encoded (a password may hold ``@``, ``/``, ``:``), except
when the whole ``url`` is one placeholder, which is then taken verbatim. The password is never logged:
``source_file`` and every message render the URL with the password hidden.

Incremental reads: with ``watermark_column``, the query is wrapped as a subquery and only rows with
``previous watermark < watermark_column <= new watermark`` are read, where the new watermark is
``max(watermark_column)`` taken just before reading. Rows committed meanwhile with a later value are left for the
next read, so nothing is read twice or skipped. The extract's ``watermark`` is the new one as an ISO string
(datetimes with a time zone are kept with their offset); ``relance.ingest.load_extracts`` stores it in
``ops.source_watermarks`` once the load succeeded. Without ``watermark_column`` every read is a full read and
the loader's row-hash deduplication keeps raw append-only without duplicates. Either way an updated source row
(new values, later ``updated_at``) is appended as a new version of its natural key.

Rows are streamed (server-side cursor, ``fetchmany``) into an Arrow ``RecordBatchReader`` of text values (the
loader casts with ``TRY_CAST`` and quarantines what does not cast) plus ``_source_row`` (1-based position in the
query result). The database is probed eagerly (connection, columns, new watermark) so that
:func:`load_sql_source` raises the errors below before anything is loaded; each stream opens its own connection
only when the loader starts reading it.

Errors (all :class:`relance.sources.base.SourceError`): :class:`SqlConfigError` (file, field, what was
expected), :class:`SqlConnectionError` / :class:`SqlAuthenticationError` (host, port, database, user; never the
password), :class:`SqlQueryError` (entity, database message) and :class:`SqlColumnsError` (entity, missing
columns by name).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from relance.raw_schema import ENTITIES
from relance.sources.base import SOURCE_ROW, EntityExtract, SourceError, text_schema

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 10_000
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_WATERMARK_ALIAS = "_relance_watermark"
_AUTH_MARKERS = ("password authentication failed", "authentication failed", "access denied", "login failed")


# --------------------------------------------------------------------------------------------------- errors
class SqlSourceError(SourceError):
    """A SQL source cannot be read."""


class SqlConfigError(SqlSourceError):
    """The YAML config is unreadable or invalid (file, field, what was expected)."""


class SqlConnectionError(SqlSourceError):
    """The database cannot be reached (refused, unknown host, timeout, missing database)."""


class SqlAuthenticationError(SqlConnectionError):
    """The database refused the credentials (the message never holds the password)."""


class SqlQueryError(SqlSourceError):
    """An entity's query failed in the database."""


class SqlColumnsError(SqlQueryError):
    """An entity's query does not return the canonical columns (or the watermark column)."""


# --------------------------------------------------------------------------------------------------- config
class EntityQuery(BaseModel):
    """How to read one canonical entity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    query: str = Field(min_length=1, description="a SELECT returning the entity's canonical columns, aliased")
    watermark_column: str | None = Field(
        default=None, description="a column of the query's result that grows when a row is added or changed"
    )

    @field_validator("query")
    @classmethod
    def _one_select(cls, value: str) -> str:
        text = value.strip().rstrip(";").strip()
        if not re.match(r"(?is)^(\(|select\b|with\b)", text):
            first = text.split(None, 1)[0] if text else ""
            raise ValueError(f"query must be a SELECT (or WITH ... SELECT), not one starting with {first!r}")
        return text

    @field_validator("watermark_column")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", value):
            raise ValueError(f"watermark_column must be a plain column name of the query's result, not {value!r}")
        return value


class SqlSourceConfig(BaseModel):
    """A declared SQL source: where the database is and one query per canonical entity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$", description="source name (watermark key)")
    url: SecretStr = Field(description="SQLAlchemy URL, placeholders already substituted")
    entities: dict[str, EntityQuery] = Field(min_length=1)
    chunk_size: int = Field(default=DEFAULT_CHUNK_SIZE, gt=0, le=1_000_000)
    connect_timeout_s: int = Field(default=10, gt=0, description="connection timeout (PostgreSQL)")

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: SecretStr) -> SecretStr:
        try:
            make_url(value.get_secret_value())
        except (ArgumentError, ValueError):
            raise ValueError(
                "url is not a SQLAlchemy URL (expected dialect+driver://user:password@host:port/database)"
            ) from None
        return value

    @field_validator("entities")
    @classmethod
    def _known_entities(cls, value: dict[str, EntityQuery]) -> dict[str, EntityQuery]:
        unknown = [name for name in value if name not in ENTITIES]
        if unknown:
            raise ValueError(f"unknown entity(ies) {', '.join(unknown)}; known: {', '.join(ENTITIES)}")
        return value

    @property
    def sqlalchemy_url(self) -> URL:
        """The URL, with its password (for connecting only)."""
        return make_url(self.url.get_secret_value())

    @property
    def safe_url(self) -> str:
        """The URL with the password hidden, for messages, logs and ``source_file``."""
        return self.sqlalchemy_url.render_as_string(hide_password=True)


def substitute_env(value: str, environ: Mapping[str, str]) -> str:
    """Replace ``${VAR}`` placeholders of a URL from ``environ``.

    A value substituted inside a longer URL is percent-encoded, so a password may contain any character; a URL
    that is exactly one placeholder is replaced verbatim. Raises :class:`SqlConfigError` naming every variable
    that is not set (never their values).
    """
    missing = sorted({m for m in _PLACEHOLDER.findall(value) if m not in environ})
    if missing:
        raise SqlConfigError(f"url: environment variable(s) not set: {', '.join(missing)}")
    whole = _PLACEHOLDER.fullmatch(value.strip())
    if whole:
        return environ[whole.group(1)]
    return _PLACEHOLDER.sub(lambda m: urllib.parse.quote(environ[m.group(1)], safe=""), value)


def _format_validation_error(where: str, exc: ValidationError) -> str:
    """One line per problem: ``field.path: message`` (input values left out: they may hold secrets)."""
    lines = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = ".".join(str(part) for part in err["loc"]) or "(top level)"
        lines.append(f"  {loc}: {err['msg']}")
    return f"{where}: invalid SQL source config:\n" + "\n".join(lines)


def parse_sql_config(
    data: Mapping[str, Any], *, environ: Mapping[str, str] | None = None, where: str = "config"
) -> SqlSourceConfig:
    """Validate a config mapping (as read from YAML), substituting ``${VAR}`` in ``url`` from ``environ``.

    Args:
        data: the mapping with ``name``, ``url``, ``entities`` and optional ``chunk_size``/``connect_timeout_s``.
        environ: where placeholders are looked up; ``os.environ`` when ``None``.
        where: what to call the config in error messages (the file path).

    Raises:
        SqlConfigError: with the file, field and what was expected.
    """
    if not isinstance(data, Mapping):
        raise SqlConfigError(f"{where}: expected a mapping with name, url and entities, got {type(data).__name__}")
    values = dict(data)
    url = values.get("url")
    if isinstance(url, str):
        try:
            values["url"] = substitute_env(url, os.environ if environ is None else environ)
        except SqlConfigError as exc:
            raise SqlConfigError(f"{where}: {exc}") from None
    try:
        return SqlSourceConfig.model_validate(values)
    except ValidationError as exc:
        raise SqlConfigError(_format_validation_error(where, exc)) from None


def load_sql_config(path: Path | str, *, environ: Mapping[str, str] | None = None) -> SqlSourceConfig:
    """Read and validate a SQL source YAML file (see the module docstring for its layout).

    Raises:
        SqlConfigError: missing file, invalid YAML, unset ``${VAR}``, unknown entity, bad field.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SqlConfigError(f"{path}: cannot read SQL source config: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SqlConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_sql_config(data, environ=environ, where=str(path))


# --------------------------------------------------------------------------------------------------- values
def watermark_to_str(value: Any) -> str:
    """ISO text of a watermark value as stored in ``ops.source_watermarks``."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def watermark_param(text: str) -> Any:
    """Python value to bind for a stored watermark: int, date or datetime when it reads as one, else the text.

    Typed parameters let the database compare with its own column type (``timestamp``, ``timestamptz``, ``date``,
    ``bigint``) instead of comparing text.
    """
    stripped = text.strip()
    if re.fullmatch(r"[+-]?\d+", stripped):
        return int(stripped)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", stripped):
        return date.fromisoformat(stripped)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}.*", stripped):
        try:
            return datetime.fromisoformat(stripped)
        except ValueError:
            return text
    return text


def _text(value: Any) -> str | None:
    """A database value as text the loader's ``TRY_CAST`` understands (timestamps in UTC, no offset)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


# --------------------------------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class _Plan:
    """What to read for one entity, decided by the probe."""

    entity: str
    sql: str
    params: dict[str, Any]
    result_columns: dict[str, str]  # canonical column -> column name as the database returns it
    incremental: bool  # the entity has a watermark_column
    previous_watermark: str | None
    new_watermark: str | None
    rows_expected: int | None  # rows past the previous watermark (incremental reads only)


def _engine(config: SqlSourceConfig) -> Engine:
    url = config.sqlalchemy_url
    connect_args: dict[str, Any] = {}
    if url.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = config.connect_timeout_s
        connect_args["application_name"] = f"relance:{config.name}"
    try:
        return sa.create_engine(url, poolclass=NullPool, connect_args=connect_args)
    except (NoSuchModuleError, ImportError) as exc:
        raise SqlConfigError(
            f"{config.name}: no SQLAlchemy dialect/driver for {url.drivername!r} ({config.safe_url}): {exc}"
        ) from None


def _db_message(exc: BaseException, password: str | None) -> str:
    """The database's own message (first lines, no SQL echo), with the password scrubbed just in case."""
    orig = getattr(exc, "orig", None) or exc
    message = " ".join(line.strip() for line in str(orig).strip().splitlines()[:3] if line.strip())
    message = message.split("[SQL:", 1)[0].strip()
    if password:
        message = message.replace(password, "***")
        quoted = urllib.parse.quote(password, safe="")
        if quoted != password:
            message = message.replace(quoted, "***")
    return message or type(orig).__name__


def _where(config: SqlSourceConfig) -> str:
    url = config.sqlalchemy_url
    target = f"{url.host or 'localhost'}:{url.port or 'default port'}" if url.host or url.port else "local"
    return f"database {url.database!r} on {target} as user {url.username!r}"


def _connection_error(config: SqlSourceConfig, exc: BaseException) -> SqlConnectionError:
    message = _db_message(exc, config.sqlalchemy_url.password)
    cls = SqlAuthenticationError if any(m in message.lower() for m in _AUTH_MARKERS) else SqlConnectionError
    what = "authentication failed" if cls is SqlAuthenticationError else "cannot connect"
    return cls(f"SQL source {config.name!r}: {what}: {_where(config)} ({config.safe_url}): {message}")


def _query_error(config: SqlSourceConfig, entity: str, exc: BaseException) -> SqlQueryError:
    message = _db_message(exc, config.sqlalchemy_url.password)
    return SqlQueryError(f"SQL source {config.name!r}, entity {entity!r}: query failed: {message}")


def _probe(conn: sa.Connection, config: SqlSourceConfig, entity: str, previous: str | None) -> _Plan:
    """Check the query's columns and take the new watermark; build the streaming query for one entity."""
    spec = config.entities[entity]
    quote = conn.dialect.identifier_preparer.quote
    try:
        result = conn.execute(sa.text(f"SELECT * FROM ({spec.query}) src WHERE 1 = 0"))
        returned = list(result.keys())
        result.close()
    except DBAPIError as exc:
        conn.rollback()
        raise _query_error(config, entity, exc) from None
    by_lower = {name.lower(): name for name in returned}
    canonical = list(ENTITIES[entity])
    missing = [c for c in canonical if c.lower() not in by_lower]
    wm = spec.watermark_column
    if wm is not None and wm.lower() not in by_lower:
        missing.append(f"{wm} (watermark_column)")
    if missing:
        raise SqlColumnsError(
            f"SQL source {config.name!r}, entity {entity!r}: the query does not return column(s) "
            f"{', '.join(missing)} (returned: {', '.join(returned) or 'none'}; expected the canonical columns "
            f"{', '.join(canonical)}, aliased with AS)"
        )
    extra = [n for n in returned if n.lower() not in {c.lower() for c in canonical} and n.lower() != (wm or "").lower()]
    if extra:
        log.info("%s.%s: ignoring non-canonical column(s) %s", config.name, entity, ", ".join(extra))
    result_columns = {c: by_lower[c.lower()] for c in canonical}
    select = ", ".join(f"src.{quote(result_columns[c])} AS {quote(c)}" for c in canonical)
    params: dict[str, Any] = {}
    new: str | None = None
    rows_expected: int | None = None
    if wm is None:
        sql = f"SELECT {select} FROM ({spec.query}) src"
    else:
        wm_col = f"src.{quote(by_lower[wm.lower()])}"
        after = f"{wm_col} > :previous_watermark" if previous is not None else "1 = 1"
        if previous is not None:
            params["previous_watermark"] = watermark_param(previous)
        try:
            count, top = conn.execute(
                sa.text(f"SELECT count(*), max({wm_col}) FROM ({spec.query}) src WHERE {after}"), params
            ).one()
        except DBAPIError as exc:
            conn.rollback()
            raise _query_error(config, entity, exc) from None
        rows_expected = int(count)
        if top is None:  # nothing new: read nothing, keep the stored watermark
            new = previous
            sql = f"SELECT {select} FROM ({spec.query}) src WHERE 1 = 0"
            params = {}
        else:
            new = watermark_to_str(top)
            params["new_watermark"] = top
            sql = f"SELECT {select} FROM ({spec.query}) src WHERE {after} AND {wm_col} <= :new_watermark"
    return _Plan(entity, sql, params, result_columns, wm is not None, previous, new, rows_expected)


def _batches(engine: Engine, config: SqlSourceConfig, plan: _Plan, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Stream the plan's rows in chunks of ``chunk_size`` as Arrow batches of text; one connection per stream."""
    columns = list(ENTITIES[plan.entity])
    row_number = 0
    try:
        conn = engine.connect()
    except DBAPIError as exc:
        raise _connection_error(config, exc) from None
    with conn:
        try:
            result = conn.execution_options(stream_results=True, max_row_buffer=config.chunk_size).execute(
                sa.text(plan.sql), plan.params
            )
            try:
                while rows := result.fetchmany(config.chunk_size):
                    data: dict[str, list[Any]] = {c: [_text(row[i]) for row in rows] for i, c in enumerate(columns)}
                    data[SOURCE_ROW] = list(range(row_number + 1, row_number + len(rows) + 1))
                    row_number += len(rows)
                    yield pa.RecordBatch.from_pydict(data, schema=schema)
            finally:
                result.close()
        except DBAPIError as exc:
            raise _query_error(config, plan.entity, exc) from None
    log.info("%s.%s: streamed %d row(s)", config.name, plan.entity, row_number)


def _file_hash(query: str, plan: _Plan) -> str:
    """sha256 of what was asked: the query and the watermark window (previous, new).

    A full read (no ``watermark_column``) reads whatever the table holds now, so its hash also carries the read
    time: the same query is never mistaken by the loader for an already loaded, unchanged file.
    """
    window: list[str | None] = [plan.previous_watermark, plan.new_watermark]
    if not plan.incremental:
        window = [datetime.now(UTC).isoformat()]
    payload = json.dumps({"query": query, "watermark": window, "incremental": plan.incremental})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def load_sql_source(
    config_path_or_model: Path | str | SqlSourceConfig,
    *,
    watermarks: Mapping[str, str],
    entities: Sequence[str] | None = None,
) -> list[EntityExtract]:
    """Read a declared SQL source into one streamed :class:`EntityExtract` per configured entity.

    Args:
        config_path_or_model: a YAML config path (``${VAR}`` substituted from the environment) or a validated
            :class:`SqlSourceConfig`.
        watermarks: last stored watermark per entity for this source (``relance.ingest.read_watermarks(con,
            config.name)``); entities without one are read in full.
        entities: read only these configured entities (default: all, in raw-schema order).

    Returns:
        Extracts whose ``table`` is a ``RecordBatchReader`` streaming the rows on first read, ``source_file``
        ``<url without password>#<entity>``, ``file_hash`` the sha256 of the query and watermark window, and
        ``watermark`` the new high-water mark (``None`` for entities without ``watermark_column``).

    Raises:
        SqlConfigError, SqlConnectionError, SqlAuthenticationError, SqlQueryError, SqlColumnsError: all
        :class:`SourceError`, raised before any row is streamed.
    """
    config = (
        config_path_or_model
        if isinstance(config_path_or_model, SqlSourceConfig)
        else load_sql_config(config_path_or_model)
    )
    wanted = [e for e in ENTITIES if e in config.entities]
    if entities is not None:
        unknown = [e for e in entities if e not in config.entities]
        if unknown:
            raise SqlConfigError(
                f"SQL source {config.name!r}: entity(ies) {', '.join(unknown)} not configured "
                f"(configured: {', '.join(config.entities)})"
            )
        wanted = [e for e in wanted if e in entities]
    engine = _engine(config)
    plans: list[_Plan] = []
    try:
        conn = engine.connect()
    except DBAPIError as exc:
        raise _connection_error(config, exc) from None
    except SQLAlchemyError as exc:
        raise SqlConnectionError(f"SQL source {config.name!r}: cannot connect to {config.safe_url}: {exc}") from None
    with conn:
        for name in wanted:
            plans.append(_probe(conn, config, name, watermarks.get(name)))
    extracts = []
    for plan in plans:
        schema = text_schema(ENTITIES[plan.entity])
        reader = pa.RecordBatchReader.from_batches(schema, _batches(engine, config, plan, schema))
        extracts.append(
            EntityExtract(
                entity=plan.entity,
                table=reader,
                source_file=f"{config.safe_url}#{plan.entity}",
                file_hash=_file_hash(config.entities[plan.entity].query, plan),
                watermark=plan.new_watermark,
            )
        )
        if plan.incremental:
            log.info(
                "%s.%s: %s row(s) past watermark %s, new watermark %s",
                config.name,
                plan.entity,
                plan.rows_expected,
                plan.previous_watermark,
                plan.new_watermark,
            )
        else:
            log.info("%s.%s: full read", config.name, plan.entity)
    return extracts
