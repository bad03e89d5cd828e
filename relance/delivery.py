"""Exactly-once delivery of planned reminders, with a durable send ledger outside the warehouse.

The protocol, per reminder (``reminder_key`` = sha256(invoice_id, step), see ``relance.reminders.policy``):

1. ``ops.reminders_planned`` (warehouse) gets the row once (``ON CONFLICT DO NOTHING``): the first plan of a step
   wins and keeps its lineage (model version, MLflow run, dbt invocation, flow run).
2. A key whose status in the send ledger (``relance.send_ledger.SendLedger``, its own SQLite file that a
   warehouse rebuild, restore or ``relance demo --fresh`` does not touch) is ``'sent'`` is skipped: that is what
   makes reruns safe.
3. Otherwise the row is claimed by writing ``'sending'`` *and committing it before the transport is called*,
   then set to ``'sent'`` (provider message id / outbox path, ``sent_at``) or ``'failed'`` (``last_error``,
   ``attempts``). ``'failed'`` rows are tried again on the next run.
4. A row found in ``'sending'`` means a previous run died between claiming and recording the outcome, or the
   provider did not answer (timeout): the customer *may* have received the message. It is deliberately **not
   resent automatically** -- an unpaid-invoice reminder sent twice is worse than one sent a day late. It is
   logged as a warning and counted (``DeliveryReport.stuck_sending``) until someone reconciles it: look the
   ``reminder_key`` up in the SendGrid activity feed (it is a custom arg) or in the outbox, then run
   ``relance sends reconcile KEY --status sent`` (``SendLedger.reconcile``), or ``--status failed`` to have the
   next run send it (``relance sends`` lists them).

The warehouse keeps a copy for SQL readers: each :func:`deliver` first imports sends the warehouse's
``ops.reminder_sends`` knows and the ledger does not (a warehouse from a version whose ledger was that table),
then recreates ``ops.reminder_sends`` from the ledger when it is done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import pandas as pd

from relance import ops
from relance.channels.email import DeliveryError, SendResult, Transport, build_mail
from relance.reminders.policy import PLANNED_COLUMNS
from relance.send_ledger import SendLedger, import_warehouse_sends, mirror_to_warehouse, none_if_missing

log = logging.getLogger(__name__)


@dataclass
class DeliveryReport:
    """What one :func:`deliver` call did. ``by_channel`` counts messages *sent* in this call, per channel."""

    sent: int = 0
    skipped_already_sent: int = 0
    failed: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)
    stuck_sending: int = 0
    in_doubt: int = 0
    paused: int = 0
    failed_keys: list[str] = field(default_factory=list)
    imported_from_warehouse: int = 0
    blocked: int = 0  # stopped by a rule checked just before the send (ops.reminder_blocks says which)
    blocked_by_rule: dict[str, int] = field(default_factory=dict)

    def as_rows(self) -> list[dict[str, Any]]:
        """One row per outcome, for a Prefect table artifact."""
        return [
            {"outcome": "sent", "count": self.sent},
            {"outcome": "already sent before", "count": self.skipped_already_sent},
            {"outcome": "failed (retried next run)", "count": self.failed},
            {
                "outcome": "left in 'sending' (needs reconciliation)",
                "count": self.stuck_sending + self.in_doubt,
            },
            {"outcome": "not attempted (channel paused)", "count": self.paused},
            *(
                {"outcome": f"blocked just before sending: {rule}", "count": n}
                for rule, n in sorted(self.blocked_by_rule.items())
            ),
        ]


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _lineage(lineage: Mapping[str, str | None], *names: str) -> str | None:
    return next((str(lineage[n]) for n in names if lineage.get(n)), None)


def handled_reminder_keys(ledger: SendLedger) -> set[str]:
    """Keys already sent or in flight: pass them to ``plan_reminders(exclude_keys=...)`` so they do not take
    a place under today's cap. (After an upgrade, call ``relance.send_ledger.import_warehouse_sends`` first so
    the sends an earlier version recorded in the warehouse count too; :func:`deliver` does it as well.)"""
    return ledger.handled_keys()


def record_planned(
    con: duckdb.DuckDBPyConnection,
    planned: pd.DataFrame,
    *,
    lineage: Mapping[str, str | None],
    flow_run_id: str | None,
    planned_at: datetime | None = None,
) -> int:
    """Insert planned reminders not yet in ``ops.reminders_planned``, with their lineage; returns how many were
    new."""
    if planned.empty:
        return 0
    frame = planned[[*PLANNED_COLUMNS, *(c for c in ops.ENGINE_PLAN_COLUMNS if c in planned.columns)]].copy()
    frame["model_version"] = frame["model_version"].where(
        frame["model_version"].notna(), _lineage(lineage, "model_version", "model.version")
    )
    frame["model_run_id"] = frame["model_run_id"].where(
        frame["model_run_id"].notna(), _lineage(lineage, "model_run_id", "model.run_id")
    )
    frame["dbt_invocation_id"] = _lineage(lineage, "dbt_invocation_id", "dbt.invocation_id")
    frame["planned_at"] = planned_at or _utcnow()
    frame["flow_run_id"] = flow_run_id or _lineage(lineage, "flow_run_id", "prefect.flow_run_id")
    return ops.record_planned(con, frame)


def deliver(
    con: duckdb.DuckDBPyConnection,
    planned: pd.DataFrame,
    *,
    ledger: SendLedger,
    transport_for: Callable[[str], Transport],
    lineage: Mapping[str, str | None],
    flow_run_id: str | None,
    sender_email: str,
    sender_name: str,
    max_attempts: int = 2,
    backoff_seconds: float = 1.0,
    pause_after_consecutive_failures: int = 10,
    now: Callable[[], datetime] = _utcnow,
    stop_check: Callable[[Mapping[str, Any]], Any] | None = None,
) -> DeliveryReport:
    """Record ``planned`` in the ledger and send every reminder not sent before, at most once each.

    ``planned`` is the frame of ``relance.reminders.policy.plan_reminders`` (rendering columns such as
    ``due_date`` and ``customer_name`` are used when present). Requires the ops tables
    (``relance.warehouse.ensure_schemas``). ``ledger`` is the durable send ledger (``Settings.send_ledger``);
    call with no transaction open on ``con`` (the copy of the ledger in ``ops.reminder_sends`` is rewritten in
    a transaction of its own).

    Retryable errors (429, 5xx, connection refused) are retried in this call up to ``max_attempts`` with
    exponential backoff (``backoff_seconds``, doubled each time); after that, and for any other error, the
    row is ``'failed'`` and is tried again by the next run. A channel that fails
    ``pause_after_consecutive_failures`` times in a row is paused for the rest of the call (provider down, bad
    API key): its remaining rows are left untouched and counted in ``paused`` rather than hammering the
    provider.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    report = DeliveryReport(imported_from_warehouse=import_warehouse_sends(ledger, con))
    if planned.empty:
        _mirror(ledger, con)
        return report
    flow_run_id = flow_run_id or _lineage(lineage, "flow_run_id", "prefect.flow_run_id")
    new = record_planned(con, planned, lineage=lineage, flow_run_id=flow_run_id, planned_at=now())
    log.info("%d planned reminders, %d new in ops.reminders_planned", len(planned), new)

    mail_lineage = {**lineage, "flow_run_id": flow_run_id}
    statuses = ledger.statuses(planned["reminder_key"].astype(str).tolist())
    consecutive_failures: dict[str, int] = {}

    for row in planned.to_dict("records"):
        key, channel = str(row["reminder_key"]), str(row["channel"])
        status = statuses.get(key, (None, 0))[0]
        if status == "sent":
            report.skipped_already_sent += 1
            continue
        if status == "sending":
            report.stuck_sending += 1
            log.warning(
                "reminder %s (%s) is still 'sending' from an earlier run: not resent; settle it with "
                "`relance sends reconcile`",
                key,
                channel,
            )
            continue
        if consecutive_failures.get(channel, 0) >= pause_after_consecutive_failures:
            report.paused += 1
            continue
        stop = stop_check(row) if stop_check is not None else None
        if stop is not None:
            ops.record_blocks(
                con,
                [
                    {
                        "reminder_key": key,
                        "as_of_date": row.get("as_of_date"),
                        "invoice_id": row.get("invoice_id"),
                        "customer_id": row.get("customer_id"),
                        "channel": channel,
                        "rule": stop.rule,
                        "detail": stop.detail,
                        "blocked_at": now(),
                        "flow_run_id": flow_run_id,
                    }
                ],
            )
            report.blocked += 1
            report.blocked_by_rule[stop.rule] = report.blocked_by_rule.get(stop.rule, 0) + 1
            log.warning("reminder %s (%s) to %s blocked: %s", key, channel, row.get("customer_id"), stop.detail)
            continue

        try:
            transport = transport_for(channel)
            message: Any = (
                build_mail(row, sender_email=sender_email, sender_name=sender_name, lineage=mail_lineage, now=now())
                if channel == "email"
                else {k: none_if_missing(v) for k, v in row.items()}
            )
        except (ValueError, KeyError, TypeError) as exc:
            # Cannot even build the message: no attempt was made, nothing can have gone out.
            ledger.failed(
                key,
                channel,
                f"cannot prepare message: {exc}",
                statuses.get(key, (None, 0))[1],
                flow_run_id=flow_run_id,
                at=now(),
            )
            report.failed += 1
            report.failed_keys.append(key)
            log.error("reminder %s: cannot prepare %s message: %s", key, channel, exc)
            continue

        attempts = ledger.claim(
            key,
            channel,
            flow_run_id=flow_run_id,
            invoice_id=row.get("invoice_id"),
            customer_id=row.get("customer_id"),
            step=row.get("step"),
            recipient=row.get("recipient"),
            at=now(),
        )
        if attempts is None:  # someone else (another run) got there between our read and our claim
            report.skipped_already_sent += 1
            continue

        outcome = _send_with_retries(transport, message, key, attempts, max_attempts, backoff_seconds)
        attempts = outcome.attempts
        if outcome.result is not None:
            ledger.sent(
                key,
                provider_message_id=outcome.result.provider_message_id,
                outbox_path=str(outcome.result.outbox_path) if outcome.result.outbox_path else None,
                attempts=attempts,
                at=now(),
                flow_run_id=flow_run_id,
            )
            report.sent += 1
            report.by_channel[channel] = report.by_channel.get(channel, 0) + 1
            consecutive_failures[channel] = 0
            continue
        error = outcome.error
        assert error is not None
        if isinstance(error, DeliveryError) and error.ambiguous:
            ledger.failed(
                key, channel, f"in doubt: {error}", attempts, status="sending", flow_run_id=flow_run_id, at=now()
            )
            report.in_doubt += 1
            log.warning("reminder %s: outcome unknown (%s); left in 'sending' for reconciliation", key, error)
        else:
            ledger.failed(key, channel, f"{type(error).__name__}: {error}", attempts, flow_run_id=flow_run_id, at=now())
            report.failed += 1
            report.failed_keys.append(key)
            log.error("reminder %s (%s) failed after %d attempt(s): %s", key, channel, attempts, error)
        consecutive_failures[channel] = consecutive_failures.get(channel, 0) + 1
        if consecutive_failures[channel] == pause_after_consecutive_failures:
            log.error(
                "%d consecutive %s failures: pausing that channel for this run",
                pause_after_consecutive_failures,
                channel,
            )

    log.info(
        "delivery: %d sent %s, %d already sent, %d failed, %d stuck in 'sending', %d in doubt, %d paused, %d blocked",
        report.sent,
        report.by_channel,
        report.skipped_already_sent,
        report.failed,
        report.stuck_sending,
        report.in_doubt,
        report.paused,
        report.blocked,
    )
    _mirror(ledger, con)
    return report


def _mirror(ledger: SendLedger, con: duckdb.DuckDBPyConnection) -> None:
    try:
        mirror_to_warehouse(ledger, con)
    except duckdb.Error:  # a derived copy: the sends are in the ledger, and the next delivery rewrites it
        log.exception("could not copy the send ledger to ops.reminder_sends; the ledger itself is up to date")


@dataclass
class _Outcome:
    attempts: int
    result: SendResult | None = None
    error: Exception | None = None


def _send_with_retries(
    transport: Transport,
    message: Any,
    key: str,
    attempts: int,
    max_attempts: int,
    backoff_seconds: float,
) -> _Outcome:
    """Call the transport, retrying only errors the provider calls transient and that cannot duplicate."""
    for attempt in range(max_attempts):
        attempts += 1
        try:
            return _Outcome(attempts=attempts, result=transport.send(message, key))
        except DeliveryError as exc:
            if exc.ambiguous or not exc.retryable or attempt == max_attempts - 1:
                return _Outcome(attempts=attempts, error=exc)
            delay = backoff_seconds * 2**attempt
            log.info("reminder %s: transient error (%s), retrying in %.1fs", key, exc.status, delay)
            if delay > 0:
                time.sleep(delay)
        except Exception as exc:  # a bug or an I/O error in a transport: record it, keep the ledger honest
            return _Outcome(attempts=attempts, error=exc)
    raise AssertionError("unreachable")  # pragma: no cover
