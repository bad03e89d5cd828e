"""Plan reminders from the scored worklist and deliver each exactly once (email, letter, call list).

What was sent is recorded in the durable send ledger (``Settings.send_ledger``, outside the warehouse).
"""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from flows._common import current_flow_run_id
from relance.channels import transport_factory
from relance.delivery import DeliveryReport, deliver, handled_reminder_keys
from relance.reminders.policy import plan_reminders
from relance.risk.stops import DunningStops
from relance.send_ledger import SendLedger, import_warehouse_sends
from relance.settings import Settings
from relance.warehouse import connection, read_for_date


@flow(name="send-reminders")
def send_reminders(settings: Settings, as_of_date: date, lineage: dict[str, str]) -> DeliveryReport:
    logger = get_run_logger()
    with connection(settings.warehouse) as con, SendLedger(settings.send_ledger) as ledger:
        imported = import_warehouse_sends(ledger, con)  # an earlier version's sends, before they are planned again
        if imported:
            logger.warning("%d send(s) recorded in the warehouse imported into %s", imported, settings.send_ledger)
        worklist = read_for_date(con, "serving.collection_worklist", as_of_date)
        planned = plan_reminders(
            worklist,
            as_of_date=as_of_date,
            max_reminders=settings.max_reminders_per_run,
            exclude_keys=handled_reminder_keys(ledger),  # steps sent on earlier days do not eat the cap
        )
        report = deliver(
            con,
            planned,
            ledger=ledger,
            transport_for=transport_factory(settings, as_of_date),
            lineage=lineage,
            flow_run_id=current_flow_run_id(),
            sender_email=settings.sender_email,
            sender_name=settings.sender_name,
            stop_check=DunningStops(con).check,  # the insolvency stop, read live right before each send
        )
    create_table_artifact(
        key="reminders-sent",
        table=report.as_rows(),
        description=(
            f"{report.sent} sent, {report.skipped_already_sent} already sent before, {report.failed} failed, "
            f"{report.blocked} blocked just before sending, {planned.attrs.get('skipped', {}).get('insolvency', 0)} "
            "left out of the plan (debtor in a collective procedure)"
        ),
    )
    logger.info(
        "%d planned (skipped: %s), %d sent, %d already sent, %d failed",
        len(planned),
        planned.attrs.get("skipped", {}),
        report.sent,
        report.skipped_already_sent,
        report.failed,
    )
    return report
