"""OpenLineage for a Prefect flow run: the flow run id is the OpenLineage runId, the calling flow its parent.

``with flow_lineage(settings, "score-invoices", as_of_date=...) as lineage:`` around a flow's body emits START,
then COMPLETE (or FAIL with the error) with the datasets and ids the body added (``relance.openlineage``). Flows
called inside it get it as their parent, and the outermost as their root, in process (a context variable, no API
call). A flow started by Prefect under a parent flow that emits no lineage (``run_deployment`` from another flow)
asks Prefect's API for its parent and root instead. Emission never fails a flow.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any
from uuid import UUID

from prefect import runtime

from flows._common import current_flow_run_id
from relance import openlineage as ol
from relance.settings import Settings

log = logging.getLogger(__name__)


def _flow_ref(namespace: str, flow_run_id: str) -> ol.RunRef | None:
    """The job and run of a flow run, from Prefect's API."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(UUID(flow_run_id))
        flow = client.read_flow(flow_run.flow_id)
    return ol.RunRef(namespace, ol.job_name(flow.name), flow_run_id)


def prefect_parent(namespace: str) -> tuple[ol.RunRef | None, ol.RunRef | None]:
    """(parent, root) of the current flow run as Prefect knows them; (None, None) for a top-level run or when the
    API cannot say (logged)."""
    try:
        parent_id = runtime.flow_run.parent_flow_run_id
        if not parent_id:
            return None, None
        parent = _flow_ref(namespace, str(parent_id))
        root_id = runtime.flow_run.root_flow_run_id
        root = parent if not root_id or str(root_id) == str(parent_id) else _flow_ref(namespace, str(root_id))
        return parent, root
    except Exception:
        log.warning("the parent flow run of this run is unknown: its lineage has no parent", exc_info=True)
        return None, None


@contextmanager
def flow_lineage(
    settings: Settings,
    flow_name: str,
    *,
    as_of_date: date | None = None,
    inputs: tuple[Any, ...] | list[Any] = (),
    outputs: tuple[Any, ...] | list[Any] = (),
    ids: dict[str, Any] | None = None,
) -> Iterator[ol.LineageRun]:
    """The lineage run of the current flow run (see the module docstring); ``flow_name`` is the flow's Prefect
    name (the job is ``relance.<flow_name>``)."""
    emitter = ol.emitter_for(settings)
    parent = root = None
    if emitter.enabled and ol.current() is None and runtime.flow_run.id:
        parent, root = prefect_parent(emitter.namespace)
    with ol.run(
        emitter,
        flow_name,
        current_flow_run_id(),
        parent=parent,
        root=root,
        as_of_date=as_of_date,
        inputs=list(inputs),
        outputs=list(outputs),
        ids=ids,
    ) as lineage:
        yield lineage
