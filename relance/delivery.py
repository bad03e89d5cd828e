"""Exactly-once delivery of planned reminders, with a durable send ledger outside the warehouse.

The protocol, per reminder (``reminder_key`` = sha256(invoice_id, step), see ``relance.reminders.policy``):

1. ``ops.reminders_planned`` (warehouse) gets the row once (``ON CONFLICT DO NOTHING``): the first plan of a step
   wins and keeps its lineage (model version, MLflow run, dbt invocation, flow run).
2. A key whose status in the send ledger (``relance.send_ledger.SendLedger``, its own SQLite file that a
   warehouse rebuild, restore or ``relance demo --fresh`` does not touch) is ``'sent'`` or ``'abandoned'`` is
   skipped: that is what makes reruns safe.
3. Otherwise the row is claimed by writing ``'sending'`` *and committing it before the transport is called*.
   It becomes ``'sent'`` only when the provider accepted the message (SendGrid ``202`` with ``X-Message-ID``,
   a Twilio SID, the outbox file written). What a failure proves decides the rest (``DeliveryError``):

   ====================================================  ====================================================
   the transport reports                                 the ledger row
   ====================================================  ====================================================
   not sent, transient: connection refused, a name that  retried in this run (``max_attempts``), exponential
   does not resolve, 429, 408 (``retryable``)            backoff with jitter, ``Retry-After`` honoured up to
                                                         ``max_retry_after_seconds`` (longer: the channel is
                                                         paused); then ``'failed'``, tried by the next run
   refused for this message: 400, 413, 422...            ``'failed'``, tried by the next run; ``'abandoned'``
   (``permanent``)                                       after ``give_up_after_rejections`` refusals across runs
   refused for the account: 401, 403, 404, 405           ``'failed'`` (not counted against the message); the
   (``pause_channel``)                                   channel is paused for the rest of the run
   outcome unknown: a 5xx, a timeout or a dropped        stays ``'sending'`` with the error: never retried, never
   connection after the request was sent, an accepted    resent; settled by a provider event (the webhook
   answer without the provider's id                      service) or a person (``relance sends reconcile``)
   (``outcome_unknown``)
   ====================================================  ====================================================

4. A row found in ``'sending'`` means a previous run died between claiming and recording the outcome, or the
   provider's answer left the outcome unknown: the customer *may* have received the message. It is deliberately
   **not resent automatically** -- an unpaid-invoice reminder sent twice is worse than one sent a day late. Every
   run reports all of them by age (:func:`sending_by_age`, ``DeliveryReport.sending_overdue`` for those older than
   ``sending_alert_after``): look the ``reminder_key`` up in the SendGrid activity feed (it is a custom arg), the
   Twilio console or the outbox, then run ``relance sends reconcile KEY --status sent`` (``SendLedger.reconcile``),
   or ``--status failed`` to have the next run send it.

A channel whose messages keep failing is paused for the rest of the run (``pause_after_consecutive_failures``,
``pause_after_unknown_outcomes``): a provider that is down or a bad key should not be hammered, nor should a
gateway answering 502 to everything fill the reconciliation list.

The warehouse keeps a copy for SQL readers: each :func:`deliver` first imports sends the warehouse's
``ops.reminder_sends`` knows and the ledger does not (a warehouse from a version whose ledger was that table),
then recreates ``ops.reminder_sends`` from the ledger when it is done.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pandas as pd

from relance import ops
from relance.channels.email import DeliveryError, MailOptions, SendResult, Transport, build_mail
from relance.reminders.policy import PLANNED_COLUMNS
from relance.send_ledger import (
    InFlight,
    SendLedger,
    import_warehouse_sends,
    mirror_to_warehouse,
    none_if_missing,
    sending_by_age,
)

log = logging.getLogger(__name__)

__all__ = ["DeliveryReport", "deliver", "handled_reminder_keys", "record_planned", "retry_delay", "sending_by_age"]


@dataclass
class DeliveryReport:
    """What one :func:`deliver` call did. ``by_channel`` counts messages *sent* in this call, per channel.

    ``sending_overdue``: every ledger row still in ``'sending'`` (outcome unknown, from this run or any earlier
    one) claimed at least ``sending_alert_after`` ago, oldest first -- what a person must reconcile;
    ``sending_total`` counts all rows in ``'sending'`` whatever their age."""

    sent: int = 0
    skipped_already_sent: int = 0
    failed: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)
    stuck_sending: int = 0  # found 'sending' (an earlier run's unknown outcome): not resent
    in_doubt: int = 0  # this run's unknown outcomes, left 'sending'
    in_doubt_keys: list[str] = field(default_factory=list)
    paused: int = 0
    paused_channels: dict[str, str] = field(default_factory=dict)  # channel -> why
    failed_keys: list[str] = field(default_factory=list)
    rejected: int = 0  # refused by the provider for the message itself (counted among ``failed`` or ``abandoned``)
    abandoned: int = 0  # refused for the last allowed time in this run: no longer tried
    abandoned_keys: list[str] = field(default_factory=list)
    skipped_abandoned: int = 0  # abandoned in an earlier run
    imported_from_warehouse: int = 0
    blocked: int = 0  # stopped by a rule checked just before the send (ops.reminder_blocks says which)
    blocked_by_rule: dict[str, int] = field(default_factory=dict)
    sending_total: int = 0
    sending_overdue: list[InFlight] = field(default_factory=list)
    sending_alert_after: timedelta = timedelta(minutes=30)

    def as_rows(self) -> list[dict[str, Any]]:
        """One row per outcome, for a Prefect table artifact."""
        alert = int(self.sending_alert_after.total_seconds() // 60)
        return [
            {"outcome": "sent", "count": self.sent},
            {"outcome": "already sent before", "count": self.skipped_already_sent},
            {"outcome": "failed (retried next run)", "count": self.failed},
            {"outcome": "refused by the provider for the last time (abandoned)", "count": self.abandoned},
            {"outcome": "abandoned earlier (not tried)", "count": self.skipped_abandoned},
            {"outcome": "outcome unknown in this run (left 'sending')", "count": self.in_doubt},
            {"outcome": "left in 'sending' by an earlier run (not resent)", "count": self.stuck_sending},
            {"outcome": f"in 'sending' for {alert} min or more (reconcile them)", "count": len(self.sending_overdue)},
            {"outcome": "not attempted (channel paused)", "count": self.paused},
            *(
                {"outcome": f"blocked just before sending: {rule}", "count": n}
                for rule, n in sorted(self.blocked_by_rule.items())
            ),
        ]

    def sending_rows(self) -> list[dict[str, Any]]:
        """The rows in ``'sending'`` past the alert age, oldest first, for an artifact or the command line."""
        return [r.as_row() for r in self.sending_overdue]


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
    mail_options: MailOptions | None = None,
    max_attempts: int = 3,
    backoff_seconds: float = 1.0,
    max_backoff_seconds: float = 30.0,
    max_retry_after_seconds: float = 60.0,
    give_up_after_rejections: int = 3,
    pause_after_consecutive_failures: int = 10,
    pause_after_unknown_outcomes: int = 3,
    sending_alert_after: timedelta = timedelta(minutes=30),
    now: Callable[[], datetime] = _utcnow,
    stop_check: Callable[[Mapping[str, Any]], Any] | None = None,
    rng: random.Random | None = None,
) -> DeliveryReport:
    """Record ``planned`` in the ledger and send every reminder not sent before, at most once each.

    ``planned`` is the frame of ``relance.reminders.policy.plan_reminders`` or of the engine (rendering columns
    such as ``due_date`` and ``customer_name`` are used when present). Requires the ops tables
    (``relance.warehouse.ensure_schemas``). ``ledger`` is the durable send ledger (``Settings.send_ledger``);
    call with no transaction open on ``con`` (the copy of the ledger in ``ops.reminder_sends`` is rewritten in
    a transaction of its own). ``mail_options``: payment links, unsubscribe group, sandbox mode
    (``MailOptions.from_settings``).

    The module docstring's table says what each failure does. In numbers: a transient failure is tried up to
    ``max_attempts`` times in this call, waiting ``retry_delay`` between tries (exponential from
    ``backoff_seconds``, capped at ``max_backoff_seconds``, with jitter, never less than the provider's
    ``Retry-After``; a ``Retry-After`` above ``max_retry_after_seconds`` pauses the channel instead of sleeping);
    a message refused ``give_up_after_rejections`` times across runs is abandoned; a channel is paused for the
    rest of the call after ``pause_after_consecutive_failures`` failures or ``pause_after_unknown_outcomes``
    unknown outcomes in a row, or at once on an account-level refusal (401, 403). ``sending_alert_after``: the
    age from which a row in ``'sending'`` is listed in the report (``Settings.sending_alert_after_minutes``).
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    report = DeliveryReport(
        imported_from_warehouse=import_warehouse_sends(ledger, con), sending_alert_after=sending_alert_after
    )
    if planned.empty:
        _finish(report, ledger, con, now(), sending_alert_after)
        return report
    flow_run_id = flow_run_id or _lineage(lineage, "flow_run_id", "prefect.flow_run_id")
    new = record_planned(con, planned, lineage=lineage, flow_run_id=flow_run_id, planned_at=now())
    log.info("%d planned reminders, %d new in ops.reminders_planned", len(planned), new)

    mail_lineage = {**lineage, "flow_run_id": flow_run_id}
    statuses = ledger.statuses(planned["reminder_key"].astype(str).tolist())
    consecutive_failures: dict[str, int] = {}
    consecutive_unknown: dict[str, int] = {}
    retry = _RetryPolicy(
        max_attempts=max_attempts,
        backoff_seconds=backoff_seconds,
        max_backoff_seconds=max_backoff_seconds,
        max_retry_after_seconds=max_retry_after_seconds,
        rng=rng or random.Random(),
    )

    def pause(channel: str, why: str) -> None:
        if channel not in report.paused_channels:
            report.paused_channels[channel] = why
            log.error("%s channel paused for the rest of this run: %s", channel, why)

    for row in planned.to_dict("records"):
        key, channel = str(row["reminder_key"]), str(row["channel"])
        status = statuses.get(key, (None, 0))[0]
        if status == "sent":
            report.skipped_already_sent += 1
            continue
        if status == "abandoned":
            report.skipped_abandoned += 1
            continue
        if status == "sending":
            report.stuck_sending += 1
            log.warning(
                "reminder %s (%s) is still 'sending' (outcome unknown) from an earlier run: not resent; settle it "
                "with `relance sends reconcile`",
                key,
                channel,
            )
            continue
        if channel in report.paused_channels:
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
                build_mail(
                    row,
                    sender_email=sender_email,
                    sender_name=sender_name,
                    lineage=mail_lineage,
                    now=now(),
                    options=mail_options,
                )
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

        outcome = _send_with_retries(transport, message, key, attempts, retry)
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
            consecutive_failures[channel] = consecutive_unknown[channel] = 0
            continue

        error = outcome.error
        assert error is not None
        text = f"{type(error).__name__}: {error}"
        if isinstance(error, DeliveryError) and error.outcome_unknown:
            ledger.in_doubt(key, channel, text, attempts, flow_run_id=flow_run_id, at=now())
            report.in_doubt += 1
            report.in_doubt_keys.append(key)
            log.warning("reminder %s: outcome unknown (%s); left 'sending' for reconciliation, not resent", key, error)
            consecutive_unknown[channel] = consecutive_unknown.get(channel, 0) + 1
            if consecutive_unknown[channel] >= pause_after_unknown_outcomes:
                pause(channel, f"{consecutive_unknown[channel]} unknown outcomes in a row (last: {error})")
            continue

        if isinstance(error, DeliveryError) and error.permanent:
            report.rejected += 1
            new_status = ledger.rejected(
                key, channel, text, attempts, give_up_after=give_up_after_rejections, flow_run_id=flow_run_id, at=now()
            )
            if new_status == "abandoned":
                report.abandoned += 1
                report.abandoned_keys.append(key)
            else:
                report.failed += 1
                report.failed_keys.append(key)
            log.error("reminder %s (%s) refused by the provider (%s): %s", key, channel, new_status, error)
        else:
            ledger.failed(key, channel, text, attempts, flow_run_id=flow_run_id, at=now())
            report.failed += 1
            report.failed_keys.append(key)
            log.error("reminder %s (%s) failed after %d attempt(s): %s", key, channel, attempts, error)
        consecutive_unknown[channel] = 0
        consecutive_failures[channel] = consecutive_failures.get(channel, 0) + 1
        if isinstance(error, DeliveryError) and error.pause_channel:
            pause(channel, f"the provider refused the account or endpoint: {error}")
        elif outcome.rate_limited_for is not None:
            pause(channel, f"rate-limited for {outcome.rate_limited_for:.0f}s (over {max_retry_after_seconds:.0f}s)")
        elif consecutive_failures[channel] >= pause_after_consecutive_failures:
            pause(channel, f"{consecutive_failures[channel]} failures in a row (last: {error})")

    _finish(report, ledger, con, now(), sending_alert_after)
    log.info(
        "delivery: %d sent %s, %d already sent, %d failed, %d abandoned, %d unknown outcome(s) this run, "
        "%d stuck in 'sending' from earlier runs, %d paused, %d blocked",
        report.sent,
        report.by_channel,
        report.skipped_already_sent,
        report.failed,
        report.abandoned,
        report.in_doubt,
        report.stuck_sending,
        report.paused,
        report.blocked,
    )
    return report


def _finish(
    report: DeliveryReport, ledger: SendLedger, con: duckdb.DuckDBPyConnection, at: datetime, alert: timedelta
) -> None:
    """Every run ends by listing the rows still in 'sending' by age, and by refreshing the warehouse copy."""
    every = sending_by_age(ledger, at, timedelta(0))
    report.sending_total = len(every)
    report.sending_overdue = [r for r in every if r.age >= alert]
    for r in report.sending_overdue:
        log.warning(
            "reminder %s (%s) in 'sending' for %d min (outcome unknown since %s: %s): reconcile it",
            r.reminder_key,
            r.channel,
            r.age.total_seconds() // 60,
            r.since.isoformat(sep=" ", timespec="minutes"),
            r.last_error or "the run died before recording the outcome",
        )
    _mirror(ledger, con)


def _mirror(ledger: SendLedger, con: duckdb.DuckDBPyConnection) -> None:
    try:
        mirror_to_warehouse(ledger, con)
    except duckdb.Error:  # a derived copy: the sends are in the ledger, and the next delivery rewrites it
        log.exception("could not copy the send ledger to ops.reminder_sends; the ledger itself is up to date")


@dataclass(frozen=True)
class _RetryPolicy:
    max_attempts: int
    backoff_seconds: float
    max_backoff_seconds: float
    max_retry_after_seconds: float
    rng: random.Random


def retry_delay(
    attempt: int,
    *,
    backoff_seconds: float,
    max_backoff_seconds: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number ``attempt + 1`` (``attempt`` counts from 0): exponential backoff
    (``backoff_seconds * 2**attempt``, capped at ``max_backoff_seconds``) with "equal jitter" (between half and
    all of it, so that many runs throttled together do not retry in step), and never less than the provider's
    ``retry_after``."""
    ceiling = min(backoff_seconds * 2**attempt, max_backoff_seconds)
    delay = ceiling / 2 + (rng or random).uniform(0, ceiling / 2)
    return max(delay, retry_after or 0.0)


@dataclass
class _Outcome:
    attempts: int
    result: SendResult | None = None
    error: Exception | None = None
    rate_limited_for: float | None = None  # the provider asked for a wait above the cap: not slept


def _send_with_retries(transport: Transport, message: Any, key: str, attempts: int, policy: _RetryPolicy) -> _Outcome:
    """Call the transport, retrying only errors that prove the request did not go through (``retryable``)."""
    for attempt in range(policy.max_attempts):
        attempts += 1
        try:
            return _Outcome(attempts=attempts, result=transport.send(message, key))
        except DeliveryError as exc:
            if not exc.retryable:
                return _Outcome(attempts=attempts, error=exc)
            if exc.retry_after is not None and exc.retry_after > policy.max_retry_after_seconds:
                return _Outcome(attempts=attempts, error=exc, rate_limited_for=exc.retry_after)
            if attempt == policy.max_attempts - 1:
                return _Outcome(attempts=attempts, error=exc)
            delay = retry_delay(
                attempt,
                backoff_seconds=policy.backoff_seconds,
                max_backoff_seconds=policy.max_backoff_seconds,
                retry_after=exc.retry_after,
                rng=policy.rng,
            )
            log.info("reminder %s: not sent (%s), retrying in %.2fs", key, exc, delay)
            if delay > 0:
                time.sleep(delay)
        except Exception as exc:  # a bug or an I/O error in a transport: record it, keep the ledger honest
            return _Outcome(attempts=attempts, error=exc)
    raise AssertionError("unreachable")  # pragma: no cover
