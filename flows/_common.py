"""What every flow needs from Prefect: its run id and logger. Kept here so flows stay one screen long."""

from __future__ import annotations

from prefect import runtime


def current_flow_run_id() -> str | None:
    run_id = runtime.flow_run.id
    return str(run_id) if run_id else None


def drain_prefect_services(timeout: float) -> bool:
    """Deliver Prefect's queued logs and events to its API now, waiting at most ``timeout`` seconds; False when
    some were still pending (the CLI then exits without Prefect's unbounded at-exit drain)."""
    from prefect._internal.concurrency.services import QueueService

    _, pending = QueueService.drain_all(timeout=timeout, at_exit=False)
    return not pending
