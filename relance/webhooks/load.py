"""Provider events into the warehouse: a durable inbox, the shared loader, the data contract, their consequences.

A verified request is first written to the **inbox** (``<data_dir>/webhooks/inbox.sqlite``, WAL,
``synchronous=FULL``): once that commit returns, the events are safe whatever happens next. :func:`drain` then
moves every waiting entry into the warehouse, in order:

1. each event's customer is found: the customer of its ``reminder_key`` in ``ops.reminders_planned`` (or, failing
   that, in the send ledger); an inbound SMS opt-out is matched on the sender's number against the current
   customers' phones, both in E.164. An event whose customer is unknown (a SendGrid console test, a message sent
   by another system) is kept, with a null ``customer_id``;
2. one extract per request goes through :func:`relance.ingest.load_extracts` into ``raw.message_events`` under
   source ``webhooks:sendgrid`` / ``webhooks:twilio``, the request's sha256 as its hash. The natural key is
   ``event_id``: a replayed request is an ``unchanged`` batch, an event delivered again in another request is an
   unchanged row; nothing is appended twice. An event id seen twice in one request is loaded once;
3. the new batches (and any contact-data batch a crash left ``pending``) are validated by the data contract
   (suite ``raw_message_events``): an unknown event name, a missing timestamp, an unknown customer is
   quarantined with its reason in ``ops.quarantine``, never dropped;
4. the consequences of the events the contract accepted, each applied once:

   * a hard bounce, an address-related drop, a spam report, an unsubscribe (global or group), an SMS opt-out
     (``STOP``) or a permanent SMS error (:data:`relance.webhooks.twilio.PERMANENT_SMS_ERRORS`) writes an
     ``ops.contact_suppressions`` row (channel ``email`` or ``sms``, source ``provider``, ``created_at`` = when
     the event happened). Once: not when an unlifted suppression of that customer and channel exists, nor when one
     was lifted after the event (a person lifted it knowing), nor when this very event wrote one already;
   * an event proving the provider accepted a message (:data:`SETTLING_EVENTS`) settles its send-ledger row as
     ``'sent'`` when it is not yet (``'sending'``: outcome unknown, or ``'failed'``), through
     :meth:`relance.send_ledger.SendLedger.settle_from_provider`, the ledger's audit note naming the event; the
     warehouse copy ``ops.reminder_sends`` is refreshed;
5. the entries leave the inbox.

A crash anywhere leaves the entries in the inbox and the next drain does it again: the load finds the request
already loaded, pending batches are validated, consequences are idempotent. The drain waits a bounded time for the
warehouse (a daily run holds DuckDB's file lock for minutes): when it stays busy the entries wait for the next
request, the service's periodic drain or ``relance webhooks drain``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd
import pyarrow as pa

from relance import ops
from relance.ingest import current_versions_sql, load_extracts
from relance.raw_schema import CONTACT_ENTITIES, entity
from relance.send_ledger import SendLedger, mirror_to_warehouse
from relance.sources.base import SOURCE_ROW, EntityExtract
from relance.warehouse import connect, ensure_schemas

if TYPE_CHECKING:
    from relance.settings import Settings

log = logging.getLogger(__name__)

ENTITY = "message_events"
#: The loader's source name of each provider's events: ``webhooks:sendgrid``, ``webhooks:twilio``.
SOURCE_PREFIX = "webhooks:"
#: Suppressions written from provider events carry this source.
SUPPRESSION_SOURCE = "provider"
#: Events that prove the provider accepted the message (it only reports on messages it accepted): a send-ledger
#: row still ``'sending'`` (outcome unknown) or ``'failed'`` is settled as ``'sent'`` by one of them.
SETTLING_EVENTS: dict[str, frozenset[str]] = {
    "email": frozenset(
        {
            "processed",
            "deferred",
            "delivered",
            "bounce",
            "dropped",
            "open",
            "click",
            "spamreport",
            "unsubscribe",
            "group_unsubscribe",
        }
    ),
    "sms": frozenset({"queued", "sent", "delivered", "undelivered"}),
}
#: Inbox entries moved into the warehouse by one drain (the rest wait for the next).
MAX_ENTRIES_PER_DRAIN = 200
_WAREHOUSE_POLL_SECONDS = 0.2
_MAX_REASON_CHARS = 500

#: ``validate(con, batch_ids)`` -> a summary with ``critical_failures``, ``warning_failures``, ``quarantined_rows``
#: (``expectations.runner.ValidationSummary``).
Validator = Callable[[duckdb.DuckDBPyConnection, list[str]], Any]


class Refused(Exception):
    """A request the service refuses: ``status`` is the HTTP answer, ``reason`` says why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class MessageEvent:
    """One ``raw.message_events`` row, plus what its consequences need (not loaded to raw)."""

    event_id: str
    provider: str  # 'sendgrid' | 'twilio'
    channel: str  # 'email' | 'sms'
    event: str | None
    occurred_at: datetime | None  # naive UTC
    reminder_key: str | None = None
    customer_id: str | None = None
    reason: str | None = None
    #: the address or number must not be used again (hard bounce, opt-out...): a suppression
    suppresses: bool = False
    #: the provider's id of the message (SendGrid X-Message-ID, Twilio MessageSid), recorded when it settles a send
    provider_message_id: str | None = None
    #: an inbound message's sender (E.164): the customer is found by it when the inbox is drained
    phone: str | None = None

    def raw_row(self) -> dict[str, str | None]:
        """The row as text for the loader (it casts to the raw types and quarantines what does not cast)."""
        values = {
            "event_id": self.event_id,
            "reminder_key": self.reminder_key,
            "customer_id": self.customer_id,
            "provider": self.provider,
            "channel": self.channel,
            "event": self.event,
            "occurred_at": None if self.occurred_at is None else self.occurred_at.isoformat(sep=" "),
            "reason": None if self.reason is None else self.reason[:_MAX_REASON_CHARS],
        }
        return {c: values[c] for c in CONTACT_ENTITIES[ENTITY]}

    @property
    def settles(self) -> bool:
        return bool(self.reminder_key) and self.event in SETTLING_EVENTS.get(self.channel, frozenset())

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["occurred_at"] = None if self.occurred_at is None else self.occurred_at.isoformat()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MessageEvent:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        at = values.get("occurred_at")
        values["occurred_at"] = None if at is None else datetime.fromisoformat(at)
        return cls(**values)


def utc_naive(at: datetime) -> datetime:
    """``at`` as naive UTC (how the warehouse stores timestamps)."""
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo is not None else at


# --- the inbox -------------------------------------------------------------------------------------------------


def inbox_path(settings: Settings) -> Path:
    """Where verified requests wait for the warehouse: beside the data, never under ``Settings.owned_paths()``
    (``relance demo --fresh`` must not forget events that are not in the warehouse yet)."""
    return settings.data / "webhooks" / "inbox.sqlite"


@dataclass(frozen=True)
class InboxEntry:
    """One verified request: its events, in the order the provider sent them."""

    entry_id: int
    provider: str
    received_at: datetime
    digest: str  # sha256 of what the provider sent: the extract's file hash (a replay is an unchanged batch)
    events: list[MessageEvent]


class Inbox:
    """The SQLite inbox. Every method opens its own connection: safe from any thread or process."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute(
                """CREATE TABLE IF NOT EXISTS inbox (
                    entry_id INTEGER PRIMARY KEY AUTOINCREMENT,
                    provider TEXT NOT NULL,
                    received_at TEXT NOT NULL,
                    digest TEXT NOT NULL,
                    events TEXT NOT NULL
                )"""
            )

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=FULL")
            yield con
        finally:
            con.close()

    def put(self, provider: str, events: Sequence[MessageEvent], *, digest: str, received_at: datetime) -> int:
        """Keep a request's events; durable when this returns. Returns the entry id."""
        payload = json.dumps([e.to_json() for e in events], separators=(",", ":"))
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                cur = con.execute(
                    "INSERT INTO inbox (provider, received_at, digest, events) VALUES (?, ?, ?, ?)",
                    [provider, utc_naive(received_at).isoformat(sep=" "), digest, payload],
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return int(cur.lastrowid)

    def entries(self, limit: int = MAX_ENTRIES_PER_DRAIN) -> list[InboxEntry]:
        """The oldest waiting entries, in arrival order."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT entry_id, provider, received_at, digest, events FROM inbox ORDER BY entry_id LIMIT ?", [limit]
            ).fetchall()
        return [
            InboxEntry(i, p, datetime.fromisoformat(r), d, [MessageEvent.from_json(e) for e in json.loads(ev)])
            for i, p, r, d, ev in rows
        ]

    def remove(self, entry_ids: Sequence[int]) -> None:
        if not entry_ids:
            return
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            con.execute(f"DELETE FROM inbox WHERE entry_id IN ({', '.join('?' * len(entry_ids))})", list(entry_ids))
            con.execute("COMMIT")

    def backlog(self) -> tuple[int, datetime | None]:
        """(entries waiting, when the oldest arrived: naive UTC)."""
        with self._connect() as con:
            count, oldest = con.execute("SELECT count(*), min(received_at) FROM inbox").fetchone()
        return int(count), None if oldest is None else datetime.fromisoformat(oldest)


# --- the warehouse ---------------------------------------------------------------------------------------------


class WarehouseBusy(RuntimeError):
    """Another process (a daily run) holds the warehouse: the events wait in the inbox."""


def open_warehouse(path: Path, wait_seconds: float) -> duckdb.DuckDBPyConnection:
    """A read-write connection, waiting up to ``wait_seconds`` for another process's lock on the file."""
    deadline = time.monotonic() + max(wait_seconds, 0.0)
    while True:
        try:
            return connect(path)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            if time.monotonic() >= deadline:
                raise WarehouseBusy(f"the warehouse {path} is held by another process: {exc}") from exc
            time.sleep(_WAREHOUSE_POLL_SECONDS)


def contract_validator(settings: Settings) -> Validator:
    """The data contract (``expectations.runner.validate_batches``, GX suites), without data docs."""
    runner = importlib.import_module("expectations.runner")  # by import path: relance/ sits below expectations/

    def validate(con: duckdb.DuckDBPyConnection, batch_ids: list[str]) -> Any:
        return runner.validate_batches(con, batch_ids, gx_dir=settings.gx_dir, flow_run_id=None, data_docs=False)

    return validate


@dataclass
class DrainReport:
    """What one drain moved from the inbox to the warehouse and what it caused."""

    entries: int = 0
    events: int = 0
    rows_loaded: int = 0
    rows_unchanged: int = 0
    duplicates_in_request: int = 0
    rows_quarantined: int = 0  # at load (a value that does not cast) and by the data contract
    suppressions: int = 0
    settled: list[str] = field(default_factory=list)
    batch_ids: list[str] = field(default_factory=list)
    contract_failures: list[str] = field(default_factory=list)
    contract_warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "entries": self.entries,
            "events": self.events,
            "rows_loaded": self.rows_loaded,
            "rows_unchanged": self.rows_unchanged,
            "duplicates_in_request": self.duplicates_in_request,
            "rows_quarantined": self.rows_quarantined,
            "suppressions": self.suppressions,
            "settled": len(self.settled),
            "contract_failures": len(self.contract_failures),
        }


_DRAIN_LOCK = threading.Lock()


def drain(
    settings: Settings,
    *,
    validate: Validator | None = None,
    wait_seconds: float = 0.0,
    limit: int = MAX_ENTRIES_PER_DRAIN,
) -> DrainReport:
    """Move the waiting inbox entries into the warehouse (see the module docstring); an empty report when nothing
    waits. One drain at a time per process; another process draining at once only finds the work done.

    Raises:
        WarehouseBusy: another process held the warehouse for ``wait_seconds``; the entries stay in the inbox.
    """
    inbox = Inbox(inbox_path(settings))
    with _DRAIN_LOCK:
        entries = inbox.entries(limit)
        if not entries:
            return DrainReport()
        validate = validate or contract_validator(settings)
        con = open_warehouse(settings.warehouse, wait_seconds)
        try:
            with _LazyLedger(settings.send_ledger) as ledger:
                report = _drain_entries(con, entries, ledger, validate, region=settings.sms_default_region)
        finally:
            con.close()
        inbox.remove([e.entry_id for e in entries])
    log.info(
        "webhook inbox drained: %d request(s), %d event(s), %d appended, %d unchanged, %d quarantined, "
        "%d suppression(s), %d send(s) settled",
        report.entries,
        report.events,
        report.rows_loaded,
        report.rows_unchanged,
        report.rows_quarantined,
        report.suppressions,
        len(report.settled),
    )
    return report


class _LazyLedger:
    """The send ledger, opened the first time it is needed (most batches settle nothing)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ledger: SendLedger | None = None

    def get(self) -> SendLedger:
        if self._ledger is None:
            self._ledger = SendLedger(self.path)
        return self._ledger

    def __enter__(self) -> _LazyLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._ledger is not None:
            self._ledger.close()


def _drain_entries(
    con: duckdb.DuckDBPyConnection,
    entries: list[InboxEntry],
    ledger: _LazyLedger,
    validate: Validator,
    *,
    region: str,
) -> DrainReport:
    ensure_schemas(con)
    report = DrainReport(entries=len(entries))
    leftover = ops.pending_batch_ids(con, contact_data=True)  # a crash between an earlier load and its validation
    all_events = [e for entry in entries for e in entry.events]
    resolved = _resolve_customers(con, all_events, ledger, region=region)
    extracts: dict[str, list[EntityExtract]] = {}
    accepted_candidates: list[MessageEvent] = []
    for entry in entries:
        events, duplicates = _unique(resolved[id(e)] for e in entry.events)
        report.events += len(events)
        report.duplicates_in_request += duplicates
        if events:
            extracts.setdefault(entry.provider, []).append(_extract(entry, events))
            accepted_candidates += events
    for provider, parts in extracts.items():
        loaded = load_extracts(con, parts, source_name=SOURCE_PREFIX + provider, flow_run_id=None)
        for batch in loaded.batches:
            report.batch_ids.append(batch.batch_id)
            report.rows_loaded += batch.rows_loaded
            report.rows_unchanged += batch.rows_unchanged
            report.rows_quarantined += batch.rows_quarantined
    to_validate = [*leftover, *(b for b in report.batch_ids if b not in leftover)]
    if to_validate:
        summary = validate(con, to_validate)
        report.contract_failures = list(getattr(summary, "critical_failures", []))
        report.contract_warnings = list(getattr(summary, "warning_failures", []))
        report.rows_quarantined += int(getattr(summary, "quarantined_rows", 0) or 0)
    accepted = accepted_event_ids(con, [e.event_id for e in accepted_candidates])
    effective = [e for e in accepted_candidates if e.event_id in accepted]
    report.suppressions = record_suppressions(con, effective)
    report.settled = settle_sends(con, ledger, effective)
    return report


def _unique(events: Iterable[list[MessageEvent]]) -> tuple[list[MessageEvent], int]:
    """The events of one request, each event id once (the first), and how many repeats were left out."""
    seen: set[str] = set()
    out: list[MessageEvent] = []
    repeats = 0
    for group in events:
        for e in group:
            if e.event_id in seen:
                repeats += 1
                continue
            seen.add(e.event_id)
            out.append(e)
    return out, repeats


def _extract(entry: InboxEntry, events: list[MessageEvent]) -> EntityExtract:
    columns = list(CONTACT_ENTITIES[ENTITY])
    rows = [e.raw_row() for e in events]
    arrays = {c: pa.array([r[c] for r in rows], pa.string()) for c in columns}
    arrays[SOURCE_ROW] = pa.array(range(1, len(rows) + 1), pa.int64())
    received = entry.received_at.isoformat(sep=" ", timespec="seconds")
    return EntityExtract(
        entity=ENTITY,
        table=pa.table(arrays),
        source_file=f"{entry.provider} webhook request received {received} UTC (inbox entry {entry.entry_id})",
        file_hash=entry.digest,
    )


# --- who the events are about ----------------------------------------------------------------------------------


def _resolve_customers(
    con: duckdb.DuckDBPyConnection, events: list[MessageEvent], ledger: _LazyLedger, *, region: str
) -> dict[int, list[MessageEvent]]:
    """Each event (by ``id()``) with its customer filled in; an inbound opt-out from a number several customers
    share becomes one event per customer (``<event_id>:<customer_id>``)."""
    keys = sorted({e.reminder_key for e in events if e.reminder_key and not e.customer_id})
    by_key = planned_customers(con, keys)
    for key in (k for k in keys if k not in by_key):
        record = ledger.get().get(key)
        if record is not None and record.customer_id:
            by_key[key] = record.customer_id
    by_phone = customers_by_phone(con, region) if any(e.phone for e in events) else {}
    out: dict[int, list[MessageEvent]] = {}
    for e in events:
        if e.phone:
            ids = by_phone.get(e.phone, [])
            if not ids:
                note = "no current customer has this number"
                out[id(e)] = [replace(e, reason=f"{e.reason}; {note}" if e.reason else note)]
            elif len(ids) == 1:
                out[id(e)] = [replace(e, customer_id=ids[0])]
            else:
                out[id(e)] = [replace(e, customer_id=c, event_id=f"{e.event_id}:{c}") for c in ids]
        elif e.reminder_key and not e.customer_id:
            out[id(e)] = [replace(e, customer_id=by_key.get(e.reminder_key))]
        else:
            out[id(e)] = [e]
    return out


def planned_customers(con: duckdb.DuckDBPyConnection, reminder_keys: Sequence[str]) -> dict[str, str]:
    """reminder_key -> customer_id of the planned reminders among ``reminder_keys``."""
    if not reminder_keys:
        return {}
    rows = con.execute(
        "SELECT reminder_key, customer_id FROM ops.reminders_planned "
        "WHERE list_contains(?, reminder_key) AND customer_id IS NOT NULL",
        [list(reminder_keys)],
    ).fetchall()
    return {k: c for k, c in rows}


def customers_by_phone(con: duckdb.DuckDBPyConnection, region: str) -> dict[str, list[str]]:
    """E.164 number -> the current customers with that phone (numbers without a country code read in ``region``)."""
    from relance.webhooks.twilio import e164

    sql = current_versions_sql(entity("customers"))
    rows = con.execute(
        f"""SELECT customer_id, phone FROM ({sql}) AS c
            WHERE NOT coalesce(_deleted, false) AND phone IS NOT NULL AND customer_id IS NOT NULL
            ORDER BY customer_id""",
        [list(ops.EXCLUDED_STATES)],
    ).fetchall()
    out: dict[str, list[str]] = {}
    for customer_id, phone in rows:
        number = e164(str(phone), region)
        if number is not None:
            out.setdefault(number, []).append(str(customer_id))
    return out


# --- what the contract accepted, and its consequences ----------------------------------------------------------


def accepted_event_ids(con: duckdb.DuckDBPyConnection, event_ids: Sequence[str]) -> set[str]:
    """The events among ``event_ids`` whose current version is accepted: in a batch validated and not excluded,
    not quarantined by the data contract."""
    if not event_ids:
        return set()
    sql = current_versions_sql(entity(ENTITY))
    rows = con.execute(
        f"""SELECT r.event_id FROM ({sql}) AS r
            WHERE list_contains(?, r.event_id) AND NOT coalesce(r._deleted, false)
                AND NOT EXISTS (
                    SELECT 1 FROM ops.ingest_batches AS b
                    WHERE b.batch_id = r._batch_id AND b.validation_state = 'pending')
                AND NOT EXISTS (
                    SELECT 1 FROM ops.quarantine AS q
                    WHERE q.entity = '{ENTITY}' AND q.batch_id = r._batch_id AND q.natural_key = r.event_id)""",
        [list(ops.EXCLUDED_STATES), list(dict.fromkeys(event_ids))],
    ).fetchall()
    return {r[0] for r in rows}


def _suppression_reason(e: MessageEvent) -> str:
    detail = f": {e.reason}" if e.reason else ""
    return f"{e.provider} {e.event} (event {e.event_id}{detail})"[:_MAX_REASON_CHARS]


def record_suppressions(con: duckdb.DuckDBPyConnection, events: Sequence[MessageEvent]) -> int:
    """One ``ops.contact_suppressions`` row per suppressing event, once (see the module docstring); in one
    transaction. Returns how many were written."""
    wanted = [e for e in events if e.suppresses and e.customer_id and e.occurred_at is not None]
    if not wanted:
        return 0
    existing = ops.read_suppressions(con)
    known: dict[tuple[str, str], list[tuple[Any, Any]]] = {}
    for row in existing.itertuples(index=False):
        known.setdefault((row.customer_id, row.channel), []).append((row.created_at, row.lifted_at))
    written = 0
    con.begin()
    try:
        for e in wanted:
            assert e.customer_id is not None and e.occurred_at is not None
            at = pd.Timestamp(e.occurred_at)
            rows = known.setdefault((e.customer_id, e.channel), [])
            if any(
                pd.isna(lifted) or pd.Timestamp(lifted) >= at or pd.Timestamp(created) == at for created, lifted in rows
            ):
                continue
            if ops.add_suppression(
                con,
                e.customer_id,
                e.channel,
                reason=_suppression_reason(e),
                source=SUPPRESSION_SOURCE,
                at=e.occurred_at,
            ):
                written += 1
                rows.append((at, None))
        con.commit()
    except BaseException:
        con.rollback()
        raise
    if written:
        log.info("%d contact suppression(s) written from provider events", written)
    return written


def settle_sends(con: duckdb.DuckDBPyConnection, ledger: _LazyLedger, events: Sequence[MessageEvent]) -> list[str]:
    """Settle as ``'sent'`` the send-ledger rows that settling events are about and that are not ``'sent'`` yet
    (``'sending'``: outcome unknown; or ``'failed'``): the provider accepted the message
    (:meth:`relance.send_ledger.SendLedger.settle_from_provider`, its audit note naming the event). Returns the
    keys settled; refreshes the warehouse copy ``ops.reminder_sends`` when there are any."""
    settled: list[str] = []
    for e in events:
        if not e.settles or e.reminder_key in settled:
            continue
        assert e.reminder_key is not None
        record = ledger.get().get(e.reminder_key)
        if record is None or record.status == "sent":
            continue
        if record.channel and record.channel != e.channel:
            log.warning(
                "reminder %s is a %s send, but a %s %s event names it: not settled",
                e.reminder_key,
                record.channel,
                e.provider,
                e.event,
            )
            continue
        previous = ledger.get().settle_from_provider(
            e.reminder_key,
            provider=e.provider,
            event=f"{e.event} (event {e.event_id})",
            provider_message_id=e.provider_message_id,
        )
        if previous is not None:
            settled.append(e.reminder_key)
    if settled:
        mirror_to_warehouse(ledger.get(), con)
    return settled
