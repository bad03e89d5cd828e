"""The operational tables (schema ``ops``): their DDL and every write to them, in one place.

dbt owns every relational transformation and ``relance.raw_schema`` the raw tables; Python's operational facts
live here: load batches and source watermarks, quarantined rows, validation runs, predictions, planned reminders
and the warehouse copy of the send ledger (``relance.send_ledger`` keeps the sends themselves, outside the
warehouse), report runs. Other modules call these functions; none of them holds SQL for an ``ops`` table. dbt reads
some of them as sources (``dbt_project/models/staging/_sources.yml``).

Writes are single statements (atomic on their own) that compose with a transaction the caller holds, except where
a docstring says otherwise.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, get_args

import duckdb
import pandas as pd

SCHEMA = "ops"

#: Where a quarantined row was stopped: at ``load`` (it never reached raw: a value that does not cast, a row the
#: source adapter rejected) or by a data ``contract`` (it is in raw, flagged, and excluded downstream).
QuarantineStage = Literal["load", "contract"]
#: ``loaded``: a new file (or query result) was read; ``unchanged``: the same file was loaded before.
BatchStatus = Literal["loaded", "unchanged"]
#: Where a batch stands with its data contract. ``pending``: loaded, not validated yet (nothing downstream runs
#: until it is); ``passed``: validated, no critical failure (or nothing new to validate); ``failed``: a critical
#: expectation failed -- dbt, scoring and sending are blocked until the batch is ``superseded`` (a later batch of
#: the same source and entity passed) or ``quarantined`` (an operator excluded it: ``relance batches quarantine``).
#: Rows of failed, superseded and quarantined batches never reach the current state (the staging macro).
ValidationState = Literal["pending", "passed", "failed", "superseded", "quarantined"]
VALIDATION_STATES: tuple[str, ...] = get_args(ValidationState)
#: States that stop a run before dbt.
BLOCKING_STATES: tuple[str, ...] = ("pending", "failed")
#: States whose rows are excluded from the current state.
EXCLUDED_STATES: tuple[str, ...] = ("failed", "superseded", "quarantined")

TABLES: dict[str, str] = {
    "ingest_batches": """
        batch_id VARCHAR PRIMARY KEY, entity VARCHAR, source_file VARCHAR, file_hash VARCHAR,
        rows_read BIGINT, rows_loaded BIGINT, rows_quarantined BIGINT, rows_unchanged BIGINT,
        status VARCHAR, loaded_at TIMESTAMP, flow_run_id VARCHAR, source_name VARCHAR, rows_flagged BIGINT,
        validation_state VARCHAR, state_changed_at TIMESTAMP, state_note VARCHAR""",
    "source_watermarks": """
        source_name VARCHAR, entity VARCHAR, watermark VARCHAR, updated_at TIMESTAMP, batch_id VARCHAR,
        PRIMARY KEY (source_name, entity)""",
    "quarantine": """
        batch_id VARCHAR, entity VARCHAR, row_number BIGINT, natural_key VARCHAR, expectation VARCHAR,
        severity VARCHAR, reason VARCHAR, row_json VARCHAR, quarantined_at TIMESTAMP, flow_run_id VARCHAR,
        stage VARCHAR""",
    "validation_runs": """
        validation_id VARCHAR PRIMARY KEY, batch_ids VARCHAR, success BOOLEAN, critical_failures INTEGER,
        warning_failures INTEGER, data_docs_path VARCHAR, validated_at TIMESTAMP, flow_run_id VARCHAR""",
    "predictions": """
        invoice_id VARCHAR, as_of_date DATE, p_late DOUBLE, model_name VARCHAR, model_version VARCHAR,
        model_run_id VARCHAR, dbt_invocation_id VARCHAR, scored_at TIMESTAMP, flow_run_id VARCHAR,
        target_name VARCHAR, days_late_p10 DOUBLE, days_late_p50 DOUBLE, days_late_p90 DOUBLE,
        reason_1 VARCHAR, reason_2 VARCHAR, reason_3 VARCHAR,
        PRIMARY KEY (invoice_id, as_of_date)""",
    "reminders_planned": """
        reminder_key VARCHAR PRIMARY KEY, invoice_id VARCHAR, customer_id VARCHAR, as_of_date DATE,
        step VARCHAR, channel VARCHAR, tone VARCHAR, p_late DOUBLE, open_amount DECIMAL(18,2),
        currency VARCHAR, recipient VARCHAR, model_version VARCHAR, model_run_id VARCHAR,
        dbt_invocation_id VARCHAR, planned_at TIMESTAMP, flow_run_id VARCHAR""",
    "reminder_sends": """
        reminder_key VARCHAR PRIMARY KEY, channel VARCHAR, status VARCHAR, provider_message_id VARCHAR,
        outbox_path VARCHAR, attempts INTEGER, last_error VARCHAR, sent_at TIMESTAMP, flow_run_id VARCHAR""",
    "report_runs": """
        report_id VARCHAR PRIMARY KEY, as_of_date DATE, html_path VARCHAR, csv_paths VARCHAR,
        model_version VARCHAR, created_at TIMESTAMP, flow_run_id VARCHAR""",
    # one row per (risk provider, company) it is asked about: when it last answered, when it last tried, why it
    # failed, and how far its data goes (watermark_date: the next fetch asks only for what was published since).
    # company_id '*' with registry '*' is the provider as a whole (a notice file, an outage before any company).
    "risk_checks": """
        publisher VARCHAR, registry VARCHAR, company_id VARCHAR, last_attempt_at TIMESTAMP,
        last_success_at TIMESTAMP, last_error VARCHAR, watermark_date DATE,
        PRIMARY KEY (publisher, registry, company_id)""",
    # every alert raised to finance, once (alert_key is a pure function of what it is about): notified_at and
    # notification_id say which email carried it
    "risk_alerts": """
        alert_key VARCHAR PRIMARY KEY, alert_type VARCHAR, customer_id VARCHAR, customer_name VARCHAR,
        company_id VARCHAR, event_id VARCHAR, title VARCHAR, detail VARCHAR, due_date DATE, as_of_date DATE,
        created_at TIMESTAMP, notified_at TIMESTAMP, notification_id VARCHAR, flow_run_id VARCHAR""",
    # a channel (or '*': every channel) a customer must not be contacted on: set by hand (`relance suppress`),
    # by a call outcome ('wrong_contact', 'do_not_contact') or by a provider (bounce, unsubscribe, STOP);
    # lifted_at ends it. serving.customer_contact_state reads the unlifted rows.
    "contact_suppressions": """
        customer_id VARCHAR, channel VARCHAR, reason VARCHAR, source VARCHAR, created_at TIMESTAMP,
        lifted_at TIMESTAMP, PRIMARY KEY (customer_id, channel, created_at)""",
    # what the engine decided about each customer on each day, and why (send, wait, pause, stop, holdout):
    # the answer to "why did (or didn't) this customer get a reminder?"
    "reminder_decisions": """
        as_of_date DATE, customer_id VARCHAR, decision VARCHAR, scenario VARCHAR, arm VARCHAR, step VARCHAR,
        channel VARCHAR, reminder_key VARCHAR, rule VARCHAR, reasons VARCHAR, decided_at TIMESTAMP,
        flow_run_id VARCHAR, PRIMARY KEY (as_of_date, customer_id)""",
    # the randomised arm of each customer in each scenario's experiment: drawn once (a pure function of the
    # salt, the scenario and the customer), recorded the first day the customer enters the scenario
    "experiment_assignments": """
        scenario VARCHAR, customer_id VARCHAR, arm VARCHAR, draw DOUBLE, salt VARCHAR, holdout_fraction DOUBLE,
        assigned_on DATE, PRIMARY KEY (scenario, customer_id)""",
    # a reminder the rules stopped just before its send, with the rule: never silently dropped
    "reminder_blocks": """
        reminder_key VARCHAR, as_of_date DATE, invoice_id VARCHAR, customer_id VARCHAR, channel VARCHAR,
        rule VARCHAR, detail VARCHAR, blocked_at TIMESTAMP, flow_run_id VARCHAR,
        PRIMARY KEY (reminder_key, as_of_date)""",
}

#: Raw entities that are external company-risk data, not receivables: a failed or pending batch of theirs never
#: blocks the daily run (the risk flow validates its own batches; a bad payload leaves the last known data, stale).
RISK_DATA_ENTITIES: tuple[str, ...] = ("company_events", "company_profiles")
#: Raw entities that are debtors' answers (call outcomes, provider events): like risk data, a bad batch of theirs
#: never blocks the receivables gate; its rows are quarantined and the customers they name are paused
#: (``relance.reminders.engine``) until a person looks, so nothing goes out on an answer that failed its contract.
CONTACT_DATA_ENTITIES: tuple[str, ...] = ("call_outcomes", "message_events")

#: Columns added since their table first shipped, for warehouses created by earlier versions: (table, column,
#: type, the statement that fills it for the rows already there, if any). Applied once, when the column is missing.
ADDED_COLUMNS: tuple[tuple[str, str, str, str | None], ...] = (
    ("ingest_batches", "source_name", "VARCHAR", None),
    # rows_quarantined: rejected at load (never in raw); rows_flagged: loaded, then quarantined by a data contract
    ("ingest_batches", "rows_flagged", "BIGINT", None),
    # rows quarantined before the stage column: the loader named its expectations 'load:<what>'
    (
        "quarantine",
        "stage",
        "VARCHAR",
        "UPDATE ops.quarantine SET stage = CASE WHEN expectation LIKE 'load:%' THEN 'load' ELSE 'contract' END",
    ),
    # batches loaded before the validation gate: failed if the last validation run that covered them failed
    # (that run stopped the pipeline), else passed
    (
        "ingest_batches",
        "validation_state",
        "VARCHAR",
        """UPDATE ops.ingest_batches b SET validation_state = coalesce((
               SELECT CASE WHEN v.success THEN 'passed' ELSE 'failed' END FROM ops.validation_runs v
               WHERE list_contains(string_split(v.batch_ids, ','), b.batch_id)
               ORDER BY v.validated_at DESC LIMIT 1), 'passed')""",
    ),
    ("ingest_batches", "state_changed_at", "TIMESTAMP", None),
    # ops.reminder_sends became the copy of the durable send ledger: it carries the ledger's lineage too
    ("reminder_sends", "invoice_id", "VARCHAR", None),
    ("reminder_sends", "customer_id", "VARCHAR", None),
    ("reminder_sends", "step", "VARCHAR", None),
    ("reminder_sends", "recipient_sha256", "VARCHAR", None),
    ("reminder_sends", "claimed_at", "TIMESTAMP", None),
    ("reminder_sends", "updated_at", "TIMESTAMP", None),
    ("reminder_sends", "origin", "VARCHAR", None),
    ("ingest_batches", "state_note", "VARCHAR", None),
    # predictions carry the target they estimate, days-late quantiles and reason codes (null for rows scored
    # before: the target of a `p_late_30d` score depended on the horizon setting of its day, so it is not guessed)
    ("predictions", "target_name", "VARCHAR", None),
    ("predictions", "days_late_p10", "DOUBLE", None),
    ("predictions", "days_late_p50", "DOUBLE", None),
    ("predictions", "days_late_p90", "DOUBLE", None),
    ("predictions", "reason_1", "VARCHAR", None),
    ("predictions", "reason_2", "VARCHAR", None),
    ("predictions", "reason_3", "VARCHAR", None),
    # the reminder engine: which scenario and arm chose the message, the invoices it groups, why, its value
    ("reminders_planned", "scenario", "VARCHAR", None),
    ("reminders_planned", "arm", "VARCHAR", None),
    ("reminders_planned", "invoice_ids", "VARCHAR", None),
    ("reminders_planned", "reasons", "VARCHAR", None),
    ("reminders_planned", "expected_cash", "DOUBLE", None),
    ("reminders_planned", "action_cost", "DOUBLE", None),
    ("reminders_planned", "deliver_at", "TIMESTAMP", None),
)

#: Columns renamed since their table first shipped: (table, old name, new name). Applied once, before the
#: columns are added, when the old name is there and the new one is not; the values are kept.
RENAMED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    # the score is named for what it is whatever the target (its target is in predictions.target_name)
    ("predictions", "p_late_30d", "p_late"),
    ("reminders_planned", "p_late_30d", "p_late"),
)


def ensure_ops(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ops schema and tables if missing, rename the columns later versions renamed and add the ones
    they added. Idempotent."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    before = _schema_columns(con)
    for table, old, new in RENAMED_COLUMNS:
        if (table, old) in before and (table, new) not in before:
            con.execute(f"ALTER TABLE {SCHEMA}.{table} RENAME COLUMN {old} TO {new}")
    for name, columns in TABLES.items():
        con.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.{name} ({columns})")
    present = _schema_columns(con)
    for table, column, type_, backfill in ADDED_COLUMNS:
        if (table, column) not in present:
            with _atomic(con):  # the column and its backfill, or neither
                con.execute(f"ALTER TABLE {SCHEMA}.{table} ADD COLUMN {column} {type_}")
                if backfill:
                    con.execute(backfill)


def _schema_columns(con: duckdb.DuckDBPyConnection) -> set[tuple[str, str]]:
    """(table, column) pairs of the ops schema."""
    return set(
        con.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = ?", [SCHEMA]
        ).fetchall()
    )


@contextlib.contextmanager
def _atomic(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """A transaction of its own, or the caller's if one is open (the caller then commits or rolls back)."""
    try:
        con.begin()
    except duckdb.TransactionException:  # already in the caller's transaction
        yield
        return
    try:
        yield
    except BaseException:
        con.rollback()
        raise
    con.commit()


def _with_frame(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, sql: str, params: Sequence = ()) -> None:
    """Run ``sql`` with ``frame`` registered under the name ``{frame}`` (a unique view name)."""
    view = f"_relance_ops_{uuid.uuid4().hex}"
    con.register(view, frame)
    try:
        con.execute(sql.replace("{frame}", view), list(params))
    finally:
        con.unregister(view)


# --- load batches and watermarks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchRecord:
    """One file (or query result) loaded into one raw table, as ``ops.ingest_batches`` keeps it."""

    batch_id: str
    entity: str
    source_file: str
    file_hash: str
    rows_read: int
    rows_loaded: int
    rows_unchanged: int
    rows_quarantined: int
    status: BatchStatus
    source_name: str | None
    loaded_at: datetime | None = None
    flow_run_id: str | None = None


def loaded_file_rows(
    con: duckdb.DuckDBPyConnection, *, entity: str, file_hash: str, source_name: str | None
) -> int | None:
    """``rows_read`` of the first load of this file into ``entity`` for this source; ``None`` if never loaded."""
    row = con.execute(
        "SELECT rows_read FROM ops.ingest_batches WHERE entity = ? AND file_hash = ? AND status = 'loaded' "
        "AND coalesce(source_name, '') = ? ORDER BY loaded_at LIMIT 1",
        [entity, file_hash, source_name or ""],
    ).fetchone()
    return None if row is None else int(row[0] or 0)


def initial_state(batch: BatchRecord) -> ValidationState:
    """``pending`` for a batch that appended rows to raw (they must be validated before anything reads them);
    ``passed`` for one with nothing new (an unchanged file, or rows all already current)."""
    return "pending" if batch.status == "loaded" and batch.rows_loaded > 0 else "passed"


def record_batch(con: duckdb.DuckDBPyConnection, batch: BatchRecord) -> None:
    """Record a load batch, in :func:`initial_state`."""
    con.execute(
        "INSERT INTO ops.ingest_batches (batch_id, entity, source_file, file_hash, rows_read, rows_loaded, "
        "rows_quarantined, rows_unchanged, status, loaded_at, flow_run_id, source_name, validation_state, "
        "state_changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            batch.batch_id,
            batch.entity,
            batch.source_file,
            batch.file_hash,
            batch.rows_read,
            batch.rows_loaded,
            batch.rows_quarantined,
            batch.rows_unchanged,
            batch.status,
            batch.loaded_at,
            batch.flow_run_id,
            batch.source_name,
            initial_state(batch),
            batch.loaded_at,
        ],
    )


def batch_records(con: duckdb.DuckDBPyConnection, batch_ids: Sequence[str]) -> list[BatchRecord]:
    """The batches with these ids, in the order given (duplicates once).

    Raises:
        ValueError: an id is not in ``ops.ingest_batches``.
    """
    rows = con.execute(
        "SELECT batch_id, entity, source_file, file_hash, rows_read, rows_loaded, rows_unchanged, "
        "rows_quarantined, status, source_name, loaded_at, flow_run_id FROM ops.ingest_batches "
        "WHERE list_contains(?, batch_id)",
        [list(batch_ids)],
    ).fetchall()
    found = {
        r[0]: BatchRecord(r[0], r[1], r[2], r[3], *(int(v or 0) for v in r[4:8]), r[8], r[9], r[10], r[11])
        for r in rows
    }
    unknown = [b for b in batch_ids if b not in found]
    if unknown:
        raise ValueError(f"unknown batch id(s), not in ops.ingest_batches: {', '.join(unknown)}")
    return [found[b] for b in dict.fromkeys(batch_ids)]


def previous_volumes(con: duckdb.DuckDBPyConnection, batch: BatchRecord, limit: int) -> list[int]:
    """``rows_read`` of the loads of the batch's (source, entity) before it, most recent first.

    Previous = status ``loaded``, ``rows_read > 0``, loaded before the batch (not the batch itself), and not a
    batch excluded from the current state (a failed delivery is no measure of a normal one); a null
    ``source_name`` is one source (compared like the loader does).
    """
    rows = con.execute(
        "SELECT rows_read FROM ops.ingest_batches WHERE entity = ? AND coalesce(source_name, '') = ? "
        "AND status = 'loaded' AND rows_read > 0 AND batch_id <> ? AND (?::TIMESTAMP IS NULL OR loaded_at < ?) "
        f"AND coalesce(validation_state, 'passed') NOT IN ({', '.join(repr(s) for s in EXCLUDED_STATES)}) "
        "ORDER BY loaded_at DESC NULLS LAST, batch_id DESC LIMIT ?",
        [batch.entity, batch.source_name or "", batch.batch_id, batch.loaded_at, batch.loaded_at, limit],
    ).fetchall()
    return [int(r[0]) for r in rows]


# --- the validation gate: each batch's state ------------------------------------------------------------------


@dataclass(frozen=True)
class BatchState:
    """A batch and where it stands with its data contract (``relance batches`` lists these)."""

    batch_id: str
    source_name: str | None
    entity: str
    source_file: str
    loaded_at: datetime | None
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rows_flagged: int
    state: ValidationState
    state_changed_at: datetime | None
    state_note: str | None


_STATE_COLUMNS = (
    "batch_id, source_name, entity, source_file, loaded_at, coalesce(rows_read, 0), coalesce(rows_loaded, 0), "
    "coalesce(rows_quarantined, 0), coalesce(rows_flagged, 0), coalesce(validation_state, 'passed'), "
    "state_changed_at, state_note"
)


def _states(con: duckdb.DuckDBPyConnection, where: str, params: Sequence = (), limit: int | None = None) -> list:
    sql = f"SELECT {_STATE_COLUMNS} FROM ops.ingest_batches WHERE {where} ORDER BY loaded_at DESC NULLS LAST, batch_id"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [BatchState(*r) for r in con.execute(sql, list(params)).fetchall()]


def list_batches(
    con: duckdb.DuckDBPyConnection, *, states: Sequence[str] | None = None, limit: int | None = 100
) -> list[BatchState]:
    """Batches, newest first, optionally only those in ``states``."""
    if states:
        return _states(con, "list_contains(?, coalesce(validation_state, 'passed'))", [list(states)], limit)
    return _states(con, "true", (), limit)


def pending_batch_ids(
    con: duckdb.DuckDBPyConnection, *, risk_data: bool = False, contact_data: bool = False
) -> list[str]:
    """Batches loaded but not validated yet, oldest first: whatever happened before (a crash between load and
    validation, ``relance import`` in another process), they are validated before anything downstream runs.

    Receivables batches by default; ``risk_data``: the batches of :data:`RISK_DATA_ENTITIES` instead (the risk
    flow validates those itself); ``contact_data``: those of :data:`CONTACT_DATA_ENTITIES` (the call-outcome
    import validates those)."""
    if risk_data and contact_data:
        raise ValueError("pending_batch_ids: ask for risk data or contact data, not both")
    if risk_data or contact_data:
        where, entities = "list_contains(?, entity)", list(RISK_DATA_ENTITIES if risk_data else CONTACT_DATA_ENTITIES)
    else:
        where, entities = "NOT list_contains(?, entity)", [*RISK_DATA_ENTITIES, *CONTACT_DATA_ENTITIES]
    rows = con.execute(
        f"SELECT batch_id FROM ops.ingest_batches WHERE validation_state = 'pending' AND {where} "
        "ORDER BY loaded_at, batch_id",
        [entities],
    ).fetchall()
    return [r[0] for r in rows]


def blocking_batches(con: duckdb.DuckDBPyConnection) -> list[BatchState]:
    """Receivables batches that stop a run before dbt: not validated yet, or failed and neither superseded nor
    quarantined. Risk-data and contact-data batches never block (a failed risk batch leaves the last known risk
    data, flagged stale; a failed call-outcome batch pauses the customers it names)."""
    return _states(
        con,
        "list_contains(?, validation_state) AND NOT list_contains(?, entity)",
        [list(BLOCKING_STATES), [*RISK_DATA_ENTITIES, *CONTACT_DATA_ENTITIES]],
    )


def set_validation_states(
    con: duckdb.DuckDBPyConnection, states: Mapping[str, ValidationState], *, at: datetime, note: str | None = None
) -> None:
    """Record the outcome of validating these batches. A batch that ``passed`` supersedes every ``failed`` batch
    of the same (source, entity) loaded before it: the source delivered a file that meets the contract."""
    for batch_id, state in states.items():
        con.execute(
            "UPDATE ops.ingest_batches SET validation_state = ?, state_changed_at = ?, state_note = ? "
            "WHERE batch_id = ?",
            [state, at, note, batch_id],
        )
        if state == "passed":
            con.execute(
                """UPDATE ops.ingest_batches f SET validation_state = 'superseded', state_changed_at = ?,
                       state_note = 'superseded by batch ' || p.batch_id
                   FROM ops.ingest_batches p
                   WHERE p.batch_id = ? AND f.validation_state = 'failed' AND f.entity = p.entity
                     AND coalesce(f.source_name, '') = coalesce(p.source_name, '') AND f.loaded_at <= p.loaded_at
                     AND f.batch_id <> p.batch_id""",
                [at, batch_id],
            )


def quarantine_batch(con: duckdb.DuckDBPyConnection, batch_id: str, *, note: str, at: datetime) -> BatchState:
    """An operator excludes a whole batch: its rows leave the current state, and a failed batch stops blocking.

    Raises:
        ValueError: unknown batch id, or a batch with no rows in raw (an unchanged file: nothing to exclude).
    """
    found = _states(con, "batch_id = ?", [batch_id])
    if not found:
        raise ValueError(f"unknown batch id {batch_id!r} (see `relance batches`)")
    if found[0].rows_loaded == 0:
        raise ValueError(f"batch {batch_id} put no rows in raw ({found[0].state}): nothing to quarantine")
    con.execute(
        "UPDATE ops.ingest_batches SET validation_state = 'quarantined', state_changed_at = ?, state_note = ? "
        "WHERE batch_id = ?",
        [at, note, batch_id],
    )
    return _states(con, "batch_id = ?", [batch_id])[0]


def read_watermarks(con: duckdb.DuckDBPyConnection, source_name: str) -> dict[str, str]:
    """Last stored high-water mark per entity of one source (empty before the first load)."""
    rows = con.execute(
        "SELECT entity, watermark FROM ops.source_watermarks WHERE source_name = ?", [source_name]
    ).fetchall()
    return {e: w for e, w in rows if w is not None}


def set_watermark(
    con: duckdb.DuckDBPyConnection,
    *,
    source_name: str,
    entity: str,
    watermark: str,
    updated_at: datetime,
    batch_id: str,
) -> None:
    con.execute(
        "INSERT INTO ops.source_watermarks (source_name, entity, watermark, updated_at, batch_id) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (source_name, entity) DO UPDATE SET "
        "watermark = excluded.watermark, updated_at = excluded.updated_at, batch_id = excluded.batch_id",
        [source_name, entity, watermark, updated_at, batch_id],
    )


# --- quarantine ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuarantineRow:
    """A row kept out of the pipeline, with the reason a person can act on."""

    batch_id: str
    entity: str
    row_number: int
    natural_key: str | None
    expectation: str
    severity: str
    reason: str
    row_json: str
    stage: QuarantineStage
    quarantined_at: datetime | None = None
    flow_run_id: str | None = None


_QUARANTINE_COLUMNS = (
    "batch_id",
    "entity",
    "row_number",
    "natural_key",
    "expectation",
    "severity",
    "reason",
    "row_json",
    "quarantined_at",
    "flow_run_id",
    "stage",
)


def quarantine(con: duckdb.DuckDBPyConnection, rows: Iterable[QuarantineRow]) -> int:
    """Append quarantined rows; returns how many."""
    values = [tuple(getattr(r, c) for c in _QUARANTINE_COLUMNS) for r in rows]
    if values:
        con.executemany(
            f"INSERT INTO ops.quarantine ({', '.join(_QUARANTINE_COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in _QUARANTINE_COLUMNS)})",
            values,
        )
    return len(values)


def replace_contract_quarantine(
    con: duckdb.DuckDBPyConnection, batch_ids: Sequence[str], rows: Sequence[QuarantineRow]
) -> None:
    """Replace the data-contract quarantine of these batches with ``rows`` (re-validating a batch never duplicates)
    and set each batch's ``rows_flagged`` to its distinct quarantined rows. Load-time rejects are kept."""
    if not batch_ids:
        return
    if any(r.stage != "contract" or r.batch_id not in batch_ids for r in rows):
        raise ValueError("replace_contract_quarantine takes contract rows of the batches it replaces")
    con.execute("DELETE FROM ops.quarantine WHERE list_contains(?, batch_id) AND stage = 'contract'", [list(batch_ids)])
    if rows:
        frame = pd.DataFrame([{c: getattr(r, c) for c in _QUARANTINE_COLUMNS} for r in rows])
        cols = ", ".join(_QUARANTINE_COLUMNS)
        _with_frame(con, frame, f"INSERT INTO ops.quarantine ({cols}) SELECT {cols} FROM {{frame}}")
    con.execute(
        "UPDATE ops.ingest_batches b SET rows_flagged = (SELECT count(DISTINCT q.row_number) FROM ops.quarantine q "
        "WHERE q.batch_id = b.batch_id AND q.stage = 'contract') WHERE list_contains(?, b.batch_id)",
        [list(batch_ids)],
    )


# --- validation runs -----------------------------------------------------------------------------------------------


def record_validation_run(
    con: duckdb.DuckDBPyConnection,
    *,
    validation_id: str,
    batch_ids: Sequence[str],
    success: bool,
    critical_failures: int,
    warning_failures: int,
    data_docs_path: str | None,
    validated_at: datetime,
    flow_run_id: str | None,
) -> None:
    con.execute(
        "INSERT INTO ops.validation_runs (validation_id, batch_ids, success, critical_failures, "
        "warning_failures, data_docs_path, validated_at, flow_run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            validation_id,
            ",".join(batch_ids),
            success,
            critical_failures,
            warning_failures,
            data_docs_path,
            validated_at,
            flow_run_id,
        ],
    )


# --- predictions ---------------------------------------------------------------------------------------------------

#: What every prediction row needs: the score and the model that produced it ...
PREDICTION_COLUMNS: tuple[str, ...] = (
    "invoice_id",
    "as_of_date",
    "p_late",
    "model_name",
    "model_version",
    "model_run_id",
)
#: ... and what it carries when the model gives it (stored as null when the frame lacks the column): the target
#: whose probability p_late is, days late (settled_date - due_date) quantiles, the top three reasons towards late.
PREDICTION_DETAIL_COLUMNS: tuple[str, ...] = (
    "target_name",
    "days_late_p10",
    "days_late_p50",
    "days_late_p90",
    "reason_1",
    "reason_2",
    "reason_3",
)
_PREDICTION_TYPES: dict[str, str] = {
    "target_name": "VARCHAR",
    "days_late_p10": "DOUBLE",
    "days_late_p50": "DOUBLE",
    "days_late_p90": "DOUBLE",
    "reason_1": "VARCHAR",
    "reason_2": "VARCHAR",
    "reason_3": "VARCHAR",
}


def upsert_predictions(
    con: duckdb.DuckDBPyConnection,
    preds: pd.DataFrame,
    *,
    dbt_invocation_id: str | None,
    flow_run_id: str | None,
    scored_at: datetime,
) -> int:
    """Upsert ``preds`` (:data:`PREDICTION_COLUMNS`, and those of :data:`PREDICTION_DETAIL_COLUMNS` it has) keyed
    by (invoice_id, as_of_date); returns rows written.

    Re-scoring a date replaces the earlier rows for the same invoices, every column (never duplicates); one
    statement.

    Raises:
        KeyError: a column of :data:`PREDICTION_COLUMNS` is missing.
    """
    missing = [c for c in PREDICTION_COLUMNS if c not in preds.columns]
    if missing:
        raise KeyError(f"predictions lack column(s) {missing}; expected {list(PREDICTION_COLUMNS)}")
    rows = preds[list(PREDICTION_COLUMNS)].copy()
    rows["as_of_date"] = pd.to_datetime(rows["as_of_date"]).dt.date
    rows["model_version"] = rows["model_version"].astype(str)
    for column in PREDICTION_DETAIL_COLUMNS:
        values = preds[column] if column in preds.columns else pd.Series(None, index=preds.index, dtype=object)
        if _PREDICTION_TYPES[column] == "DOUBLE":
            rows[column] = pd.to_numeric(values, errors="raise").astype("float64")
        else:  # text; NaN and None alike become null
            rows[column] = values.astype(object).where(values.notna(), None)
    detail_casts = ", ".join(f"CAST({c} AS {_PREDICTION_TYPES[c]})" for c in PREDICTION_DETAIL_COLUMNS)
    detail_updates = "".join(f"  {c} = excluded.{c},\n" for c in PREDICTION_DETAIL_COLUMNS)
    _with_frame(
        con,
        rows,
        f"""
INSERT INTO ops.predictions (invoice_id, as_of_date, p_late, model_name, model_version, model_run_id,
                             {", ".join(PREDICTION_DETAIL_COLUMNS)}, dbt_invocation_id, scored_at, flow_run_id)
SELECT invoice_id, CAST(as_of_date AS DATE), p_late, model_name, model_version, model_run_id,
       {detail_casts}, ?, CAST(? AS TIMESTAMP), ?
FROM {{frame}}
ON CONFLICT (invoice_id, as_of_date) DO UPDATE SET
  p_late = excluded.p_late,
{detail_updates}  model_name = excluded.model_name,
  model_version = excluded.model_version,
  model_run_id = excluded.model_run_id,
  dbt_invocation_id = excluded.dbt_invocation_id,
  scored_at = excluded.scored_at,
  flow_run_id = excluded.flow_run_id
""",
        [dbt_invocation_id, scored_at, flow_run_id],
    )
    return len(rows)


# --- reminders: the plan and the send ledger ----------------------------------------------------------------------

#: What a reminder plan holds (``relance.reminders.policy.plan_reminders`` produces these columns) ...
PLAN_COLUMNS: tuple[str, ...] = (
    "reminder_key",
    "invoice_id",
    "customer_id",
    "as_of_date",
    "step",
    "channel",
    "tone",
    "p_late",
    "open_amount",
    "currency",
    "recipient",
    "model_version",
    "model_run_id",
)
#: ... and what ``ops.reminders_planned`` keeps: the plan and its lineage.
PLANNED_COLUMNS: tuple[str, ...] = (*PLAN_COLUMNS, "dbt_invocation_id", "planned_at", "flow_run_id")


#: What the reminder engine adds to a plan row when it made it (absent from a per-invoice policy plan).
ENGINE_PLAN_COLUMNS: tuple[str, ...] = ("scenario", "arm", "invoice_ids", "reasons", "expected_cash", "action_cost")


def record_planned(con: duckdb.DuckDBPyConnection, planned: pd.DataFrame) -> int:
    """Insert planned reminders (:data:`PLANNED_COLUMNS`, and :data:`ENGINE_PLAN_COLUMNS` when present) whose key
    is not there yet: the first plan of a step wins and keeps its lineage. Returns how many were new."""
    if planned.empty:
        return 0
    extra = [c for c in ENGINE_PLAN_COLUMNS if c in planned.columns]
    frame = planned[[*PLANNED_COLUMNS, *extra]].copy()
    frame["as_of_date"] = pd.to_datetime(frame["as_of_date"])
    for col in ("model_version", "model_run_id", "dbt_invocation_id", "flow_run_id"):
        frame[col] = frame[col].astype("string")
    for col in extra:
        frame[col] = (
            frame[col].astype("float64") if col in ("expected_cash", "action_cost") else frame[col].astype("string")
        )
    before = con.execute("SELECT count(*) FROM ops.reminders_planned").fetchone()[0]
    _with_frame(
        con,
        frame,
        f"""INSERT INTO ops.reminders_planned ({", ".join([*PLANNED_COLUMNS, *extra])})
            SELECT reminder_key, invoice_id, customer_id, CAST(as_of_date AS DATE), step, channel, tone,
                CAST(p_late AS DOUBLE), CAST(open_amount AS DECIMAL(18,2)), currency, recipient,
                model_version, model_run_id, dbt_invocation_id, CAST(planned_at AS TIMESTAMP), flow_run_id
                {"".join(f", {c}" for c in extra)}
            FROM {{frame}}
            ON CONFLICT DO NOTHING""",
    )
    return con.execute("SELECT count(*) FROM ops.reminders_planned").fetchone()[0] - before


def set_deliver_at(con: duckdb.DuckDBPyConnection, reminder_key: str, deliver_at: datetime | None) -> None:
    """When the rules deferred a planned message (an email planned outside the debtor's hours), the moment it is
    delivered: frequency caps count contacts at that moment."""
    con.execute("UPDATE ops.reminders_planned SET deliver_at = ? WHERE reminder_key = ?", [deliver_at, reminder_key])


def planned_deliveries(con: duckdb.DuckDBPyConnection, customer_ids: Sequence[str]) -> pd.DataFrame:
    """reminder_key, customer_id, channel, deliver_at of the planned messages of these customers (to join with the
    send ledger: the moment each sent message reached, or will reach, the debtor)."""
    return con.execute(
        "SELECT reminder_key, customer_id, channel, deliver_at FROM ops.reminders_planned "
        "WHERE list_contains(?, customer_id)",
        [list(customer_ids)],
    ).df()


def record_decisions(
    con: duckdb.DuckDBPyConnection, decisions: pd.DataFrame, *, at: datetime, flow_run_id: str | None
) -> int:
    """One decision per customer and as-of date. A rerun of the day replaces that day's decisions, except a
    'send': the message that went out is what the day decided (the rerun then only sees it was sent)."""
    if decisions.empty:
        return 0
    frame = decisions[
        [
            "as_of_date",
            "customer_id",
            "decision",
            "scenario",
            "arm",
            "step",
            "channel",
            "reminder_key",
            "rule",
            "reasons",
        ]
    ].copy()
    frame["as_of_date"] = pd.to_datetime(frame["as_of_date"])
    frame = frame.astype(object).where(frame.notna(), None)
    frame["decided_at"] = at
    frame["flow_run_id"] = flow_run_id
    with _atomic(con):
        _with_frame(
            con,
            frame,
            """INSERT INTO ops.reminder_decisions
               SELECT CAST(as_of_date AS DATE), customer_id, decision, scenario, arm, step, channel, reminder_key,
                   rule, reasons, CAST(decided_at AS TIMESTAMP), flow_run_id FROM {frame}
               ON CONFLICT (as_of_date, customer_id) DO UPDATE SET
                   decision = excluded.decision, scenario = excluded.scenario, arm = excluded.arm,
                   step = excluded.step, channel = excluded.channel, reminder_key = excluded.reminder_key,
                   rule = excluded.rule, reasons = excluded.reasons, decided_at = excluded.decided_at,
                   flow_run_id = excluded.flow_run_id
               WHERE ops.reminder_decisions.decision <> 'send'""",
        )
    return len(frame)


def record_assignments(con: duckdb.DuckDBPyConnection, assignments: pd.DataFrame, *, as_of: date) -> int:
    """Record each (scenario, customer) arm the first time it is drawn; returns how many were new."""
    if assignments.empty:
        return 0
    frame = assignments[["scenario", "customer_id", "arm", "draw", "salt", "holdout_fraction"]].copy()
    frame["assigned_on"] = pd.Timestamp(as_of)
    before = con.execute("SELECT count(*) FROM ops.experiment_assignments").fetchone()[0]
    _with_frame(
        con,
        frame,
        """INSERT INTO ops.experiment_assignments
           SELECT scenario, customer_id, arm, CAST(draw AS DOUBLE), salt, CAST(holdout_fraction AS DOUBLE),
               CAST(assigned_on AS DATE) FROM {frame}
           ON CONFLICT DO NOTHING""",
    )
    return con.execute("SELECT count(*) FROM ops.experiment_assignments").fetchone()[0] - before


# The send facts live in the durable ledger (``relance.send_ledger``, its own SQLite file); ``ops.reminder_sends``
# is its copy in the warehouse, rewritten after every delivery, for SQL readers (reports, lineage queries). An
# earlier version kept the ledger itself here: ``read_reminder_sends`` is how those sends reach the ledger.


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """Columns of ``ops.<table>`` in order (empty if the table does not exist)."""
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
        "ORDER BY ordinal_position",
        [SCHEMA, table],
    ).fetchall()
    return [r[0] for r in rows]


def read_reminder_sends(con: duckdb.DuckDBPyConnection, columns: Sequence[str]) -> list[dict[str, object]]:
    """Rows of ``ops.reminder_sends`` (the ``columns`` it has), with the plan's invoice, customer, step and
    recipient from ``ops.reminders_planned`` where known."""
    present = table_columns(con, "reminder_sends")
    wanted = [c for c in columns if c in present]
    if not wanted:
        return []
    planned = table_columns(con, "reminders_planned")
    lineage = [c for c in ("invoice_id", "customer_id", "step", "recipient") if c in planned]
    select = [f"s.{c}" for c in wanted if c not in lineage]
    # the plan fills what the send row does not have (rows written before the copy carried lineage)
    select += [f"coalesce(s.{c}, p.{c}) AS {c}" if c in present else f"p.{c}" for c in lineage]
    sql = f"SELECT {', '.join(select)} FROM ops.reminder_sends s"
    if lineage:
        sql += " LEFT JOIN ops.reminders_planned p USING (reminder_key)"
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def replace_reminder_sends(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> int:
    """Rewrite ``ops.reminder_sends`` with the ledger's rows (the columns both have), in one transaction;
    returns the rows written."""
    columns = [c for c in table_columns(con, "reminder_sends") if c in frame.columns]
    if not columns:
        return 0
    casts = {"attempts": "CAST(attempts AS INTEGER)"}
    timestamps = {"sent_at", "claimed_at", "updated_at"}
    select = ", ".join(
        casts.get(c, f"CAST({c} AS TIMESTAMP)" if c in timestamps else f"CAST({c} AS VARCHAR)") for c in columns
    )
    rows = frame[columns]
    with _atomic(con):
        con.execute("DELETE FROM ops.reminder_sends")
        if not rows.empty:
            _with_frame(
                con,
                rows.astype(object).where(rows.notna(), None),
                f"INSERT INTO ops.reminder_sends ({', '.join(columns)}) SELECT {select} FROM {{frame}}",
            )
    return len(rows)


# --- report runs ---------------------------------------------------------------------------------------------------


def record_report_run(
    con: duckdb.DuckDBPyConnection,
    *,
    kind: str,
    as_of_date: date,
    html_path: str,
    csv_paths: Mapping[str, str],
    model_version: str | None,
    created_at: datetime,
    flow_run_id: str | None,
) -> str:
    """Upsert a report into ``ops.report_runs`` and return its id (``<kind>-<as_of>-<flow run|local>``): one row
    per (report, day, run), so rerunning a flow run replaces its row instead of piling up."""
    report_id = f"{kind}-{as_of_date.isoformat()}-{flow_run_id or 'local'}"
    con.execute(
        """INSERT INTO ops.report_runs AS r
               (report_id, as_of_date, html_path, csv_paths, model_version, created_at, flow_run_id)
           VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (report_id) DO UPDATE SET html_path = excluded.html_path,
               csv_paths = excluded.csv_paths, model_version = excluded.model_version,
               created_at = excluded.created_at""",
        [
            report_id,
            as_of_date,
            html_path,
            json.dumps(dict(csv_paths), sort_keys=True),
            model_version,
            created_at,
            flow_run_id,
        ],
    )
    return report_id


# --- external company-risk data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RiskCheck:
    """Where one provider stands with one company (``ops.risk_checks``)."""

    publisher: str
    registry: str
    company_id: str
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    watermark_date: date | None


WHOLE_SOURCE = "*"


def record_risk_checks(
    con: duckdb.DuckDBPyConnection,
    publisher: str,
    checks: Iterable[tuple[str, str, str | None, date | None]],
    *,
    at: datetime,
) -> int:
    """Record one attempt per (registry, company_id, error, watermark): ``error`` None is a success (it moves
    ``last_success_at`` and, when given, the watermark); an error keeps the last success and watermark, so the
    next run asks again from where the last good answer stopped."""
    rows = [(publisher, r, c, at, None if e else at, e, None if e else w) for r, c, e, w in checks]
    if not rows:
        return 0
    con.executemany(
        """INSERT INTO ops.risk_checks (publisher, registry, company_id, last_attempt_at, last_success_at,
               last_error, watermark_date) VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (publisher, registry, company_id) DO UPDATE SET
               last_attempt_at = excluded.last_attempt_at,
               last_success_at = coalesce(excluded.last_success_at, ops.risk_checks.last_success_at),
               last_error = excluded.last_error,
               watermark_date = CASE WHEN excluded.last_error IS NULL
                   THEN coalesce(excluded.watermark_date, ops.risk_checks.watermark_date)
                   ELSE ops.risk_checks.watermark_date END""",
        rows,
    )
    return len(rows)


def risk_checks(con: duckdb.DuckDBPyConnection, publisher: str | None = None) -> list[RiskCheck]:
    """Every check of one provider (or all), by publisher, registry, company."""
    where, params = ("WHERE publisher = ?", [publisher]) if publisher else ("", [])
    rows = con.execute(
        "SELECT publisher, registry, company_id, last_attempt_at, last_success_at, last_error, watermark_date "
        f"FROM ops.risk_checks {where} ORDER BY publisher, registry, company_id",
        params,
    ).fetchall()
    return [RiskCheck(*r) for r in rows]


ALERT_COLUMNS: tuple[str, ...] = (
    "alert_key",
    "alert_type",
    "customer_id",
    "customer_name",
    "company_id",
    "event_id",
    "title",
    "detail",
    "due_date",
    "as_of_date",
    "created_at",
    "flow_run_id",
)


def record_alerts(con: duckdb.DuckDBPyConnection, alerts: pd.DataFrame) -> int:
    """Insert the alerts not raised before (``alert_key`` decides); returns how many are new."""
    if alerts.empty:
        return 0
    before = int(con.execute("SELECT count(*) FROM ops.risk_alerts").fetchone()[0])
    _with_frame(
        con,
        alerts[list(ALERT_COLUMNS)],
        f"INSERT INTO ops.risk_alerts ({', '.join(ALERT_COLUMNS)}) SELECT {', '.join(ALERT_COLUMNS)} FROM {{frame}} "
        "ON CONFLICT (alert_key) DO NOTHING",
    )
    return int(con.execute("SELECT count(*) FROM ops.risk_alerts").fetchone()[0]) - before


def read_alerts(con: duckdb.DuckDBPyConnection, *, unnotified_only: bool = False, limit: int = 1000) -> pd.DataFrame:
    """Alerts, newest first (only those no email carried yet with ``unnotified_only``)."""
    where = "WHERE notified_at IS NULL" if unnotified_only else ""
    return con.execute(
        f"SELECT * FROM ops.risk_alerts {where} ORDER BY created_at DESC, alert_key LIMIT {int(limit)}"
    ).df()


def mark_alerts_notified(
    con: duckdb.DuckDBPyConnection, alert_keys: Sequence[str], *, notification_id: str, at: datetime
) -> None:
    con.execute(
        "UPDATE ops.risk_alerts SET notified_at = ?, notification_id = ? "
        "WHERE list_contains(?, alert_key) AND notified_at IS NULL",
        [at, notification_id, list(alert_keys)],
    )


def record_blocks(con: duckdb.DuckDBPyConnection, blocks: Iterable[Mapping[str, object]]) -> int:
    """Record reminders stopped just before their send (one row per reminder and day; a rerun keeps the first)."""
    rows = [
        (
            b["reminder_key"],
            b["as_of_date"],
            b.get("invoice_id"),
            b.get("customer_id"),
            b.get("channel"),
            b["rule"],
            b.get("detail"),
            b["blocked_at"],
            b.get("flow_run_id"),
        )
        for b in blocks
    ]
    if rows:
        con.executemany(
            "INSERT INTO ops.reminder_blocks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (reminder_key, as_of_date) DO NOTHING",
            rows,
        )
    return len(rows)


# --- contact suppressions ------------------------------------------------------------------------------------------


def add_suppression(
    con: duckdb.DuckDBPyConnection, customer_id: str, channel: str, *, reason: str, source: str, at: datetime
) -> bool:
    """Suppress a channel ('*': every channel) for a customer; False when an unlifted one is already there."""
    exists = con.execute(
        "SELECT count(*) FROM ops.contact_suppressions WHERE customer_id = ? AND channel = ? AND lifted_at IS NULL",
        [customer_id, channel],
    ).fetchone()[0]
    if exists:
        return False
    con.execute(
        "INSERT INTO ops.contact_suppressions VALUES (?, ?, ?, ?, ?, NULL)", [customer_id, channel, reason, source, at]
    )
    return True


def lift_suppressions(con: duckdb.DuckDBPyConnection, customer_id: str, channel: str, *, at: datetime) -> int:
    """Lift the customer's suppressions of a channel (a person decided contact may resume). A provider's or a
    call's opt-out signalled before ``at`` is lifted too: a row is written for it when there was none."""
    lifted = con.execute(
        "UPDATE ops.contact_suppressions SET lifted_at = ? WHERE customer_id = ? AND channel = ? AND lifted_at IS NULL "
        "RETURNING 1",
        [at, customer_id, channel],
    ).fetchall()
    if not lifted:  # an opt-out the contact state derives from events or calls: a lifted marker overrides it
        con.execute(
            "INSERT INTO ops.contact_suppressions VALUES (?, ?, 'lifted by hand', 'manual', ?, ?)",
            [customer_id, channel, at, at],
        )
    return len(lifted)


def read_suppressions(con: duckdb.DuckDBPyConnection, customer_id: str | None = None) -> pd.DataFrame:
    where = "WHERE customer_id = ?" if customer_id else ""
    return con.execute(
        f"SELECT * FROM ops.contact_suppressions {where} ORDER BY customer_id, created_at",
        [customer_id] if customer_id else [],
    ).df()


def reminder_day(con: duckdb.DuckDBPyConnection, as_of_date: date) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(decisions, planned messages, blocked sends) of one as-of date: what the report's "Relances" section shows."""
    day = [as_of_date]
    return (
        con.execute("SELECT * FROM ops.reminder_decisions WHERE as_of_date = ?", day).df(),
        con.execute("SELECT * FROM ops.reminders_planned WHERE as_of_date = ?", day).df(),
        con.execute("SELECT * FROM ops.reminder_blocks WHERE as_of_date = ?", day).df(),
    )
