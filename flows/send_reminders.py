"""Decide today's messages with the reminder engine and deliver each exactly once (email, letter, call list).

The engine (``relance.reminders``) decides one message per customer from its scenario, its reactions and the
models; every decision and its reasons go to ``ops.reminder_decisions``. Just before each send the gate checks the
contact rules again (``relance.reminders.gate``). What was sent is recorded in the durable send ledger
(``Settings.send_ledger``, outside the warehouse).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows._common import current_flow_run_id
from flows._lineage import flow_lineage
from relance import openlineage as ol
from relance.channels import transport_factory
from relance.channels.email import MailOptions
from relance.delivery import DeliveryReport, deliver, handled_reminder_keys
from relance.reminders.gate import CONTACT_STATE_RELATION, SendGate
from relance.reminders.planning import (
    HISTORY_RELATION,
    RISK_EVENTS_RELATION,
    PlanningResult,
    last_sends,
    plan_messages,
)
from relance.reminders.scenarios import load_configured
from relance.send_ledger import SendLedger, import_warehouse_sends
from relance.settings import Settings
from relance.warehouse import connection


@flow(name="send-reminders")
def send_reminders(settings: Settings, as_of_date: date, lineage: dict[str, str]) -> DeliveryReport:
    logger = get_run_logger()
    with flow_lineage(
        settings, "send-reminders", as_of_date=as_of_date, inputs=_inputs(settings), ids=lineage_ids(lineage)
    ) as run_lineage:
        planning, report, gate = _plan_and_deliver(settings, as_of_date, lineage, logger)
        record_lineage(run_lineage, settings, report)
    summary = planning.summary
    create_table_artifact(
        key="reminder-decisions",
        table=[{"decision": k, "customers": v} for k, v in sorted(summary["decisions"].items())]
        + [{"decision": f"rule: {k}", "customers": v} for k, v in sorted(summary["rules"].items())],
        description=f"{summary['messages']} message(s) for {summary['customers']} customer(s); "
        f"{summary['grouped_messages']} group several invoices; channels {summary['channels']}",
    )
    create_markdown_artifact(key="channel-response-model", markdown=f"**Next best action**: {planning.response_note}")
    create_table_artifact(
        key="reminders-sent",
        table=report.as_rows(),
        description=(
            f"{report.sent} sent, {report.skipped_already_sent} already sent before, {report.failed} failed, "
            f"{report.blocked} blocked just before sending ({gate.deferred} deferred to the debtor's hours)"
        ),
    )
    if report.sending_overdue:
        create_table_artifact(
            key="sends-in-doubt",
            table=[
                {
                    "reminder_key": r.reminder_key,
                    "channel": r.channel,
                    "customer": r.customer_id,
                    "in 'sending' for (min)": int(r.age.total_seconds() // 60),
                    "last error": r.last_error,
                }
                for r in report.sending_overdue
            ],
            description=f"{len(report.sending_overdue)} message(s) whose outcome is unknown for more than "
            f"{settings.sending_alert_after_minutes} min: never resent; a provider event settles them, or "
            "`relance sends reconcile KEY --status sent|failed`",
        )
        logger.warning("%d message(s) in doubt ('sending'): reconcile them", len(report.sending_overdue))
    logger.info(
        "%d messages (decisions %s), %d sent, %d already sent, %d failed, %d blocked, %d deferred",
        len(planning.plan),
        summary["decisions"],
        report.sent,
        report.skipped_already_sent,
        report.failed,
        report.blocked,
        gate.deferred,
    )
    return report


def _plan_and_deliver(
    settings: Settings, as_of_date: date, lineage: dict[str, str], logger: Any
) -> tuple[PlanningResult, DeliveryReport, SendGate]:
    """Plan the day's messages and deliver them (the flow's work; the flow around it publishes what happened)."""
    scenarios = load_configured(settings.scenarios_path)  # a broken scenario file stops here, before any send
    flow_run_id = current_flow_run_id()
    with connection(settings.warehouse) as con, SendLedger(settings.send_ledger) as ledger:
        imported = import_warehouse_sends(ledger, con)  # an earlier version's sends, before they are planned again
        if imported:
            logger.warning("%d send(s) recorded in the warehouse imported into %s", imported, settings.send_ledger)
        planning = plan_messages(
            con,
            as_of_date=as_of_date,
            scenarios=scenarios,
            config=settings.engine_config(),
            sent_keys=handled_reminder_keys(ledger),  # steps sent on earlier days are never planned again
            last_sends=last_sends(ledger),  # what this day's earlier runs sent: the contact state starts at dawn
            response_min_history=settings.response_model_min_history,
            flow_run_id=flow_run_id,
        )
        gate = SendGate(con, ledger, settings.contact_rules(), promise_grace_days=settings.promise_grace_days)
        report = deliver(
            con,
            planning.plan,
            ledger=ledger,
            transport_for=transport_factory(settings, as_of_date),
            lineage=lineage,
            flow_run_id=flow_run_id,
            sender_email=settings.sender_email,
            sender_name=settings.sender_name,
            mail_options=MailOptions.from_settings(settings),  # payment link, unsubscribe group, sandbox mode
            sending_alert_after=timedelta(minutes=settings.sending_alert_after_minutes),
            stop_check=gate.check,  # insolvency, suppressions, promises, quiet hours, caps: right before each send
        )
    return planning, report, gate


#: the relations the engine and the gate read (the worklist carries the day's predictions)
READS = ("serving.collection_worklist", CONTACT_STATE_RELATION, HISTORY_RELATION, RISK_EVENTS_RELATION)


def _inputs(settings: Settings) -> list[ol.OutputDataset]:
    return [ol.table(settings, r) for r in READS] + [
        ol.table(settings, "ops.contact_suppressions"),
        ol.sqlite_dataset(settings.send_ledger),
    ]


def lineage_ids(lineage: dict[str, str]) -> dict[str, object]:
    """The daily run's lineage dict (the ids stamped on every reminder) as the ``relance`` facet's join keys."""
    return {
        "dbt_invocation_id": lineage.get("dbt.invocation_id"),
        "mlflow_run_id": lineage.get("model.run_id"),
        "model_version": lineage.get("model.version"),
        "git_sha": lineage.get("git.sha"),
        "raw_batch_ids": [b for b in lineage.get("raw.batch_ids", "").split(",") if b],
    }


def record_lineage(run_lineage: ol.LineageRun, settings: Settings, report: DeliveryReport) -> None:
    """Decisions, plans and blocks in the warehouse; the send ledger; each channel's messages where they went."""
    run_lineage.add_outputs(
        ol.table(settings, "ops.reminder_decisions"),
        ol.table(settings, "ops.experiment_assignments"),
        ol.table(settings, "ops.reminders_planned"),
        ol.sqlite_dataset(settings.send_ledger),
    )
    if report.blocked:
        run_lineage.add_outputs(ol.table(settings, "ops.reminder_blocks", rows=report.blocked))
    for channel, sent in sorted(report.by_channel.items()):
        run_lineage.add_outputs(ol.channel_dataset(settings, channel, rows=sent))
    run_lineage.count(
        sent=report.sent,
        already_sent=report.skipped_already_sent,
        failed=report.failed,
        blocked=report.blocked,
        in_doubt=report.in_doubt,
    )
