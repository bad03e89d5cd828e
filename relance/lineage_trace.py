"""Where a reminder, an invoice or a prediction comes from: the chain of ids resolved into a tree of things to open.

``relance lineage show KEY`` prints what :func:`trace` returns. From the top: the reminder (``ops.reminders_planned``)
and the message that carried it (the send ledger, outside the warehouse: status, provider message id, outbox file,
the provider's events from ``raw.message_events``); the engine's decision (``ops.reminder_decisions``: scenario,
step, reasons); the score of each invoice it is about (``ops.predictions``) with the MLflow run of its model; the
invoice's features (``ml.ml_invoice_features``) with the archived dbt invocation that built them; the load batches
of the raw rows behind them (``raw.<entity>._batch_id`` -> ``ops.ingest_batches``) with the landing file (its
sha256 recomputed and checked against the batch's hash) and the validation runs that passed them (GX data docs);
and at each step the Prefect flow run that wrote it, up to the daily run.

Every node says whether what it names was found (``True``), is missing (``False``: a broken link, never left out)
or could not be checked from here (``None``: e.g. a Prefect server whose database is elsewhere), and where to open
it (``links``: a path that exists, a URL). No Prefect import: the Prefect database is read as a file (SQLite) when
it is the embedded one; MLflow through its client (or its REST API for an HTTP tracking server).
"""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
import re
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from base64 import b64encode
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from relance import lineage

if TYPE_CHECKING:
    import duckdb

    from relance.send_ledger import SendLedger, SendRecord
    from relance.settings import Settings

log = logging.getLogger(__name__)

#: The keys of a node in its JSON form (stable: machines read them).
NODE_KEYS: tuple[str, ...] = ("kind", "id", "found", "attributes", "links", "children")
#: What people may prefix a key with to say what it is (otherwise it is guessed).
KEY_PREFIXES: tuple[str, ...] = ("reminder", "invoice", "prediction", "message")
#: At most this many reminders under an invoice (newest first; the node says how many there are).
MAX_REMINDERS_PER_INVOICE = 10
#: Feature columns shown on a features node (those the relation has), enough to recognise the row.
FEATURE_SUMMARY: tuple[str, ...] = (
    "open_amount",
    "days_to_due",
    "invoice_age_days",
    "cust_late_share",
    "cust_mean_days_late",
    "reminder_count",
    "is_disputed",
    "risk_collective_procedure",
)
#: An OpenLineage events file larger than this is not scanned (its events are better read in a collector).
MAX_OPENLINEAGE_SCAN_BYTES = 64 * 1024 * 1024
_HEX = re.compile(r"^[0-9a-f]{6,64}$")


@dataclass
class LineageNode:
    """One thing in the chain: what it is (``kind``), its id, whether it was found, what it says, where to open it."""

    kind: str
    id: str
    found: bool | None
    attributes: dict[str, Any] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    children: list[LineageNode] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The node and its children as JSON-ready values, with the keys of :data:`NODE_KEYS`."""
        return {
            "kind": self.kind,
            "id": self.id,
            "found": self.found,
            "attributes": {k: _jsonable(v) for k, v in self.attributes.items()},
            "links": dict(self.links),
            "children": [c.to_dict() for c in self.children],
        }

    def walk(self) -> Iterator[LineageNode]:
        """This node, then every node below it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()

    def missing(self) -> list[LineageNode]:
        """The nodes below (and including) this one that were not found."""
        return [n for n in self.walk() if n.found is False]


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if value != value else value  # NaN is no JSON
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    return str(value)


@dataclass(frozen=True)
class Locations:
    """Where the things of a chain live: the settings values lineage needs, as plain values."""

    warehouse: Path
    send_ledger: Path
    dbt_runs_dir: Path
    prefect_db: Path | None  # the embedded Prefect server's SQLite file; None: not checked
    prefect_ui_url: str
    mlflow_uri: str | None  # in clear (to connect with; never printed); None: MLflow runs not checked
    mlflow_ui_url: str
    secrets: tuple[str, ...] = ()  # values no message may show (an MLflow error may quote its URI)
    verify_files: bool = True  # recompute the sha256 of landing files (reads them whole)
    openlineage_events: Path | None = None  # the OpenLineage file transport's JSON lines, if any

    @classmethod
    def from_settings(cls, settings: Settings, *, verify_files: bool = True) -> Locations:
        return cls(
            warehouse=settings.warehouse,
            send_ledger=settings.send_ledger,
            dbt_runs_dir=settings.dbt_runs_dir,
            prefect_db=settings.prefect_dir / "prefect.db",
            prefect_ui_url=settings.prefect_ui_url.rstrip("/"),
            mlflow_uri=settings.mlflow_uri,
            mlflow_ui_url=settings.mlflow_ui_url.rstrip("/"),
            secrets=tuple(settings.secret_values()),
            verify_files=verify_files,
            # relance.openlineage's file transport (EVENTS_FILE) writes there
            openlineage_events=settings.lineage_dir / "openlineage.jsonl",
        )


class UnknownKey(LookupError):
    """The key names no reminder, invoice, prediction or message; ``hints`` are the nearest names known."""

    def __init__(self, key: str, hints: Sequence[str] = (), detail: str = "") -> None:
        self.key = key
        self.hints = list(hints)
        self.detail = detail
        super().__init__(f"no reminder, invoice or prediction named {key}" + (f": {detail}" if detail else ""))


@dataclass(frozen=True)
class LineageKey:
    """What a key names once resolved."""

    kind: str  # reminder | invoice | prediction
    value: str  # the reminder key or the invoice id
    as_of_date: date | None = None  # predictions only


# --- the key --------------------------------------------------------------------------------------------------


def resolve_key(con: duckdb.DuckDBPyConnection, ledger: SendLedger | None, text: str) -> LineageKey:
    """What ``text`` names: ``reminder:KEY`` (or a reminder key, or its first 6+ characters), ``invoice:ID`` (or an
    invoice id), ``prediction:ID@YYYY-MM-DD`` (or ``ID@YYYY-MM-DD``), ``message:ID`` (or a provider message id).

    Raises:
        UnknownKey: nothing of that name, with the nearest names as hints.
    """
    text = text.strip()
    prefix, _, rest = text.partition(":")
    explicit = prefix.lower() if rest and prefix.lower() in KEY_PREFIXES else None
    value = rest.strip() if explicit else text
    if not value:
        raise UnknownKey(text, detail="empty key")

    if explicit == "prediction" or (explicit is None and "@" in value):
        return _prediction_key(con, text, value)
    planned = explicit in (None, "reminder") and lineage.planned_reminder(con, value) is not None
    if planned or (explicit in (None, "reminder") and ledger is not None and ledger.get(value) is not None):
        return LineageKey("reminder", value)
    if explicit in (None, "invoice") and _invoice_known(con, ledger, value):
        return LineageKey("invoice", value)
    if explicit in (None, "message") and ledger is not None:
        for record in ledger.records():
            if record.provider_message_id and record.provider_message_id == value:
                return LineageKey("reminder", record.reminder_key)
    if explicit in (None, "reminder") and _HEX.match(value.lower()):
        keys = sorted(
            set(lineage.reminder_keys_starting(con, value.lower()))
            | {r.reminder_key for r in (ledger.records() if ledger else []) if r.reminder_key.startswith(value)}
        )
        if len(keys) == 1:
            return LineageKey("reminder", keys[0])
        if len(keys) > 1:
            raise UnknownKey(text, keys[:10], detail=f"{len(keys)} reminder keys start with {value}: give more")
    raise UnknownKey(text, _hints(con, ledger, value))


def _prediction_key(con: duckdb.DuckDBPyConnection, text: str, value: str) -> LineageKey:
    invoice_id, _, day = value.rpartition("@")
    if not invoice_id:
        raise UnknownKey(text, detail="a prediction is INVOICE_ID@YYYY-MM-DD")
    try:
        as_of = date.fromisoformat(day.strip())
    except ValueError:
        raise UnknownKey(text, detail=f"{day!r} is not a date (YYYY-MM-DD)") from None
    invoice_id = invoice_id.strip()
    if lineage.prediction(con, invoice_id, as_of) is not None:
        return LineageKey("prediction", invoice_id, as_of)
    dates = lineage.prediction_dates(con, invoice_id)
    if dates:
        near = sorted(dates, key=lambda d: abs((d - as_of).days))[:5]
        raise UnknownKey(
            text,
            [f"{invoice_id}@{d.isoformat()}" for d in near],
            detail=f"invoice {invoice_id} was scored on {len(dates)} date(s), not on {as_of}",
        )
    raise UnknownKey(text, [f"{h}@{as_of.isoformat()}" for h in _hints(con, None, invoice_id)])


def _invoice_known(con: duckdb.DuckDBPyConnection, ledger: SendLedger | None, invoice_id: str) -> bool:
    if lineage.invoice_summary(con, invoice_id) is not None or lineage.prediction_dates(con, invoice_id):
        return True
    if lineage.reminders_of_invoice(con, invoice_id):
        return True
    return ledger is not None and any(r.invoice_id == invoice_id for r in ledger.records())


def _hints(con: duckdb.DuckDBPyConnection, ledger: SendLedger | None, value: str) -> list[str]:
    """The names nearest to ``value``: invoice ids that look alike, reminder keys sharing its first characters."""
    invoice_ids = lineage.known_invoice_ids(con)
    hints = sorted(i for i in invoice_ids if i.startswith(value))[:5]  # a truncated id
    hints += difflib.get_close_matches(value, invoice_ids, n=5 - min(len(hints), 3), cutoff=0.6)
    if len(value) >= 4:
        hints += lineage.reminder_keys_starting(con, value[:4].lower(), limit=3)
    if ledger is not None and not hints:
        keys = [r.reminder_key for r in ledger.records()]
        hints += difflib.get_close_matches(value, keys, n=3, cutoff=0.6)
    return list(dict.fromkeys(hints))


# --- the tree -------------------------------------------------------------------------------------------------


def trace(con: duckdb.DuckDBPyConnection, key: str, loc: Locations) -> LineageNode:
    """The lineage tree of ``key`` (see :func:`resolve_key` for what a key may be).

    Raises:
        UnknownKey: ``key`` names nothing relance knows.
    """
    with _open_ledger(loc.send_ledger) as ledger:
        resolved = resolve_key(con, ledger, key)
        tracer = _Tracer(con, ledger, loc)
        if resolved.kind == "reminder":
            return tracer.reminder(resolved.value)
        if resolved.kind == "prediction":
            assert resolved.as_of_date is not None
            return tracer.prediction(resolved.value, resolved.as_of_date)
        return tracer.invoice(resolved.value)


@contextlib.contextmanager
def _open_ledger(path: Path) -> Iterator[SendLedger | None]:
    """The send ledger if its file exists (never created by a look-up), else None."""
    if not path.is_file():
        yield None
        return
    from relance.send_ledger import SendLedger

    with SendLedger(path) as ledger:
        yield ledger


def _sql_literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _day(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _timestamp(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and value != value) and str(value) != ""


class _Tracer:
    """Builds the nodes; remembers what it looked up in MLflow, Prefect and on disk (a chain names them often)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, ledger: SendLedger | None, loc: Locations) -> None:
        self.con = con
        self.ledger = ledger
        self.loc = loc
        self._flow_runs: dict[str, dict[str, Any] | None | str] = {}
        self._mlflow: dict[tuple[str, str | None, str | None], dict[str, Any]] = {}
        self._files: dict[tuple[str, str, str, str], tuple[bool | None, dict[str, Any]]] = {}
        self._openlineage: dict[str, list[str]] | None = None

    # --- reminders and messages ---------------------------------------------------------------------------

    def reminder(self, key: str, *, only_invoice: str | None = None) -> LineageNode:
        planned = lineage.planned_reminder(self.con, key)
        record = self.ledger.get(key) if self.ledger is not None else None
        node = LineageNode("reminder", key, found=planned is not None)
        node.links["warehouse"] = str(self.loc.warehouse)
        if planned is None:
            node.attributes["missing"] = (
                "not in ops.reminders_planned (a rebuilt or restored warehouse?): the plan, its decision and the "
                "lineage ids it was decided with are lost; the send ledger still has the message"
            )
            invoice_ids = [record.invoice_id] if record is not None and record.invoice_id else []
            as_of = None
        else:
            invoice_ids = lineage.parse_json_list(planned.get("invoice_ids")) or [planned["invoice_id"]]
            as_of = _day(planned["as_of_date"])
            node.attributes |= {
                "as_of_date": as_of,
                "customer_id": planned.get("customer_id"),
                "scenario": planned.get("scenario"),
                "arm": planned.get("arm"),
                "step": planned.get("step"),
                "channel": planned.get("channel"),
                "tone": planned.get("tone"),
                "invoices": invoice_ids,
                "open_amount": planned.get("open_amount"),
                "currency": planned.get("currency"),
                "p_late": planned.get("p_late"),
                "expected_cash": planned.get("expected_cash"),
                "reasons": lineage.parse_json_list(planned.get("reasons")),
                "model_version": planned.get("model_version"),
                "model_run_id": planned.get("model_run_id"),
                "dbt_invocation_id": planned.get("dbt_invocation_id"),
                "planned_at": planned.get("planned_at"),
                "deliver_at": planned.get("deliver_at"),
                "sql": f"SELECT * FROM ops.reminders_planned WHERE reminder_key = {_sql_literal(key)}",
            }
            node.attributes = {k: v for k, v in node.attributes.items() if _present(v) or k == "reasons"}
        node.children.append(self.message(key, record))
        node.children.append(self.decision(key))
        for invoice_id in invoice_ids:
            if only_invoice is not None and invoice_id != only_invoice:
                continue
            if as_of is None:
                continue
            node.children.append(self.prediction(invoice_id, as_of, decided_with=planned))
        if planned is not None:
            node.children.append(self.flow_run(planned.get("flow_run_id"), role="planned by"))
        sent_by = record.flow_run_id if record is not None else None
        if sent_by and (planned is None or sent_by != planned.get("flow_run_id")):
            node.children.append(self.flow_run(sent_by, role="sent by"))
        return node

    def message(self, key: str, record: SendRecord | None) -> LineageNode:
        if self.ledger is None:
            node = LineageNode("message", key, found=False)
            node.attributes["missing"] = f"no send ledger at {self.loc.send_ledger}: whether it went out is unknown"
            return node
        if record is None:
            node = LineageNode("message", key, found=False, links={"ledger": str(self.loc.send_ledger)})
            node.attributes["missing"] = (
                "not in the send ledger: never sent (or the ledger was restored from an older backup)"
            )
            return node
        node = LineageNode(
            "message",
            record.provider_message_id or key,
            found=True,
            attributes={
                "status": record.status,
                "channel": record.channel,
                "provider_message_id": record.provider_message_id,
                "sent_at": record.sent_at,
                "attempts": record.attempts,
                "last_error": record.last_error,
                "flow_run_id": record.flow_run_id,
                "origin": record.origin,
            },
            links={"ledger": str(self.loc.send_ledger)},
        )
        node.attributes = {k: v for k, v in node.attributes.items() if _present(v)}
        history = [
            {k: e[k] for k in ("action", "from_status", "to_status", "note", "at")} for e in self.ledger.events(key)
        ]
        if history:
            node.attributes["ledger_events"] = history
        events = lineage.message_events(self.con, key)
        node.attributes["provider_events"] = len(events)
        if record.outbox_path:
            node.children.append(self.file(record.outbox_path, role="outbox copy of the message"))
        for event in events:
            node.children.append(
                LineageNode(
                    "provider_event",
                    str(event["event_id"]),
                    found=True,
                    attributes={k: v for k, v in event.items() if k != "event_id" and _present(v)},
                    links={"warehouse": str(self.loc.warehouse)},
                )
            )
        return node

    def decision(self, key: str) -> LineageNode:
        row = lineage.decision_of_reminder(self.con, key)
        if row is None:
            node = LineageNode("decision", key, found=False)
            node.attributes["missing"] = "no row of ops.reminder_decisions names this reminder"
            return node
        attributes = {
            "as_of_date": _day(row.get("as_of_date")),
            "customer_id": row.get("customer_id"),
            "decision": row.get("decision"),
            "scenario": row.get("scenario"),
            "arm": row.get("arm"),
            "step": row.get("step"),
            "channel": row.get("channel"),
            "rule": row.get("rule"),
            "reasons": lineage.parse_json_list(row.get("reasons")),
            "decided_at": row.get("decided_at"),
            "flow_run_id": row.get("flow_run_id"),
            "sql": f"SELECT * FROM ops.reminder_decisions WHERE reminder_key = {_sql_literal(key)}",
        }
        return LineageNode(
            "decision",
            f"{row.get('customer_id')}@{attributes['as_of_date']}",
            found=True,
            attributes={k: v for k, v in attributes.items() if _present(v) or k == "reasons"},
            links={"warehouse": str(self.loc.warehouse)},
        )

    # --- invoices and predictions -------------------------------------------------------------------------

    def invoice(self, invoice_id: str) -> LineageNode:
        summary = lineage.invoice_summary(self.con, invoice_id)
        node = LineageNode(
            "invoice", invoice_id, found=summary is not None, links={"warehouse": str(self.loc.warehouse)}
        )
        if summary is None:
            node.attributes["missing"] = "in no raw or marts table (its raw rows were removed?)"
        else:
            node.attributes |= {k: v for k, v in summary.items() if k != "invoice_id" and _present(v)}
        dates = lineage.prediction_dates(self.con, invoice_id)
        node.attributes["scored_on"] = len(dates)
        reminders = lineage.reminders_of_invoice(self.con, invoice_id)
        node.attributes["reminders"] = len(reminders)
        planned_keys = {r["reminder_key"] for r in reminders}
        for r in reminders[:MAX_REMINDERS_PER_INVOICE]:
            node.children.append(self.reminder(r["reminder_key"], only_invoice=invoice_id))
        if len(reminders) > MAX_REMINDERS_PER_INVOICE:
            node.attributes["reminders_shown"] = MAX_REMINDERS_PER_INVOICE
        if self.ledger is not None:  # sends whose plan the warehouse lost
            for record in self.ledger.records():
                if record.invoice_id == invoice_id and record.reminder_key not in planned_keys:
                    node.children.append(self.reminder(record.reminder_key, only_invoice=invoice_id))
        if dates and not any(_day(r["as_of_date"]) == dates[0] for r in reminders):
            node.children.append(self.prediction(invoice_id, dates[0]))  # the latest score, if no reminder used it
        return node

    def prediction(self, invoice_id: str, as_of: date, *, decided_with: dict[str, Any] | None = None) -> LineageNode:
        """The score of ``invoice_id`` on ``as_of``. Under a reminder, ``decided_with`` is its plan row: the ids it
        was decided with (model run, dbt invocation) are the ones followed, and a rescoring since is said."""
        row = lineage.prediction(self.con, invoice_id, as_of)
        node = LineageNode(
            "prediction", f"{invoice_id}@{as_of.isoformat()}", found=row is not None,
            links={"warehouse": str(self.loc.warehouse)},
        )  # fmt: skip
        if row is None:
            node.attributes["missing"] = "not in ops.predictions (scored before predictions were stored?)"
        else:
            node.attributes |= {
                "p_late": row.get("p_late"),
                "target_name": row.get("target_name"),
                "days_late_p10": row.get("days_late_p10"),
                "days_late_p50": row.get("days_late_p50"),
                "days_late_p90": row.get("days_late_p90"),
                "reasons": [row.get(f"reason_{i}") for i in (1, 2, 3) if _present(row.get(f"reason_{i}"))],
                "model_name": row.get("model_name"),
                "model_version": row.get("model_version"),
                "model_run_id": row.get("model_run_id"),
                "dbt_invocation_id": row.get("dbt_invocation_id"),
                "scored_at": row.get("scored_at"),
                "sql": f"SELECT * FROM ops.predictions WHERE invoice_id = {_sql_literal(invoice_id)} "
                f"AND as_of_date = DATE '{as_of.isoformat()}'",
            }
            node.attributes = {k: v for k, v in node.attributes.items() if _present(v)}
        if decided_with is None:  # the reminders decided on this score
            node.attributes["reminders"] = [
                r["reminder_key"]
                for r in lineage.reminders_of_invoice(self.con, invoice_id)
                if _day(r["as_of_date"]) == as_of
            ]
        source = row or {}
        run_id, dbt_id = source.get("model_run_id"), source.get("dbt_invocation_id")
        model_name, model_version = source.get("model_name"), source.get("model_version")
        cutoff = _timestamp(source.get("scored_at"))
        if decided_with is not None:
            planned_run, planned_dbt = decided_with.get("model_run_id"), decided_with.get("dbt_invocation_id")
            if row is not None and (
                (_present(planned_run) and planned_run != run_id) or (_present(planned_dbt) and planned_dbt != dbt_id)
            ):
                node.attributes["rescored"] = (
                    f"rescored at {row.get('scored_at')} after the reminder was planned: the reminder was decided "
                    f"with model run {planned_run}, dbt invocation {planned_dbt} (followed below)"
                )
            run_id = decided_with.get("model_run_id") if _present(decided_with.get("model_run_id")) else run_id
            dbt_id = (
                decided_with.get("dbt_invocation_id") if _present(decided_with.get("dbt_invocation_id")) else dbt_id
            )
            if _present(decided_with.get("model_version")):
                model_version = str(decided_with["model_version"])
            planned_at = _timestamp(decided_with.get("planned_at"))
            cutoff = planned_at if planned_at is not None else cutoff
        node.children.append(self.mlflow_run(run_id, model_name or None, model_version))
        node.children.append(self.features(invoice_id, as_of, dbt_id, loaded_before=cutoff, customer_id=None))
        if row is not None:
            node.children.append(self.flow_run(row.get("flow_run_id"), role="scored by"))
        return node

    def features(
        self, invoice_id: str, as_of: date, dbt_invocation_id: str | None, *, loaded_before: datetime | None,
        customer_id: str | None,
    ) -> LineageNode:  # fmt: skip
        row = lineage.invoice_features(self.con, invoice_id, as_of)
        node = LineageNode(
            "features", f"{invoice_id}@{as_of.isoformat()}", found=row is not None,
            links={"warehouse": str(self.loc.warehouse)},
        )  # fmt: skip
        if row is None:
            node.attributes["missing"] = (
                "no row of ml.ml_invoice_features for this invoice and date (the feature grid of the last dbt build "
                "does not hold it: see the dbt invocation below for the build that did)"
            )
        else:
            customer_id = customer_id or row.get("customer_id")
            built_by = row.get("dbt_invocation_id")
            node.attributes["as_of_date"] = as_of
            node.attributes["dbt_invocation_id"] = built_by
            if dbt_invocation_id and built_by and built_by != dbt_invocation_id:
                node.attributes["rebuilt"] = (
                    f"the row now in the table was built by dbt invocation {built_by}; the score used the one of "
                    f"{dbt_invocation_id} (archived below)"
                )
            node.attributes |= {c: row[c] for c in FEATURE_SUMMARY if c in row and _present(row[c])}
            node.attributes["sql"] = (
                f"SELECT * FROM ml.ml_invoice_features WHERE invoice_id = {_sql_literal(invoice_id)} "
                f"AND as_of_date = DATE '{as_of.isoformat()}'"
            )
        node.children.append(self.dbt_invocation(dbt_invocation_id))
        if customer_id is None:
            summary = lineage.invoice_summary(self.con, invoice_id)
            customer_id = summary.get("customer_id") if summary else None
        batches = lineage.raw_batches_of_invoice(self.con, invoice_id, customer_id, loaded_before=loaded_before)
        if not batches:
            missing = LineageNode("raw_batch", f"raw rows of {invoice_id}", found=False)
            missing.attributes["missing"] = "no raw row of this invoice was loaded before it was scored"
            node.children.append(missing)
        for batch in batches:
            node.children.append(self.raw_batch(batch))
        return node

    # --- raw data ---------------------------------------------------------------------------------------------

    def raw_batch(self, rows: dict[str, Any]) -> LineageNode:
        batch_id = rows["batch_id"]
        batch = lineage.ingest_batch(self.con, batch_id)
        node = LineageNode("raw_batch", batch_id, found=batch is not None, links={"warehouse": str(self.loc.warehouse)})
        node.attributes |= {
            "entity": rows["entity"],
            "rows_of_this_invoice": rows["rows"],
            "keys": list(rows["keys"] or []),
            "holds_current_version": bool(rows["holds_current_version"]),
        }
        if batch is None:
            node.attributes["missing"] = "raw rows name this batch, but ops.ingest_batches does not"
            return node
        file_hash = batch.get("file_hash")
        node.attributes |= {
            "source_name": batch.get("source_name"),
            "source_file": batch.get("source_file"),
            "file_hash": file_hash,
            "rows_read": batch.get("rows_read"),
            "rows_loaded": batch.get("rows_loaded"),
            "rows_quarantined": (batch.get("rows_quarantined") or 0) + (batch.get("rows_flagged") or 0),
            "status": batch.get("status"),
            "validation_state": batch.get("validation_state"),
            "state_note": batch.get("state_note"),
            "loaded_at": batch.get("loaded_at"),
            "sql": f"SELECT * FROM raw.{rows['entity']} WHERE _batch_id = {_sql_literal(batch_id)}",
        }
        if rows.get("file_hash") and file_hash and rows["file_hash"] != file_hash:
            node.attributes["raw_file_hash"] = rows["file_hash"]
            node.attributes["hash_mismatch"] = "the raw rows carry another hash than their batch"
        node.attributes = {k: v for k, v in node.attributes.items() if _present(v) or k == "keys"}
        source_file = str(batch.get("source_file") or "")
        node.children.append(
            self.landing_file(source_file, file_hash or "", rows["entity"], str(batch.get("source_name") or ""))
        )
        if node.children[-1].found:
            node.links["file"] = source_file
        validations = lineage.validations_of_batch(self.con, batch_id)
        if not validations:
            missing = LineageNode("validation", f"validation of {batch_id}", found=False)
            missing.attributes["missing"] = (
                f"no validation run covers this batch (state {batch.get('validation_state')})"
            )
            node.children.append(missing)
        for v in validations:
            node.children.append(self.validation(v))
        node.children.append(self.flow_run(batch.get("flow_run_id"), role="loaded by"))
        return node

    def landing_file(self, path: str, file_hash: str, entity: str, source_name: str) -> LineageNode:
        """The file a batch was read from, its sha256 recomputed and checked against the batch's hash."""
        cache_key = (path, file_hash, entity, source_name)
        if cache_key not in self._files:
            self._files[cache_key] = _check_landing_file(path, file_hash, entity, source_name, self.loc.verify_files)
        found, attributes = self._files[cache_key]
        node = LineageNode("file", path or "(no file)", found=found, attributes={"role": "landing file", **attributes})
        if found is not False and path and Path(path).exists():
            node.links["open"] = path
        return node

    def validation(self, row: dict[str, Any]) -> LineageNode:
        success = row.get("success")
        docs = row.get("data_docs_path")
        node = LineageNode(
            "validation",
            str(row["validation_id"]),
            found=True,
            attributes={
                "result": "passed" if success else "failed",
                "success": bool(success),
                "critical_failures": row.get("critical_failures"),
                "warning_failures": row.get("warning_failures"),
                "validated_at": row.get("validated_at"),
                "batches": len(str(row.get("batch_ids") or "").split(",")),
                "data_docs_path": docs if _present(docs) else None,
            },
            links={"warehouse": str(self.loc.warehouse)},
        )
        if _present(docs):
            node.children.append(self.file(str(docs), role="Great Expectations data docs"))
            if Path(str(docs)).exists():
                node.links["data_docs"] = str(docs)
        else:
            node.attributes["data_docs_path"] = "none: this validation built no data docs"
        node.children.append(self.flow_run(row.get("flow_run_id"), role="validated by"))
        return node

    def file(self, path: str, *, role: str) -> LineageNode:
        exists = Path(path).exists()
        node = LineageNode("file", path, found=exists, attributes={"role": role})
        if exists:
            node.links["open"] = path
        else:
            node.attributes["missing"] = "no such file"
        return node

    # --- dbt, MLflow, Prefect ---------------------------------------------------------------------------------

    def dbt_invocation(self, invocation_id: str | None) -> LineageNode:
        if not _present(invocation_id):
            node = LineageNode("dbt_invocation", "(none)", found=False)
            node.attributes["missing"] = "no dbt invocation id was recorded"
            return node
        assert invocation_id is not None
        archive = self.loc.dbt_runs_dir / invocation_id
        results = archive / "run_results.json"
        manifest = archive / "manifest.json"
        node = LineageNode("dbt_invocation", invocation_id, found=results.is_file())
        if not results.is_file():
            node.attributes["missing"] = f"no archived artefacts at {archive} (built before dbt runs were archived?)"
            return node
        node.links |= {"archive": str(archive), "run_results": str(results)}
        if manifest.is_file():
            node.links["manifest"] = str(manifest)
        else:
            node.attributes["manifest"] = "missing from the archive"
        try:
            data = json.loads(results.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            node.found = False
            node.attributes["missing"] = f"run_results.json unreadable: {exc}"
            return node
        meta = data.get("metadata", {})
        statuses: dict[str, int] = {}
        features_status = None
        for result in data.get("results", []):
            statuses[str(result.get("status"))] = statuses.get(str(result.get("status")), 0) + 1
            if str(result.get("unique_id", "")).endswith(".ml_invoice_features"):
                features_status = result.get("status")
        node.attributes |= {
            "generated_at": meta.get("generated_at"),
            "dbt_version": meta.get("dbt_version"),
            "command": (data.get("args") or {}).get("which"),
            "elapsed_s": round(float(data.get("elapsed_time") or 0), 1),
            "results": statuses,
            "ml_invoice_features": features_status or "not built by this invocation",
        }
        if meta.get("invocation_id") and meta["invocation_id"] != invocation_id:
            node.found = False
            node.attributes["missing"] = f"the archive holds invocation {meta['invocation_id']}, not this one"
        return node

    def mlflow_run(self, run_id: str | None, model_name: str | None, model_version: str | None) -> LineageNode:
        if not _present(run_id):
            node = LineageNode("mlflow_run", "(none)", found=False)
            node.attributes["missing"] = "no MLflow run id was recorded (a baseline without a logged run?)"
            return node
        assert run_id is not None
        key = (run_id, model_name, model_version)
        if key not in self._mlflow:
            self._mlflow[key] = _mlflow_lookup(self.loc, run_id, model_name, model_version)
        info = dict(self._mlflow[key])
        found = info.pop("found")
        node = LineageNode("mlflow_run", run_id, found=found, attributes=info)
        experiment = info.get("experiment_id")
        if experiment is not None:
            node.links["run"] = f"{self.loc.mlflow_ui_url}/#/experiments/{experiment}/runs/{run_id}"
        if model_name and model_version and info.get("model_version_run_id") is not None:
            node.links["model_version"] = f"{self.loc.mlflow_ui_url}/#/models/{model_name}/versions/{model_version}"
        return node

    def flow_run(self, flow_run_id: str | None, *, role: str) -> LineageNode:
        if not _present(flow_run_id):
            node = LineageNode("flow_run", "(none)", found=False, attributes={"role": role})
            node.attributes["missing"] = "no flow run id was recorded (run outside Prefect?)"
            return node
        assert flow_run_id is not None
        node = LineageNode(
            "flow_run",
            flow_run_id,
            found=None,
            attributes={"role": role},
            links={"prefect": f"{self.loc.prefect_ui_url}/runs/flow-run/{flow_run_id}"},
        )
        row = self._prefect_row(flow_run_id)
        if isinstance(row, str):  # why it could not be checked
            node.attributes["not_checked"] = row
            return node
        if row is None:
            node.found = False
            node.attributes["missing"] = f"not in the Prefect database {self.loc.prefect_db}"
            return node
        node.found = True
        node.attributes |= {
            "flow": row["flow_name"],
            "name": row["name"],
            "state": row["state_name"] or row["state_type"],
            "start_time": row["start_time"],
            "end_time": row["end_time"],
        }
        node.attributes = {k: v for k, v in node.attributes.items() if _present(v)}
        events = self._openlineage_events(flow_run_id)
        if events is not None:
            node.attributes["openlineage_events"] = events or "none"
            if events:
                node.links["openlineage"] = str(self.loc.openlineage_events)
        if row.get("parent_flow_run_id"):
            node.children.append(self.flow_run(row["parent_flow_run_id"], role="parent run"))
        return node

    def _openlineage_events(self, flow_run_id: str) -> list[str] | None:
        """'<eventType> <job name>' of the OpenLineage events of this run in the file transport's JSON lines; None
        when there is no such file (events go to a collector, or none are emitted) or it is too large to scan."""
        path = self.loc.openlineage_events
        if path is None or not path.is_file() or path.stat().st_size > MAX_OPENLINEAGE_SCAN_BYTES:
            return None
        if self._openlineage is None:
            self._openlineage = {}
            with path.open(encoding="utf-8") as lines:
                for line in lines:
                    try:
                        event = json.loads(line)
                        run_id = event["run"]["runId"]
                    except (ValueError, KeyError, TypeError):
                        continue
                    job = (event.get("job") or {}).get("name", "?")
                    self._openlineage.setdefault(run_id, []).append(f"{event.get('eventType', '?')} {job}")
        return self._openlineage.get(flow_run_id, [])

    def _prefect_row(self, flow_run_id: str) -> dict[str, Any] | None | str:
        """The flow run in the embedded Prefect database; None if not there; a reason (str) if not checkable."""
        if flow_run_id in self._flow_runs:
            return self._flow_runs[flow_run_id]
        result: dict[str, Any] | None | str
        db = self.loc.prefect_db
        if db is None:
            result = "the Prefect database is not checked: open the link"
        elif not db.is_file():
            result = f"no Prefect database at {db} (a Prefect server elsewhere?): open the link"
        else:
            try:
                result = _prefect_flow_run(db, flow_run_id)
            except sqlite3.Error as exc:
                result = f"the Prefect database {db} could not be read: {exc}"
        self._flow_runs[flow_run_id] = result
        return result


# --- outside the warehouse: files, Prefect's database, MLflow ----------------------------------------------------


def _check_landing_file(
    path: str, file_hash: str, entity: str, source_name: str, verify: bool
) -> tuple[bool | None, dict[str, Any]]:
    """(found, attributes) of a batch's source file: its sha256 now, and whether the batch's hash derives from it.

    A batch keeps the hash of its extract: the file's sha256 itself (risk notices: ``<sha256>:<entity>``), or for
    a file read through a mapping profile the sha256 of the file's sha256 and the mapping (so that a corrected
    profile re-reads the same file); the profile is loaded by the batch's source name to recompute it.
    """
    if not path or "://" in path and not path.startswith("file://"):
        return None, {"note": "a query result, not a file: nothing on disk to check"}
    file = Path(path.removeprefix("file://"))
    if not file.is_file():
        return False, {"missing": "no such file (moved, or removed after loading)"}
    attributes: dict[str, Any] = {"size_bytes": file.stat().st_size}
    if not verify:
        return None, attributes | {"note": "sha256 not recomputed (--no-verify)"}
    from relance.sources.base import file_sha256

    sha = file_sha256(file)
    attributes["sha256"] = sha
    if file_hash in (sha, f"{sha}:{entity}"):
        return True, attributes | {"hash_check": "the batch's hash is this file's sha256"}
    derived = _profile_extract_hash(sha, source_name, entity)
    if derived is None:
        return None, attributes | {
            "hash_check": f"cannot recompute the batch's hash: profile {source_name!r} is not a packaged profile"
        }
    if derived == file_hash:
        return True, attributes | {
            "hash_check": f"the batch's hash is sha256(this file's sha256 + profile {source_name!r}'s mapping)"
        }
    return False, attributes | {
        "missing": "the file on disk is not the one loaded: its hash does not give the batch's (changed since, or "
        f"profile {source_name!r} changed)"
    }


def _profile_extract_hash(sha256: str, source_name: str, entity: str) -> str | None:
    """The extract hash the tabular reader would give this file's bytes under the named profile, or None."""
    try:
        from relance.sources.tabular.profile import load_profile
        from relance.sources.tabular.read import extract_hash  # the reader's own definition of the hash

        profile = load_profile(source_name)
        if entity not in profile.entities:
            return None
        return extract_hash(sha256, profile, entity)
    except Exception as exc:  # an unknown or invalid profile: the hash cannot be recomputed
        log.debug("profile %r: %s", source_name, exc)
        return None


_FLOW_RUN_SQL = """
    SELECT fr.id, fr.name, fr.state_type, fr.state_name, fr.start_time, fr.end_time, f.name AS flow_name,
        (SELECT tr.flow_run_id FROM task_run tr WHERE tr.id = fr.parent_task_run_id) AS parent_flow_run_id
    FROM flow_run fr LEFT JOIN flow f ON f.id = fr.flow_id
    WHERE fr.id = ?"""


def _prefect_flow_run(db: Path, flow_run_id: str) -> dict[str, Any] | None:
    """The flow run's row (flow name, state, times, parent flow run) in the embedded server's SQLite database,
    read only; None when it is not there."""
    con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    try:
        con.row_factory = sqlite3.Row
        row = con.execute(_FLOW_RUN_SQL, [flow_run_id]).fetchone()
        return None if row is None else dict(row)
    finally:
        con.close()


def _redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _mlflow_lookup(loc: Locations, run_id: str, model_name: str | None, model_version: str | None) -> dict[str, Any]:
    """found (True/False/None), and what MLflow says of the run and of the registered model version."""
    uri = loc.mlflow_uri
    if not uri:
        return {"found": None, "not_checked": "no MLflow tracking URI: open the link"}
    scheme = urllib.parse.urlsplit(uri).scheme.lower()
    try:
        if scheme in ("http", "https"):
            return _mlflow_rest(uri, run_id, model_name, model_version)
        if scheme == "sqlite":
            path = Path(uri.split("://", 1)[1].removeprefix("/").split("?", 1)[0])  # sqlite:////abs, sqlite:///rel
            if not path.is_file():  # the client would create an empty database there
                return {"found": False, "missing": f"no MLflow database at {path}"}
        if scheme in ("file", ""):  # a local directory store: the client would create it
            path = Path(urllib.parse.urlsplit(uri).path if scheme else uri)
            if not path.is_dir():
                return {"found": False, "missing": f"no MLflow store at {path}"}
        return _mlflow_client(uri, run_id, model_name, model_version)
    except Exception as exc:  # the tracking server is down, refuses us...: say so, the rest of the chain stands
        return {"found": None, "not_checked": _redact(f"MLflow could not be asked: {exc}", loc.secrets)[:300]}


def _run_attributes(
    experiment_id: str, run_name: str | None, status: str | None, start_ms: Any, tags: dict[str, str]
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "experiment_id": str(experiment_id),
        "run_name": run_name,
        "status": status,
        "started_at": (
            datetime.fromtimestamp(int(start_ms) / 1000, UTC)
            .replace(tzinfo=None)
            .isoformat(sep=" ", timespec="seconds")
            if start_ms
            else None
        ),
    }
    for tag in ("dbt.invocation_id", "prefect.flow_run_id", "git.sha", "dataset.hash", "raw.batch_ids"):
        if tags.get(tag):
            attributes[tag] = tags[tag]
    return {k: v for k, v in attributes.items() if v is not None}


def _mlflow_client(uri: str, run_id: str, model_name: str | None, model_version: str | None) -> dict[str, Any]:
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)  # never a registry URI set elsewhere in the process
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return {"found": False, "missing": f"run {run_id} is not in the MLflow tracking store"}
        raise
    info = {"found": True} | _run_attributes(
        run.info.experiment_id, run.info.run_name, run.info.status, run.info.start_time, dict(run.data.tags)
    )
    if model_name and model_version:
        try:
            version = client.get_model_version(model_name, str(model_version))
        except MlflowException:
            info["model_version"] = f"{model_name} v{model_version} is not in the registry"
        else:
            info |= _version_attributes(model_name, model_version, version.run_id, list(version.aliases), run_id)
    return info


def _version_attributes(
    name: str, version: str, version_run_id: str | None, aliases: list[str], run_id: str
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": f"{name} v{version}",
        "model_version_run_id": version_run_id,
        "aliases_now": aliases,
    }
    if version_run_id and version_run_id != run_id:
        out["model_version"] = f"{name} v{version} was registered from run {version_run_id}, not this one"
    return out


def _mlflow_rest(uri: str, run_id: str, model_name: str | None, model_version: str | None) -> dict[str, Any]:
    """The same questions over MLflow's REST API (a tracking server), with a short timeout."""
    parts = urllib.parse.urlsplit(uri)
    base = urllib.parse.urlunsplit((parts.scheme, parts.hostname + (f":{parts.port}" if parts.port else ""),
                                    parts.path.rstrip("/"), "", ""))  # fmt: skip
    headers = {"Accept": "application/json"}
    if parts.username:
        token = b64encode(
            f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}".encode()
        )
        headers["Authorization"] = f"Basic {token.decode()}"

    def get(path: str, **query: str) -> dict[str, Any] | None:
        request = urllib.request.Request(
            f"{base}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(query)}", headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            body = exc.read().decode("utf-8", "replace")
            if "RESOURCE_DOES_NOT_EXIST" in body:
                return None
            raise RuntimeError(f"HTTP {exc.code} from the MLflow server") from None

    answer = get("runs/get", run_id=run_id)
    if answer is None:
        return {"found": False, "missing": f"run {run_id} is not on the MLflow tracking server"}
    run = answer.get("run", {})
    run_info = run.get("info", {})
    tags = {t.get("key"): t.get("value") for t in run.get("data", {}).get("tags", [])}
    info = {"found": True} | _run_attributes(
        run_info.get("experiment_id"), run_info.get("run_name"), run_info.get("status"), run_info.get("start_time"),
        tags,
    )  # fmt: skip
    if model_name and model_version:
        answer = get("model-versions/get", name=model_name, version=str(model_version))
        if answer is None:
            info["model_version"] = f"{model_name} v{model_version} is not in the registry"
        else:
            mv = answer.get("model_version", {})
            info |= _version_attributes(model_name, model_version, mv.get("run_id"), mv.get("aliases", []), run_id)
    return info
