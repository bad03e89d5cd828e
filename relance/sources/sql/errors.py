"""What can go wrong reading a declared SQL source: one :class:`~relance.sources.base.SourceError` per kind, so a
caller can tell a bad config from a refused connection, a failing query or a query missing columns."""

from __future__ import annotations

from relance.sources.base import SourceError


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
