"""What every flow needs from Prefect: its run id and logger. Kept here so flows stay one screen long."""

from __future__ import annotations

from prefect import runtime


def current_flow_run_id() -> str | None:
    run_id = runtime.flow_run.id
    return str(run_id) if run_id else None
