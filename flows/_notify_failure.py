"""The failure hook of the scheduled flows: an email to the recipient groups that receive ``failures``.

Attached as ``@flow(on_failure=[notify_failure], on_crashed=[notify_failure])`` to every flow of
``infra/prefect.yaml``. It acts only on runs that a deployment started (a schedule, a worker, ``relance serve``, the
UI's "Run" button): a run started by hand already shows its failure to the person who started it, and tests that
fail a flow on purpose send nobody anything. Each group gets one email per failed flow run, whatever retries or
hook repeats: relance's email channel (SendGrid, or ``<data_dir>/outbox/finance/email`` without a key) under the
notification ledger, as the risk-alert digest goes. A hook never raises: a notice that cannot go out is logged.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from relance.channels import transport_factory
from relance.freshness import today_in
from relance.operations import FailedRun, send_failure_notices
from relance.redaction import environment_secrets, redact
from relance.send_ledger import SendLedger
from relance.settings import Settings

log = logging.getLogger(__name__)


def failed_run(flow: Any, flow_run: Any, state: Any, settings: Settings, deployment: str | None) -> FailedRun:
    """What the notice says, with every known secret masked out of the state message."""
    message = redact(str(state.message or ""), [*settings.secret_values(), *environment_secrets()])
    return FailedRun(
        flow_name=flow.name,
        flow_run_id=str(flow_run.id),
        flow_run_name=flow_run.name,
        state_name=state.name,
        message=message,
        link=f"{settings.prefect_ui_url.rstrip('/')}/runs/flow-run/{flow_run.id}",
        deployment=deployment,
        started_at=flow_run.start_time,
    )


def _deployment_name(flow_run: Any) -> str | None:
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            return client.read_deployment(flow_run.deployment_id).name
    except Exception:  # the notice goes out without the name rather than not at all
        log.warning("failure notice: cannot read deployment %s", flow_run.deployment_id, exc_info=True)
        return str(flow_run.deployment_id)


def notify_failure(flow: Any, flow_run: Any, state: Any, *, settings: Settings | None = None) -> list[str]:
    """Prefect flow hook ``(flow, flow_run, state)``; returns the ledger keys of the notices sent now."""
    if flow_run.deployment_id is None:
        return []
    try:
        settings = settings or Settings()
        groups = settings.recipients_for("failures")
        if not groups:
            log.warning("flow run %s failed; no recipient group receives 'failures'", flow_run.id)
            return []
        run = failed_run(flow, flow_run, state, settings, _deployment_name(flow_run))
        transport = transport_factory(settings, today_in(settings.timezone), outbox_dir=settings.finance_outbox)
        with SendLedger(settings.notification_ledger) as ledger:
            keys = send_failure_notices(
                run,
                groups=groups,
                ledger=ledger,
                transport=transport("email"),
                sender_email=settings.sender_email,
                sender_name=settings.sender_name,
                now=datetime.now(UTC).replace(tzinfo=None),
            )
        log.info("flow run %s (%s) failed: notice(s) %s", flow_run.id, flow.name, ", ".join(keys) or "already sent")
        return keys
    except Exception:
        log.exception("flow run %s failed and its failure notice could not be sent", flow_run.id)
        return []
