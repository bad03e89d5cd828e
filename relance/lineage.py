"""Lineage identifiers gathered once per run and stamped on every row and message, and the reads that follow them.

The chain: reminder_key -> ops.reminders_planned (flow run id, model version, MLflow run id, dbt invocation id)
-> ml.ml_invoice_features (dbt invocation id) -> staging (raw_batch_id) -> raw rows (_batch_id, _file_hash).
The read functions at the end look each link up in the warehouse; ``relance.lineage_trace`` assembles them (with
the send ledger, the dbt archive, MLflow and Prefect) into the tree ``relance lineage show`` prints.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from collections.abc import Sequence
from datetime import date, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)


def package_version() -> str:
    """The installed relance version (what an installed wheel can say about its code)."""
    try:
        return metadata.version("relance")
    except metadata.PackageNotFoundError:
        return "unknown"


def git_sha(where: Path | None = None) -> str:
    """The commit of the checkout the code runs from (default: the one holding this package), or 'unknown'
    outside a git checkout (an installed wheel: see :func:`package_version`)."""
    where = where or Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def dbt_invocation_id(target_dir: Path) -> str:
    """The invocation id of the last dbt command, from its run_results.json (written by every build)."""
    path = target_dir / "run_results.json"
    try:
        return json.loads(path.read_text())["metadata"]["invocation_id"]
    except (OSError, KeyError, ValueError) as exc:
        raise RuntimeError(f"cannot read the dbt invocation id from {path}: {exc}") from exc


DBT_ARTIFACTS = ("run_results.json", "manifest.json")


def archive_dbt_invocation(target_dir: Path, archive_root: Path) -> str:
    """Keep the artefacts of the last dbt command under ``archive_root/<invocation_id>/``; return the id.

    The target directory is overwritten by every dbt command and the ML tables are rebuilt, so without this a
    dbt invocation id stamped on a prediction or a reminder would stop resolving after the next run.
    """
    invocation_id = dbt_invocation_id(target_dir)
    dest = archive_root / invocation_id
    dest.mkdir(parents=True, exist_ok=True)
    for name in DBT_ARTIFACTS:
        if (target_dir / name).exists():
            shutil.copy2(target_dir / name, dest / name)
    return invocation_id


# --- reads for `relance lineage show` (relance.lineage_trace builds the tree from them) ---------------------------
# Each returns plain dicts (column -> value) or None/[] when the row, or the whole relation, is not there: a
# warehouse built by an earlier version, or rebuilt since, may lack a table, and lineage then says what is missing.


def _relation_exists(con: duckdb.DuckDBPyConnection, relation: str) -> bool:
    from relance.warehouse import relation_exists

    return relation_exists(con, relation)


def _dicts(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] = ()) -> list[dict[str, Any]]:
    cur = con.execute(sql, list(params))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    schema, name = relation.split(".")
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
        "ORDER BY ordinal_position",
        [schema, name],
    ).fetchall()
    return [r[0] for r in rows]


def planned_reminder(con: duckdb.DuckDBPyConnection, reminder_key: str) -> dict[str, Any] | None:
    """The row of ``ops.reminders_planned`` (the plan and the lineage ids it was decided with)."""
    if not _relation_exists(con, "ops.reminders_planned"):
        return None
    rows = _dicts(con, "SELECT * FROM ops.reminders_planned WHERE reminder_key = ?", [reminder_key])
    return rows[0] if rows else None


def reminder_keys_starting(con: duckdb.DuckDBPyConnection, prefix: str, limit: int = 10) -> list[str]:
    """Planned reminder keys that start with ``prefix`` (a key is long: people paste its first characters)."""
    if not _relation_exists(con, "ops.reminders_planned"):
        return []
    rows = con.execute(
        "SELECT reminder_key FROM ops.reminders_planned WHERE starts_with(reminder_key, ?) ORDER BY reminder_key "
        f"LIMIT {int(limit)}",
        [prefix],
    ).fetchall()
    return [r[0] for r in rows]


def reminders_of_invoice(con: duckdb.DuckDBPyConnection, invoice_id: str) -> list[dict[str, Any]]:
    """reminder_key, as_of_date, channel, step of the planned reminders about an invoice (alone or grouped with
    others in one message), newest first."""
    if not _relation_exists(con, "ops.reminders_planned"):
        return []
    grouped = "invoice_ids" in _columns(con, "ops.reminders_planned")
    where = "invoice_id = ?" + (" OR contains(coalesce(invoice_ids, ''), ?)" if grouped else "")
    params: list[object] = [invoice_id] + ([json.dumps(invoice_id)] if grouped else [])
    select = "reminder_key, as_of_date, channel, step, invoice_id" + (", invoice_ids" if grouped else "")
    rows = _dicts(
        con, f"SELECT {select} FROM ops.reminders_planned WHERE {where} ORDER BY as_of_date DESC, planned_at DESC",
        params,
    )  # fmt: skip
    out = []
    for r in rows:  # the text match is a pre-filter: keep the rows whose invoice list holds the id
        ids = parse_json_list(r.pop("invoice_ids", None)) or [r["invoice_id"]]
        if invoice_id in ids or r["invoice_id"] == invoice_id:
            out.append(r)
    return out


def decision_of_reminder(con: duckdb.DuckDBPyConnection, reminder_key: str) -> dict[str, Any] | None:
    """The engine's decision (``ops.reminder_decisions``) that chose this reminder."""
    if not _relation_exists(con, "ops.reminder_decisions"):
        return None
    rows = _dicts(
        con, "SELECT * FROM ops.reminder_decisions WHERE reminder_key = ? ORDER BY as_of_date DESC", [reminder_key]
    )
    return rows[0] if rows else None


def prediction(con: duckdb.DuckDBPyConnection, invoice_id: str, as_of_date: date) -> dict[str, Any] | None:
    """The stored score of an invoice on a date (``ops.predictions``; a rescoring of the date replaced it)."""
    if not _relation_exists(con, "ops.predictions"):
        return None
    rows = _dicts(
        con, "SELECT * FROM ops.predictions WHERE invoice_id = ? AND as_of_date = ?", [invoice_id, as_of_date]
    )
    return rows[0] if rows else None


def prediction_dates(con: duckdb.DuckDBPyConnection, invoice_id: str) -> list[date]:
    """The as-of dates an invoice was scored on, newest first."""
    if not _relation_exists(con, "ops.predictions"):
        return []
    rows = con.execute(
        "SELECT as_of_date FROM ops.predictions WHERE invoice_id = ? ORDER BY as_of_date DESC", [invoice_id]
    ).fetchall()
    return [r[0] for r in rows]


def invoice_summary(con: duckdb.DuckDBPyConnection, invoice_id: str) -> dict[str, Any] | None:
    """The invoice as ``marts.invoices`` last saw it, else its latest raw version; None if relance never saw it."""
    if _relation_exists(con, "marts.invoices"):
        rows = _dicts(
            con,
            "SELECT * EXCLUDE (raw_batch_id) FROM marts.invoices WHERE invoice_id = ? ORDER BY as_of_date DESC LIMIT 1",
            [invoice_id],
        )
        if rows:
            return rows[0]
    if _relation_exists(con, "raw.invoices"):
        rows = _dicts(
            con,
            "SELECT invoice_id, customer_id, document_type, issue_date, due_date, amount, currency FROM raw.invoices "
            "WHERE invoice_id = ? ORDER BY _loaded_at DESC, _load_seq DESC LIMIT 1",
            [invoice_id],
        )
        if rows:
            return rows[0]
    return None


def known_invoice_ids(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every invoice id relance holds (raw rows and scores): where a mistyped id looks for its nearest names."""
    parts = [f"SELECT invoice_id FROM {r}" for r in ("raw.invoices", "ops.predictions") if _relation_exists(con, r)]
    if not parts:
        return []
    return [r[0] for r in con.execute(" UNION ".join(parts)).fetchall() if r[0] is not None]


def invoice_features(con: duckdb.DuckDBPyConnection, invoice_id: str, as_of_date: date) -> dict[str, Any] | None:
    """The feature row of an invoice on a date (``ml.ml_invoice_features``: as the last dbt build left it)."""
    if not _relation_exists(con, "ml.ml_invoice_features"):
        return None
    rows = _dicts(
        con, "SELECT * FROM ml.ml_invoice_features WHERE invoice_id = ? AND as_of_date = ?", [invoice_id, as_of_date]
    )
    return rows[0] if rows else None


#: The raw rows that feed an invoice's own features: (entity, the natural-key column, how its keys are chosen).
#: ``?`` are the invoice id, except for customers (the customer id).
_INVOICE_RAW_ROWS: tuple[tuple[str, str, str], ...] = (
    ("invoices", "invoice_id", "invoice_id = ?"),
    ("customers", "customer_id", "customer_id = ?"),
    ("payment_allocations", "payment_id", "invoice_id = ?"),
    ("payments", "payment_id", "payment_id IN (SELECT payment_id FROM raw.payment_allocations WHERE invoice_id = ?)"),
    ("disputes", "dispute_id", "invoice_id = ?"),
    ("reminders", "reminder_id", "invoice_id = ?"),
)


def raw_batches_of_invoice(
    con: duckdb.DuckDBPyConnection, invoice_id: str, customer_id: str | None, *, loaded_before: datetime | None
) -> list[dict[str, Any]]:
    """The load batches whose raw rows feed the invoice's own features: its versions, its customer's, its
    payments' (and their allocations), its disputes, its past reminders. One dict per (entity, batch): entity,
    batch_id, file_hash (the rows' ``_file_hash``), rows, keys (up to 5), and whether the batch holds the current
    version of a key (the latest among batches not failed, superseded or quarantined). Only rows loaded before
    ``loaded_before`` (when the features were built) count."""
    from relance.ops import EXCLUDED_STATES

    has_batches = _relation_exists(con, "ops.ingest_batches")
    out: list[dict[str, Any]] = []
    for entity, key, where in _INVOICE_RAW_ROWS:
        if not _relation_exists(con, f"raw.{entity}"):
            continue
        if entity == "payments" and not _relation_exists(con, "raw.payment_allocations"):
            continue
        value = customer_id if entity == "customers" else invoice_id
        if value is None:
            continue
        params: list[object] = [value]
        cutoff = ""
        if loaded_before is not None:
            cutoff = " AND r._loaded_at <= ?"
            params.append(loaded_before)
        excluded = ", ".join(f"'{s}'" for s in EXCLUDED_STATES)
        state = f"coalesce(b.validation_state, 'passed') NOT IN ({excluded})" if has_batches else "TRUE"
        join = "LEFT JOIN ops.ingest_batches b ON b.batch_id = r._batch_id" if has_batches else ""
        sql = f"""
            WITH rows AS (
                SELECT r.{key} AS k, r._batch_id, r._file_hash, r._loaded_at, r._load_seq, {state} AS counts
                FROM raw.{entity} r {join}
                WHERE r.{where}{cutoff}
            ), ranked AS (
                SELECT *, counts AND row_number() OVER (
                    PARTITION BY k ORDER BY counts DESC, _loaded_at DESC, _load_seq DESC) = 1 AS is_current
                FROM rows
            )
            SELECT _batch_id AS batch_id, min(_file_hash) AS file_hash, count(*) AS rows,
                list(DISTINCT k ORDER BY k)[1:5] AS keys, bool_or(is_current) AS holds_current_version
            FROM ranked GROUP BY _batch_id ORDER BY min(_loaded_at), _batch_id"""
        for r in _dicts(con, sql, params):
            out.append({"entity": entity, **r})
    return out


def ingest_batch(con: duckdb.DuckDBPyConnection, batch_id: str) -> dict[str, Any] | None:
    """The row of ``ops.ingest_batches``: source file, hash, counts, validation state."""
    if not _relation_exists(con, "ops.ingest_batches"):
        return None
    rows = _dicts(con, "SELECT * FROM ops.ingest_batches WHERE batch_id = ?", [batch_id])
    return rows[0] if rows else None


def validations_of_batch(con: duckdb.DuckDBPyConnection, batch_id: str) -> list[dict[str, Any]]:
    """The validation runs (``ops.validation_runs``) that covered a batch, newest first."""
    if not _relation_exists(con, "ops.validation_runs"):
        return []
    return _dicts(
        con,
        "SELECT * FROM ops.validation_runs WHERE list_contains(string_split(batch_ids, ','), ?) "
        "ORDER BY validated_at DESC",
        [batch_id],
    )


def message_events(con: duckdb.DuckDBPyConnection, reminder_key: str) -> list[dict[str, Any]]:
    """What the provider said about a message (``raw.message_events``: delivered, opened, bounced...), oldest
    first, one row per event (its latest version)."""
    if not _relation_exists(con, "raw.message_events"):
        return []
    return _dicts(
        con,
        """SELECT event_id, provider, channel, event, occurred_at, reason, _batch_id AS batch_id
           FROM raw.message_events WHERE reminder_key = ?
           QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY _loaded_at DESC, _load_seq DESC) = 1
           ORDER BY occurred_at, event_id""",
        [reminder_key],
    )


def parse_json_list(value: Any) -> list[Any]:
    """A JSON list stored as text (``invoice_ids``, ``reasons``); [] for null or text that is no JSON list."""
    if value is None or (isinstance(value, float) and value != value):
        return []
    if isinstance(value, list):
        return value
    try:
        parsed = json.loads(str(value))
    except ValueError:
        return [str(value)]
    return parsed if isinstance(parsed, list) else [parsed]
