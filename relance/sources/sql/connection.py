"""Connecting to the database: the SQLAlchemy engine, read-only, and the database's errors turned into messages that
name host, port, database and user but never the password.

Least privilege: a source query is configuration, and a ``SELECT`` can still write (a volatile function that
deletes, a second statement smuggled past the wrapping subquery). Every connection relance opens to a source is
read-only in the database itself, whatever the query says:

* PostgreSQL: the session starts with ``default_transaction_read_only=on`` (libpq ``options``) and every
  transaction begins with ``SET TRANSACTION READ ONLY``, so a query that flips the session default cannot make a
  later transaction writable; any write fails with "cannot execute ... in a read-only transaction";
* SQLite: ``PRAGMA query_only = ON`` on every connection;
* MySQL/MariaDB: ``SET SESSION TRANSACTION READ ONLY`` on every connection;
* other databases: a warning; there only the database role protects the data (give relance a read-only role
  everywhere anyway: the README's ``relance_ro``).
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import NoSuchModuleError
from sqlalchemy.pool import NullPool

from relance.redaction import redact
from relance.sources.sql.config import SqlSourceConfig
from relance.sources.sql.errors import SqlAuthenticationError, SqlConfigError, SqlConnectionError, SqlQueryError

log = logging.getLogger(__name__)

_AUTH_MARKERS = ("password authentication failed", "authentication failed", "access denied", "login failed")
_SESSION_READ_ONLY = {
    "sqlite": "PRAGMA query_only = ON",
    "mysql": "SET SESSION TRANSACTION READ ONLY",
    "mariadb": "SET SESSION TRANSACTION READ ONLY",
}


def engine_for(config: SqlSourceConfig) -> Engine:
    """A pool-less engine whose every connection is read-only in the database (see the module docstring)."""
    url = config.sqlalchemy_url
    backend = url.get_backend_name()
    connect_args: dict[str, Any] = {}
    if backend == "postgresql":
        connect_args["connect_timeout"] = config.connect_timeout_s
        connect_args["application_name"] = f"relance:{config.name}"
        connect_args["options"] = "-c default_transaction_read_only=on"
    try:
        engine = sa.create_engine(url, poolclass=NullPool, connect_args=connect_args)
    except (NoSuchModuleError, ImportError) as exc:
        raise SqlConfigError(
            f"{config.name}: no SQLAlchemy dialect/driver for {url.drivername!r} ({config.safe_url}): {exc}"
        ) from None
    if backend == "postgresql":

        @sa.event.listens_for(engine, "begin")
        def _read_only_transaction(conn: sa.Connection) -> None:
            # on the DBAPI cursor: the Connection may carry stream_results (a server-side cursor cannot run SET)
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute("SET TRANSACTION READ ONLY")
            finally:
                cursor.close()

    elif backend in _SESSION_READ_ONLY:
        statement = _SESSION_READ_ONLY[backend]

        @sa.event.listens_for(engine, "connect")
        def _read_only_session(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            try:
                cursor.execute(statement)
            finally:
                cursor.close()

    else:
        log.warning(
            "SQL source %r: relance cannot make %s connections read-only itself; use a read-only database role",
            config.name,
            backend,
        )
    return engine


def _db_message(exc: BaseException, secrets: list[str]) -> str:
    """The database's own message (first lines, no SQL echo), with every secret of the URL scrubbed."""
    orig = getattr(exc, "orig", None) or exc
    message = " ".join(line.strip() for line in str(orig).strip().splitlines()[:3] if line.strip())
    message = message.split("[SQL:", 1)[0].strip()
    return redact(message, secrets) or type(orig).__name__


def _where(config: SqlSourceConfig) -> str:
    url = config.sqlalchemy_url
    target = f"{url.host or 'localhost'}:{url.port or 'default port'}" if url.host or url.port else "local"
    return f"database {url.database!r} on {target} as user {url.username!r}"


def connection_error(config: SqlSourceConfig, exc: BaseException) -> SqlConnectionError:
    message = _db_message(exc, config.secret_values())
    cls = SqlAuthenticationError if any(m in message.lower() for m in _AUTH_MARKERS) else SqlConnectionError
    what = "authentication failed" if cls is SqlAuthenticationError else "cannot connect"
    return cls(f"SQL source {config.name!r}: {what}: {_where(config)} ({config.safe_url}): {message}")


def query_error(config: SqlSourceConfig, entity: str, exc: BaseException) -> SqlQueryError:
    message = _db_message(exc, config.secret_values())
    return SqlQueryError(f"SQL source {config.name!r}, entity {entity!r}: query failed: {message}")
