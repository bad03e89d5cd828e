"""Alerts to finance and the claim tasks, after the serving models are built: each alert once, by email (SendGrid
or the outbox), as Prefect artifacts and in the finance report; each claim to declare as a task file.

Reads the dbt relations ``serving.customer_risk_status`` and ``serving.customer_risk_events`` (views: current),
``serving.claim_declarations`` / ``serving.claim_declaration_invoices`` and ``serving.payer_degradation`` (the
run's date). ``relance.risk.alerts`` decides what is an alert and writes the email; ``ops.risk_alerts`` keeps each
alert once; the send ledger makes the digest email exactly-once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows._common import current_flow_run_id
from flows._lineage import flow_lineage
from relance import openlineage as ol
from relance import ops
from relance.channels import transport_factory
from relance.risk.alerts import build_alerts, notify
from relance.send_ledger import SendLedger
from relance.settings import Settings
from relance.tabular_output import write_csv
from relance.warehouse import connection, read_for_date, read_relation

#: The claim task file: one line per invoice to declare, with its declaration (a collector files it as is).
CLAIM_TASK_COLUMNS: tuple[str, ...] = (
    "claim_id",
    "customer_id",
    "customer_name",
    "company_id",
    "court",
    "procedure_kind",
    "judgment_date",
    "published_date",
    "deadline_date",
    "days_to_deadline",
    "status",
    "currency",
    "amount_due",
    "amount_not_yet_due",
    "source_url",
)
CLAIM_INVOICE_COLUMNS: tuple[str, ...] = (
    "claim_id",
    "currency",
    "invoice_id",
    "document_type",
    "issue_date",
    "due_date",
    "open_amount",
    "is_due_at_judgment",
)


@dataclass(frozen=True)
class AlertsResult:
    new_alerts: int
    emailed: int
    digest_key: str | None
    claims_open: int
    claims_file: Path | None


#: the dbt relations the alerts are built from
READS = (
    "serving.customer_risk_status",
    "marts.customers",
    "serving.claim_declarations",
    "serving.claim_declaration_invoices",
    "serving.payer_degradation",
    "serving.customer_risk_events",
)


@flow(name="raise-risk-alerts")
def raise_risk_alerts(settings: Settings, as_of_date: date) -> AlertsResult:
    inputs = [ol.table(settings, r) for r in READS]
    with flow_lineage(settings, "raise-risk-alerts", as_of_date=as_of_date, inputs=inputs) as lineage:
        result = _raise_alerts(settings, as_of_date)
        record_lineage(lineage, settings, result)
    return result


def record_lineage(lineage: ol.LineageRun, settings: Settings, result: AlertsResult) -> None:
    """The alert table, the finance team's send ledger and mailbox (SendGrid or their outbox), the claim tasks."""
    lineage.add_outputs(ol.table(settings, "ops.risk_alerts", rows=result.new_alerts))
    if result.digest_key is not None:
        lineage.add_outputs(
            ol.sqlite_dataset(settings.notification_ledger),
            ol.channel_dataset(settings, "email", outbox_dir=settings.finance_outbox, rows=result.emailed),
        )
    if result.claims_file is not None:
        lineage.add_outputs(ol.file_dataset(result.claims_file, rows=result.claims_open))
    lineage.count(alerts_new=result.new_alerts, alerts_emailed=result.emailed, claims_open=result.claims_open)


def _raise_alerts(settings: Settings, as_of_date: date) -> AlertsResult:
    logger = get_run_logger()
    flow_run_id = current_flow_run_id()
    now = datetime.now(UTC).replace(tzinfo=None)
    with connection(settings.warehouse) as con:
        status = read_relation(con, "serving.customer_risk_status", order_by="customer_id")
        names = read_relation(con, "marts.customers", columns="customer_id, customer_name")
        status = status.merge(names, on="customer_id", how="left")  # the name for the alert's title only
        claims = read_for_date(con, "serving.claim_declarations", as_of_date, order_by="deadline_date, claim_id")
        claim_invoices = read_relation(
            con, "serving.claim_declaration_invoices", order_by="claim_id, due_date, invoice_id"
        )
        degradation = read_for_date(con, "serving.payer_degradation", as_of_date, order_by="customer_id")
        degradation = degradation.merge(names, on="customer_id", how="left", suffixes=("", "_name"))
        events = read_relation(con, "serving.customer_risk_events", order_by="published_date, event_id")
        alerts = build_alerts(
            status=status,
            claims=claims,
            degradation=degradation,
            events=events,
            as_of_date=as_of_date,
            claim_alert_days=settings.claim_alert_days,
        )
        alerts["created_at"] = now
        alerts["flow_run_id"] = flow_run_id
        new = ops.record_alerts(con, alerts)
        # the finance team's own ledger and outbox folder: customers' reminders and their ledger stay apart
        transport = transport_factory(settings, as_of_date, outbox_dir=settings.finance_outbox)("email")
        with SendLedger(settings.notification_ledger) as ledger:
            emailed, key = notify(
                con,
                ledger=ledger,
                transport=transport,
                as_of_date=as_of_date,
                sender_email=settings.sender_email,
                sender_name=settings.sender_name,
                recipients=settings.finance_alert_recipients,
                flow_run_id=flow_run_id,
                now=now,
            )
    claims_file = None
    open_claims = claims[claims["status"] == "to_declare"] if not claims.empty else claims
    if not claim_invoices.empty and not claims.empty:
        tasks = claims[list(CLAIM_TASK_COLUMNS)].merge(
            claim_invoices[list(CLAIM_INVOICE_COLUMNS)], on=["claim_id", "currency"], how="inner"
        )
        claims_file = write_csv(tasks, settings.outbox / "claims" / f"{as_of_date.isoformat()}.csv")
    if not alerts.empty:
        create_table_artifact(
            key="risk-alerts",
            table=alerts[["alert_type", "title", "detail", "due_date"]].astype(str).to_dict("records"),
            description=f"{len(alerts)} alert(s) hold today, {new} new; {emailed} emailed in digest {key or '-'}",
        )
    if not claims.empty:
        create_markdown_artifact(
            key="claim-declarations",
            markdown="**Déclarations de créance à faire** (the debtor is in a collective procedure: no reminder "
            "goes out; the claim is declared to the court's representative before the deadline)\n\n"
            + "\n".join(
                f"- {r['customer_name'] or r['customer_id']} ({r['procedure_kind']}, {r['court'] or '?'}): "
                f"{r['amount_due']} {r['currency']} due + {r['amount_not_yet_due']} not yet due, "
                f"deadline {r['deadline_date']} ({r['status']})"
                for r in claims.to_dict("records")
            ),
        )
    logger.info(
        "%d alert(s) hold, %d new, %d emailed; %d claim(s) to declare%s",
        len(alerts),
        new,
        emailed,
        len(open_claims),
        f" ({claims_file})" if claims_file else "",
    )
    return AlertsResult(
        new_alerts=new, emailed=emailed, digest_key=key, claims_open=len(open_claims), claims_file=claims_file
    )
