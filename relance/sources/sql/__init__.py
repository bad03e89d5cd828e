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
``previous watermark - watermark_overlap <= watermark_column <= new watermark`` are read, where the new watermark
is ``max(watermark_column)`` taken just before reading and ``watermark_overlap`` (ISO 8601 duration in the YAML,
default one day; whole days for a date watermark; other watermark types re-read ``>=`` the stored value) re-reads
a window already read, so a row committed late with an ``updated_at`` at or below the stored maximum is still
loaded. Re-read rows that did not change come back ``unchanged`` (the loader compares each row with its key's
current version by hash), so the overlap costs reads, never duplicates. The extract's ``watermark`` is the new one
as an ISO string (datetimes with a time zone are kept with their offset); ``relance.ingest.load_extracts`` stores
it in ``ops.source_watermarks`` once the load succeeded. Without ``watermark_column`` every read is a full read.
Either way an updated source row (new values, later ``updated_at``) is appended as a new version of its key.

Least privilege: every query runs on a read-only connection (PostgreSQL ``default_transaction_read_only`` and
``SET TRANSACTION READ ONLY``, SQLite ``PRAGMA query_only``, MySQL ``SET SESSION TRANSACTION READ ONLY``; other
databases get a warning to use a read-only role): a query that writes fails and changes nothing.

Rows are streamed (server-side cursor, ``fetchmany``) into an Arrow ``RecordBatchReader`` of text values (the
loader casts with ``TRY_CAST`` and quarantines what does not cast) plus ``_source_row`` (1-based position in the
query result). The database is probed eagerly (connection, columns, new watermark) so that
:func:`load_sql_source` raises the errors below before anything is loaded; each stream opens its own connection
only when the loader starts reading it.

Errors (all :class:`relance.sources.base.SourceError`): :class:`SqlConfigError` (file, field, what was
expected), :class:`SqlConnectionError` / :class:`SqlAuthenticationError` (host, port, database, user; never the
password), :class:`SqlQueryError` (entity, database message) and :class:`SqlColumnsError` (entity, missing
columns by name).

One module per job: :mod:`~relance.sources.sql.config` (the YAML config), :mod:`~relance.sources.sql.errors`,
:mod:`~relance.sources.sql.connection` (engine, error messages without the password),
:mod:`~relance.sources.sql.probe` (columns and watermark window), :mod:`~relance.sources.sql.values` (watermarks
and values as text) and :mod:`~relance.sources.sql.read` (:func:`load_sql_source`).
"""

from relance.sources.sql.config import EntityQuery, SqlSourceConfig, load_sql_config, parse_sql_config, substitute_env
from relance.sources.sql.errors import (
    SqlAuthenticationError,
    SqlColumnsError,
    SqlConfigError,
    SqlConnectionError,
    SqlQueryError,
    SqlSourceError,
)
from relance.sources.sql.read import load_sql_source
from relance.sources.sql.values import watermark_param, watermark_to_str

__all__ = [
    "EntityQuery",
    "SqlAuthenticationError",
    "SqlColumnsError",
    "SqlConfigError",
    "SqlConnectionError",
    "SqlQueryError",
    "SqlSourceConfig",
    "SqlSourceError",
    "load_sql_config",
    "load_sql_source",
    "parse_sql_config",
    "substitute_env",
    "watermark_param",
    "watermark_to_str",
]
