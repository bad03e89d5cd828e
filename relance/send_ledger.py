"""The durable send ledger: what relance sent to whom, in its own SQLite file, outside the rebuildable warehouse.

The warehouse (DuckDB) can be rebuilt from raw data, restored from an older copy or deleted by
``relance demo --fresh``; the facts "this reminder went out" cannot be rebuilt from anything, so they live here,
in ``Settings.send_ledger`` (default ``<data_dir>/ledger/sends.sqlite``, never under ``Settings.owned_paths()``).
Back the file up (README, "Backing up the send ledger").

The exactly-once protocol (``relance.delivery`` explains it) writes four statuses per ``reminder_key``:
``'sending'`` (claimed, *committed before the transport is called*; also where a send whose outcome is unknown
stays), ``'sent'`` (the provider accepted it), ``'failed'`` (it provably did not go out: tried again by the next
run) and ``'abandoned'`` (the provider refused this very message ``give_up_after`` times, e.g. a 400 or a 413: no
longer tried until a person fixes the cause and reconciles it back to ``'failed'``). Durability: WAL journal with
``synchronous=FULL``, so a committed claim survives a crash or a power cut. Concurrency: every write is a
``BEGIN IMMEDIATE`` transaction (one writer at a time across processes) and ``reminder_key`` is the primary key, so two
processes never both claim one key. A row left in ``'sending'`` is never resent automatically: a provider event
settles it (:meth:`SendLedger.settle_from_provider`, called by the webhook service on a SendGrid
``processed``/``delivered`` event or a Twilio status callback), or an operator looks it up (SendGrid activity feed,
outbox) and calls :meth:`SendLedger.reconcile`; :func:`sending_by_age` lists the rows still waiting, oldest first.
Every reconciliation, provider settlement, abandonment and import is kept in the ``events`` table.

Besides the protocol columns the ledger keeps what answers "what did we send to whom" after a warehouse loss:
invoice, customer, step and a SHA-256 of the normalised recipient (not the address itself).

The warehouse keeps a derived copy for SQL readers: :func:`mirror_to_warehouse` recreates ``ops.reminder_sends``
from the ledger; :func:`import_warehouse_sends` brings sends found only in the warehouse (a warehouse written by
an earlier version, whose ledger was ``ops.reminder_sends``) into the ledger. Rows already in the ledger win,
except that ``'sent'`` is final: a warehouse row saying ``'sent'`` upgrades a ledger row saying ``'failed'`` (a
ledger restored from an older backup must not resend what the warehouse saw go out).

The schema is versioned with ``PRAGMA user_version``; :data:`MIGRATIONS` brings an older file up to date when
it is opened, and a file written by a newer version is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import duckdb
import pandas as pd

from relance import ops

log = logging.getLogger(__name__)

SendStatus = Literal["sending", "sent", "failed", "abandoned"]
STATUSES: tuple[str, ...] = ("sending", "sent", "failed", "abandoned")
#: Statuses that keep a reminder out of the plan: it went out, may have gone out, or a person must look at it.
HANDLED_STATUSES: tuple[str, ...] = ("sent", "sending", "abandoned")
MAX_ERROR_CHARS = 2000
#: Where a row came from: a delivery of this version, or an import from an earlier warehouse.
ORIGIN_DELIVERY = "delivery"
ORIGIN_WAREHOUSE = "warehouse"

#: Schema migrations: ``MIGRATIONS[i]`` brings ``user_version`` i to i + 1. Append, never edit a shipped entry.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE reminder_sends (
            reminder_key TEXT PRIMARY KEY,
            channel TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('sending', 'sent', 'failed')),
            provider_message_id TEXT,
            outbox_path TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            sent_at TEXT,
            flow_run_id TEXT,
            invoice_id TEXT,
            customer_id TEXT,
            step TEXT,
            recipient_sha256 TEXT,
            claimed_at TEXT,
            updated_at TEXT NOT NULL,
            origin TEXT NOT NULL DEFAULT 'delivery'
        )""",
        "CREATE INDEX reminder_sends_status ON reminder_sends (status)",
        """CREATE TABLE events (
            event_id INTEGER PRIMARY KEY AUTOINCREMENT,
            reminder_key TEXT NOT NULL,
            action TEXT NOT NULL,
            from_status TEXT,
            to_status TEXT,
            note TEXT,
            at TEXT NOT NULL
        )""",
    ),
    # 2: the 'abandoned' status (SQLite cannot alter a CHECK constraint: the table is rebuilt) and the count of
    # the provider's permanent refusals of the message (what bounds its attempts across runs).
    (
        """CREATE TABLE reminder_sends_v2 (
            reminder_key TEXT PRIMARY KEY,
            channel TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('sending', 'sent', 'failed', 'abandoned')),
            provider_message_id TEXT,
            outbox_path TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            sent_at TEXT,
            flow_run_id TEXT,
            invoice_id TEXT,
            customer_id TEXT,
            step TEXT,
            recipient_sha256 TEXT,
            claimed_at TEXT,
            updated_at TEXT NOT NULL,
            origin TEXT NOT NULL DEFAULT 'delivery',
            rejections INTEGER NOT NULL DEFAULT 0
        )""",
        """INSERT INTO reminder_sends_v2 (reminder_key, channel, status, provider_message_id, outbox_path, attempts,
               last_error, sent_at, flow_run_id, invoice_id, customer_id, step, recipient_sha256, claimed_at,
               updated_at, origin)
           SELECT reminder_key, channel, status, provider_message_id, outbox_path, attempts, last_error, sent_at,
               flow_run_id, invoice_id, customer_id, step, recipient_sha256, claimed_at, updated_at, origin
           FROM reminder_sends""",
        "DROP TABLE reminder_sends",
        "ALTER TABLE reminder_sends_v2 RENAME TO reminder_sends",
        "CREATE INDEX reminder_sends_status ON reminder_sends (status)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

#: The columns of the warehouse copy ``ops.reminder_sends`` (its DDL lives in ``relance.ops``).
WAREHOUSE_COLUMNS: tuple[str, ...] = (
    "reminder_key",
    "channel",
    "status",
    "provider_message_id",
    "outbox_path",
    "attempts",
    "last_error",
    "sent_at",
    "flow_run_id",
)
#: Every column of a ledger row, in table order.
LEDGER_COLUMNS: tuple[str, ...] = (
    *WAREHOUSE_COLUMNS,
    "invoice_id",
    "customer_id",
    "step",
    "recipient_sha256",
    "claimed_at",
    "updated_at",
    "origin",
    "rejections",
)
#: How a warehouse status ranks when the warehouse and the ledger disagree (only ``'sent'`` over ``'failed'``).
_FINAL = "sent"


class LedgerError(RuntimeError):
    """The ledger file cannot be used (written by a newer version, or not a send ledger)."""


@dataclass(frozen=True)
class SendRecord:
    """One ledger row."""

    reminder_key: str
    channel: str
    status: str
    provider_message_id: str | None
    outbox_path: str | None
    attempts: int
    last_error: str | None
    sent_at: str | None
    flow_run_id: str | None
    invoice_id: str | None
    customer_id: str | None
    step: str | None
    recipient_sha256: str | None
    claimed_at: str | None
    updated_at: str
    origin: str
    rejections: int = 0


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _ts(at: datetime | None) -> str:
    """Timestamps are stored as naive UTC ISO text (``YYYY-MM-DD HH:MM:SS.ffffff``), like the warehouse's."""
    at = at or _utcnow()
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.isoformat(sep=" ", timespec="microseconds")


def none_if_missing(value: Any) -> Any:
    """``None`` for a missing value (``None``, NaN, ``pd.NA``, ``NaT``), else the value unchanged."""
    try:
        return None if value is None or pd.isna(value) else value
    except (ValueError, TypeError):  # array-likes: not a scalar missing value
        return value


def recipient_hash(recipient: Any) -> str | None:
    """SHA-256 of the recipient, stripped and lower-cased: answers "did we write to this address" without keeping
    the address in a file that is backed up and kept for ever."""
    value = none_if_missing(recipient)
    text = "" if value is None else str(value).strip().lower()
    return hashlib.sha256(text.encode()).hexdigest() if text else None


def _text(value: Any) -> str | None:
    value = none_if_missing(value)
    return None if value is None else str(value)


class SendLedger:
    """The durable ledger in its SQLite file. Open one per process (a context manager; :meth:`close` it).

    Every write commits before it returns; use it from the thread that opened it.
    """

    def __init__(self, path: Path | str, *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; every write below opens BEGIN IMMEDIATE itself.
        # timeout: how long a writer waits for another process's write transaction before giving up.
        self._con = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None)
        try:
            mode = self._con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("send ledger %s: journal mode is %s, not WAL (network file system?)", self.path, mode)
            self._con.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except BaseException:
            self._con.close()
            raise

    # --- lifecycle -------------------------------------------------------------------------------------------------

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> SendLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SendLedger({str(self.path)!r})"

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding SQLite's write lock from its first statement; committed on exit."""
        self._con.execute("BEGIN IMMEDIATE")
        try:
            yield self._con
        except BaseException:
            self._con.execute("ROLLBACK")
            raise
        self._con.execute("COMMIT")

    def _migrate(self) -> None:
        if self._con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return  # the usual case: no write lock needed to open the file
        with self._write() as con:  # checked again under the lock: another process may have migrated meanwhile
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise LedgerError(
                    f"send ledger {self.path} has schema version {version}, newer than this relance "
                    f"({SCHEMA_VERSION}): upgrade relance, do not use an older version on it"
                )
            if version == 0:
                existing = con.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
                if existing:
                    raise LedgerError(f"{self.path} is an SQLite database but not a relance send ledger")
            for target in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[target]:
                    con.execute(statement)
                con.execute(f"PRAGMA user_version = {target + 1}")
                log.info("send ledger %s: schema migrated to version %d", self.path, target + 1)

    @property
    def schema_version(self) -> int:
        return int(self._con.execute("PRAGMA user_version").fetchone()[0])

    # --- reads -----------------------------------------------------------------------------------------------------

    def handled_keys(self) -> set[str]:
        """Keys not to plan again: sent, in flight or of unknown outcome (``'sending'``), or ``'abandoned'`` (the
        provider refused the message itself; a person reconciles it back to ``'failed'`` to have it planned)."""
        marks = ", ".join("?" * len(HANDLED_STATUSES))
        rows = self._con.execute(
            f"SELECT reminder_key FROM reminder_sends WHERE status IN ({marks})", list(HANDLED_STATUSES)
        )
        return {r[0] for r in rows.fetchall()}

    def statuses(self, keys: Sequence[str]) -> dict[str, tuple[str, int]]:
        """(status, attempts so far) of the keys that have a ledger row."""
        out: dict[str, tuple[str, int]] = {}
        keys = list(dict.fromkeys(keys))
        for start in range(0, len(keys), 500):  # under SQLite's bound-variable limit, whatever its build
            chunk = keys[start : start + 500]
            rows = self._con.execute(
                "SELECT reminder_key, status, attempts FROM reminder_sends "
                f"WHERE reminder_key IN ({', '.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
            out.update({k: (s, int(a or 0)) for k, s, a in rows})
        return out

    def get(self, key: str) -> SendRecord | None:
        row = self._con.execute(
            f"SELECT {', '.join(LEDGER_COLUMNS)} FROM reminder_sends WHERE reminder_key = ?", [key]
        ).fetchone()
        return None if row is None else SendRecord(*row)

    def records(self, status: SendStatus | None = None) -> list[SendRecord]:
        """Every row (or those with ``status``), by key. ``records('sending')`` is the reconciliation list."""
        sql = f"SELECT {', '.join(LEDGER_COLUMNS)} FROM reminder_sends"
        params: list[Any] = []
        if status is not None:
            sql += " WHERE status = ?"
            params.append(status)
        return [SendRecord(*r) for r in self._con.execute(sql + " ORDER BY reminder_key", params).fetchall()]

    def frame(self) -> pd.DataFrame:
        """Every row as a frame with :data:`LEDGER_COLUMNS`."""
        rows = self._con.execute(f"SELECT {', '.join(LEDGER_COLUMNS)} FROM reminder_sends ORDER BY reminder_key")
        return pd.DataFrame(rows.fetchall(), columns=list(LEDGER_COLUMNS))

    def events(self, key: str | None = None) -> list[dict[str, Any]]:
        """The audit trail of reconciliations and imports (of one key, or all), oldest first."""
        sql = "SELECT event_id, reminder_key, action, from_status, to_status, note, at FROM events"
        params: list[Any] = []
        if key is not None:
            sql += " WHERE reminder_key = ?"
            params.append(key)
        cur = self._con.execute(sql + " ORDER BY event_id", params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    # --- the protocol ----------------------------------------------------------------------------------------------

    def claim(
        self,
        key: str,
        channel: str,
        *,
        flow_run_id: str | None = None,
        invoice_id: Any = None,
        customer_id: Any = None,
        step: Any = None,
        recipient: Any = None,
        at: datetime | None = None,
    ) -> int | None:
        """Mark ``'sending'`` unless sent or in flight, and commit; returns the attempts so far, None if not
        claimed (another run holds or sent it). Call the transport only after this returned a number."""
        now = _ts(at)
        lineage = [_text(invoice_id), _text(customer_id), _text(step), recipient_hash(recipient)]
        with self._write() as con:
            row = con.execute("SELECT status, attempts FROM reminder_sends WHERE reminder_key = ?", [key]).fetchone()
            if row is None:
                con.execute(
                    """INSERT INTO reminder_sends (reminder_key, channel, status, attempts, flow_run_id, invoice_id,
                           customer_id, step, recipient_sha256, claimed_at, updated_at, origin)
                       VALUES (?, ?, 'sending', 0, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    [key, channel, flow_run_id, *lineage, now, now, ORIGIN_DELIVERY],
                )
                return 0
            status, attempts = row
            if status != "failed":
                return None
            con.execute(
                """UPDATE reminder_sends SET status = 'sending', channel = ?, flow_run_id = ?,
                       invoice_id = coalesce(?, invoice_id), customer_id = coalesce(?, customer_id),
                       step = coalesce(?, step), recipient_sha256 = coalesce(?, recipient_sha256),
                       claimed_at = ?, updated_at = ?
                   WHERE reminder_key = ?""",
                [channel, flow_run_id, *lineage, now, now, key],
            )
            return int(attempts or 0)

    def sent(
        self,
        key: str,
        *,
        provider_message_id: str | None,
        outbox_path: str | None,
        attempts: int,
        at: datetime,
        flow_run_id: str | None = None,
    ) -> None:
        """Record that the message went out. Whatever the row said before: it did go out."""
        ts = _ts(at)
        with self._write() as con:
            cur = con.execute(
                """UPDATE reminder_sends SET status = 'sent', provider_message_id = ?, outbox_path = ?,
                       attempts = ?, last_error = NULL, sent_at = ?, flow_run_id = coalesce(?, flow_run_id),
                       updated_at = ?
                   WHERE reminder_key = ?""",
                [provider_message_id, outbox_path, attempts, ts, flow_run_id, ts, key],
            )
            if cur.rowcount == 0:  # never claimed: record it anyway, the message is out
                log.error("reminder %s was sent without a claim in the send ledger; recording it", key)
                con.execute(
                    """INSERT INTO reminder_sends (reminder_key, channel, status, provider_message_id, outbox_path,
                           attempts, sent_at, flow_run_id, updated_at, origin)
                       VALUES (?, '', 'sent', ?, ?, ?, ?, ?, ?, ?)""",
                    [key, provider_message_id, outbox_path, attempts, ts, flow_run_id, ts, ORIGIN_DELIVERY],
                )

    def failed(
        self,
        key: str,
        channel: str,
        error: str,
        attempts: int,
        *,
        status: SendStatus = "failed",
        flow_run_id: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """Record a failure (or, with ``status='sending'``, an outcome in doubt) with its error text. Never
        overwrites a ``'sent'`` row."""
        if status == "sent":
            raise ValueError("failed() records 'failed' or 'sending', not 'sent'")
        now = _ts(at)
        with self._write() as con:
            con.execute(
                """INSERT INTO reminder_sends
                       (reminder_key, channel, status, attempts, last_error, flow_run_id, updated_at, origin)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (reminder_key) DO UPDATE SET status = excluded.status,
                       attempts = excluded.attempts, last_error = excluded.last_error,
                       flow_run_id = coalesce(excluded.flow_run_id, flow_run_id), updated_at = excluded.updated_at
                   WHERE reminder_sends.status <> 'sent'""",
                [key, channel, status, attempts, error[:MAX_ERROR_CHARS], flow_run_id, now, ORIGIN_DELIVERY],
            )

    def in_doubt(
        self,
        key: str,
        channel: str,
        error: str,
        attempts: int,
        *,
        flow_run_id: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """Record a send whose outcome is unknown (a 5xx, a timeout after the request was sent, an accepted answer
        without the provider's id): the row stays ``'sending'`` with the error, is never resent automatically, and
        is settled by a provider event (:meth:`settle_from_provider`) or a person (:meth:`reconcile`)."""
        self.failed(
            key, channel, f"outcome unknown: {error}", attempts, status="sending", flow_run_id=flow_run_id, at=at
        )

    def rejected(
        self,
        key: str,
        channel: str,
        error: str,
        attempts: int,
        *,
        give_up_after: int,
        flow_run_id: str | None = None,
        at: datetime | None = None,
    ) -> str:
        """Record that the provider refused this very message (a permanent 4xx: 400, 413, 422...), so it
        provably did not go out. The refusals are counted across runs: below ``give_up_after`` the row is
        ``'failed'`` (the next run tries again: the plan row may have been corrected meanwhile); at
        ``give_up_after`` it is ``'abandoned'`` (no longer tried, listed by ``relance sends --status abandoned``;
        a person fixes the cause and reconciles it to ``'failed'``). Returns the new status."""
        if give_up_after < 1:
            raise ValueError(f"give_up_after must be >= 1, got {give_up_after}")
        now = _ts(at)
        with self._write() as con:
            row = con.execute("SELECT status, rejections FROM reminder_sends WHERE reminder_key = ?", [key]).fetchone()
            if row is not None and row[0] == "sent":
                return "sent"
            rejections = (int(row[1] or 0) if row is not None else 0) + 1
            status = "abandoned" if rejections >= give_up_after else "failed"
            con.execute(
                """INSERT INTO reminder_sends (reminder_key, channel, status, attempts, last_error, flow_run_id,
                       updated_at, origin, rejections)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (reminder_key) DO UPDATE SET status = excluded.status, attempts = excluded.attempts,
                       last_error = excluded.last_error, rejections = excluded.rejections,
                       flow_run_id = coalesce(excluded.flow_run_id, flow_run_id), updated_at = excluded.updated_at""",
                [
                    key,
                    channel,
                    status,
                    attempts,
                    error[:MAX_ERROR_CHARS],
                    flow_run_id,
                    now,
                    ORIGIN_DELIVERY,
                    rejections,
                ],
            )
            if status == "abandoned":
                con.execute(
                    "INSERT INTO events (reminder_key, action, from_status, to_status, note, at) "
                    "VALUES (?, 'abandon', ?, 'abandoned', ?, ?)",
                    [key, None if row is None else row[0], f"refused {rejections} time(s): {error}"[:500], now],
                )
        if status == "abandoned":
            log.error("reminder %s refused %d time(s) by the provider: abandoned (%s)", key, rejections, error)
        return status

    def settle_from_provider(
        self,
        key: str,
        *,
        provider: str,
        event: str,
        provider_message_id: str | None = None,
        at: datetime | None = None,
    ) -> str | None:
        """A provider reported on this message (SendGrid ``processed``/``delivered``/``deferred``/``bounce``/
        ``dropped``, a Twilio status callback): it accepted it, so the row is ``'sent'`` whatever it said before
        (a ``'sending'`` row of unknown outcome is settled; a ``'failed'`` one is never resent). Returns the
        previous status when the row changed; ``None`` when it was already ``'sent'`` or is not in this ledger
        (a message of another system). Idempotent: webhook events arrive at least once."""
        now = _ts(at)
        with self._write() as con:
            row = con.execute("SELECT status FROM reminder_sends WHERE reminder_key = ?", [key]).fetchone()
            if row is None:
                return None
            previous = row[0]
            if previous == "sent":
                if provider_message_id:  # e.g. an accepted send recorded before the provider's id was known
                    con.execute(
                        "UPDATE reminder_sends SET provider_message_id = ? WHERE reminder_key = ? "
                        "AND provider_message_id IS NULL",
                        [provider_message_id, key],
                    )
                return None
            con.execute(
                """UPDATE reminder_sends SET status = 'sent', sent_at = coalesce(sent_at, claimed_at, ?),
                       provider_message_id = coalesce(?, provider_message_id), last_error = NULL, updated_at = ?
                   WHERE reminder_key = ?""",
                [now, provider_message_id, now, key],
            )
            con.execute(
                "INSERT INTO events (reminder_key, action, from_status, to_status, note, at) "
                "VALUES (?, 'provider_event', ?, 'sent', ?, ?)",
                [
                    key,
                    previous,
                    f"{provider} {event}" + (f" {provider_message_id}" if provider_message_id else ""),
                    now,
                ],
            )
        log.warning("reminder %s settled by a %s %s event: %s -> sent", key, provider, event, previous)
        return previous

    def reconcile(
        self,
        key: str,
        status: Literal["sent", "failed"],
        *,
        note: str | None = None,
        provider_message_id: str | None = None,
        at: datetime | None = None,
    ) -> str:
        """Settle a row an operator has looked up; returns its previous status.

        * ``'sending'`` -> ``'sent'``: the message did go out (seen in the SendGrid activity feed, or its outbox
          file exists). It will never be sent again.
        * ``'sending'`` -> ``'failed'``: it did not go out; the next run sends it.
        * ``'failed'`` -> ``'sent'``: it went out after all.
        * ``'abandoned'`` -> ``'failed'``: the cause of the provider's refusals is fixed (an address corrected, a
          too-large message trimmed): its refusal count starts again and the next run plans and sends it.
        * ``'abandoned'`` -> ``'sent'``: it was sent some other way.

        A ``'sent'`` row is final (raises ``ValueError``), as is reconciling a key the ledger does not hold
        (``KeyError``). The change, the note and the time are kept in the ``events`` table.
        """
        if status not in ("sent", "failed"):
            raise ValueError(f"reconcile to 'sent' or 'failed', not {status!r}")
        now = _ts(at)
        with self._write() as con:
            row = con.execute("SELECT status FROM reminder_sends WHERE reminder_key = ?", [key]).fetchone()
            if row is None:
                raise KeyError(f"reminder {key} is not in the send ledger {self.path}")
            previous = row[0]
            if previous == "sent":
                raise ValueError(f"reminder {key} is 'sent': a sent reminder is final and cannot be reconciled")
            if previous == status:
                raise ValueError(f"reminder {key} is already {status!r}")
            if status == "sent":
                con.execute(
                    """UPDATE reminder_sends SET status = 'sent', sent_at = coalesce(sent_at, ?),
                           provider_message_id = coalesce(?, provider_message_id), last_error = NULL, updated_at = ?
                       WHERE reminder_key = ?""",
                    [now, provider_message_id, now, key],
                )
            else:
                con.execute(
                    "UPDATE reminder_sends SET status = 'failed', last_error = ?, rejections = 0, updated_at = ? "
                    "WHERE reminder_key = ?",
                    [f"reconciled by an operator: {note or 'did not go out'}"[:MAX_ERROR_CHARS], now, key],
                )
            con.execute(
                "INSERT INTO events (reminder_key, action, from_status, to_status, note, at) VALUES (?, ?, ?, ?, ?, ?)",
                [key, "reconcile", previous, status, note, now],
            )
        log.warning("reminder %s reconciled: %s -> %s (%s)", key, previous, status, note or "no note")
        return previous

    # --- import ----------------------------------------------------------------------------------------------------

    def import_rows(self, rows: Iterable[Mapping[str, Any]], *, source: str) -> int:
        """Add send rows recorded elsewhere (an earlier version's ``ops.reminder_sends``); returns how many rows
        were added or changed. Keys already in the ledger win, except that ``'sent'`` replaces ``'failed'``."""
        incoming = [r for r in rows if r.get("reminder_key") and r.get("status") in STATUSES]
        if not incoming:
            return 0
        now = _ts(None)
        changed = 0
        with self._write() as con:
            known = dict(con.execute("SELECT reminder_key, status FROM reminder_sends").fetchall())
            for r in incoming:
                key, status = str(r["reminder_key"]), str(r["status"])
                values = {
                    "reminder_key": key,
                    "channel": _text(r.get("channel")) or "",
                    "status": status,
                    "provider_message_id": _text(r.get("provider_message_id")),
                    "outbox_path": _text(r.get("outbox_path")),
                    "attempts": int(r["attempts"]) if _text(r.get("attempts")) is not None else 0,
                    "last_error": _text(r.get("last_error")),
                    "sent_at": _ts(pd.Timestamp(r["sent_at"]).to_pydatetime()) if _text(r.get("sent_at")) else None,
                    "flow_run_id": _text(r.get("flow_run_id")),
                    "invoice_id": _text(r.get("invoice_id")),
                    "customer_id": _text(r.get("customer_id")),
                    "step": _text(r.get("step")),
                    "recipient_sha256": recipient_hash(r.get("recipient")),
                    "claimed_at": None,
                    "updated_at": now,
                    "origin": ORIGIN_WAREHOUSE,
                }
                previous = known.get(key)
                if previous is None:
                    cols = ", ".join(values)
                    con.execute(
                        f"INSERT INTO reminder_sends ({cols}) VALUES ({', '.join('?' * len(values))})",
                        list(values.values()),
                    )
                elif previous == "failed" and status == _FINAL:
                    sets = ", ".join(f"{c} = ?" for c in values if c != "reminder_key")
                    con.execute(
                        f"UPDATE reminder_sends SET {sets} WHERE reminder_key = ?",
                        [v for c, v in values.items() if c != "reminder_key"] + [key],
                    )
                else:
                    continue
                known[key] = status
                con.execute(
                    "INSERT INTO events (reminder_key, action, from_status, to_status, note, at) "
                    "VALUES (?, 'import', ?, ?, ?, ?)",
                    [key, previous, status, source, now],
                )
                changed += 1
        if changed:
            log.warning("send ledger %s: %d send row(s) imported from %s", self.path, changed, source)
        return changed


# --- what is waiting for reconciliation ----------------------------------------------------------------------


@dataclass(frozen=True)
class InFlight:
    """A row in ``'sending'``: a run died between the provider call and the ledger, or the provider's answer left
    the outcome unknown. ``since`` is when it was claimed (naive UTC)."""

    reminder_key: str
    channel: str
    since: datetime
    age: timedelta
    attempts: int
    last_error: str | None
    invoice_id: str | None
    customer_id: str | None
    step: str | None
    flow_run_id: str | None

    def as_row(self) -> dict[str, Any]:
        """For a table artifact or a CLI table: no personal data (ids and the error text)."""
        return {
            "reminder_key": self.reminder_key,
            "channel": self.channel,
            "since (UTC)": self.since.isoformat(sep=" ", timespec="minutes"),
            "age_minutes": int(self.age.total_seconds() // 60),
            "invoice_id": self.invoice_id or "",
            "customer_id": self.customer_id or "",
            "attempts": self.attempts,
            "last_error": self.last_error or "run died before recording the outcome",
        }


def sending_by_age(ledger: SendLedger, now: datetime, older_than: timedelta = timedelta(0)) -> list[InFlight]:
    """The rows in ``'sending'`` claimed at least ``older_than`` before ``now`` (naive UTC, or aware), oldest
    first. Every delivery run reports them (``DeliveryReport.sending_overdue``), ``relance sends`` lists them;
    each is settled by a provider event or ``relance sends reconcile``."""
    if now.tzinfo is not None:
        now = now.astimezone(UTC).replace(tzinfo=None)
    out = []
    for r in ledger.records("sending"):
        since = datetime.fromisoformat(r.claimed_at or r.updated_at)
        if since.tzinfo is not None:
            since = since.astimezone(UTC).replace(tzinfo=None)
        age = max(now - since, timedelta(0))
        if age >= older_than:
            out.append(
                InFlight(
                    reminder_key=r.reminder_key,
                    channel=r.channel,
                    since=since,
                    age=age,
                    attempts=r.attempts,
                    last_error=r.last_error,
                    invoice_id=r.invoice_id,
                    customer_id=r.customer_id,
                    step=r.step,
                    flow_run_id=r.flow_run_id,
                )
            )
    return sorted(out, key=lambda f: (f.since, f.reminder_key))


# --- the warehouse copy ------------------------------------------------------------------------------------------


def import_warehouse_sends(ledger: SendLedger, con: duckdb.DuckDBPyConnection) -> int:
    """Bring the sends recorded in the warehouse's ``ops.reminder_sends`` into the ledger (see the module
    docstring for who wins); returns how many rows were added or changed. Idempotent: after the first import of
    an earlier version's warehouse, and once the table is the ledger's copy, it changes nothing.

    The plan's lineage (invoice, customer, step, recipient) comes along from ``ops.reminders_planned``."""
    rows = ops.read_reminder_sends(con, WAREHOUSE_COLUMNS)
    return ledger.import_rows(rows, source="warehouse ops.reminder_sends")


def mirror_to_warehouse(ledger: SendLedger, con: duckdb.DuckDBPyConnection) -> int:
    """Recreate the warehouse's ``ops.reminder_sends`` from the ledger (the columns the table has), in one
    transaction; returns its row count. The table is derived: a rebuilt warehouse gets it back on the next
    delivery. Does nothing if the table does not exist (``relance.warehouse.ensure_schemas`` creates it)."""
    if not ops.table_columns(con, "reminder_sends"):
        return 0
    frame = ledger.frame()
    return ops.replace_reminder_sends(con, frame[[c for c in LEDGER_COLUMNS if c in frame.columns]])
