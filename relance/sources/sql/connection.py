"""Connecting to the database: the SQLAlchemy engine, and the database's errors turned into messages that name
host, port, database and user but never the password."""

from __future__ import annotations

import urllib.parse
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import NoSuchModuleError
from sqlalchemy.pool import NullPool

from relance.sources.sql.config import SqlSourceConfig
from relance.sources.sql.errors import SqlAuthenticationError, SqlConfigError, SqlConnectionError, SqlQueryError

_AUTH_MARKERS = ("password authentication failed", "authentication failed", "access denied", "login failed")


def engine_for(config: SqlSourceConfig) -> Engine:
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


def connection_error(config: SqlSourceConfig, exc: BaseException) -> SqlConnectionError:
    message = _db_message(exc, config.sqlalchemy_url.password)
    cls = SqlAuthenticationError if any(m in message.lower() for m in _AUTH_MARKERS) else SqlConnectionError
    what = "authentication failed" if cls is SqlAuthenticationError else "cannot connect"
    return cls(f"SQL source {config.name!r}: {what}: {_where(config)} ({config.safe_url}): {message}")


def query_error(config: SqlSourceConfig, entity: str, exc: BaseException) -> SqlQueryError:
    message = _db_message(exc, config.sqlalchemy_url.password)
    return SqlQueryError(f"SQL source {config.name!r}, entity {entity!r}: query failed: {message}")
