"""The models of one dbt invocation as OpenLineage jobs, from its archived artefacts.

openlineage-integration-common's dbt processor (the one behind ``dbt-ol``) turns ``manifest.json`` and
``run_results.json`` into events: one run per executed model (START/COMPLETE, or FAIL) with its refs and sources as
inputs and its relation as output (schema, documentation, SQL, row counts), and one run per tested model whose input
carries the ``dataQualityAssertions`` of its tests. It runs here in process on the artefacts
``relance.lineage.archive_dbt_invocation`` keeps under ``<data_dir>/dbt/runs/<invocation_id>/`` (no ``dbt-ol``
wrapper, no second dbt run, no profile read from disk), with three changes so dbt's datasets are relance's:

* datasets are named as every other relance event names warehouse tables (``duckdb://<file>`` / ``schema.table``,
  :func:`relance.openlineage.table`), not ``<database>.<schema>.<table>`` under the warehouse's full path;
* jobs are ``dbt.<schema>.<model>`` (tests: ``dbt.<schema>.<model>.tests``; singular tests ``dbt.<unique_id>``);
* every run's parent is the build-features flow run, root the daily run, and it carries relance's ``relance`` facet
  (dbt invocation id, Prefect flow run, as-of date) and the as-of date as nominal time.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openlineage.client.event_v2 import RunEvent
from openlineage.common.provider.dbt.facets import DbtRunRunFacet, ParentRunMetadata
from openlineage.common.provider.dbt.processor import DbtArtifactProcessor

from relance import openlineage as ol

if TYPE_CHECKING:
    from relance.settings import Settings

log = logging.getLogger(__name__)

PROJECT_NAME = "relance"


class ArchivedInvocationProcessor(DbtArtifactProcessor):
    """The dbt artefact processor fed from memory (an archived invocation), naming datasets like relance."""

    should_raise_on_unsupported_command = False

    def __init__(
        self,
        manifest: dict[str, Any],
        run_results: dict[str, Any],
        *,
        dataset_namespace: str,
        job_namespace: str,
        extra_run_facets: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(producer=ol.producer(), job_namespace=job_namespace, skip_errors=True, logger=log)
        self._manifest = manifest
        self._run_results = run_results
        self._namespace = dataset_namespace
        self._extra_run_facets = extra_run_facets or {}

    def get_dbt_metadata(self) -> tuple[dict, dict, dict, None]:
        adapter = self._manifest.get("metadata", {}).get("adapter_type") or "duckdb"
        # the profile only tells the processor the adapter: the namespace is relance's (extract_namespace)
        return self._manifest, self._run_results, {"type": adapter}, None

    def extract_namespace(self, profile: dict) -> str:
        return self._namespace

    def _format_dataset_name(self, database: str | None, schema: str | None, table: str) -> str:
        # schema.table, as relance names its warehouse tables (one warehouse per namespace)
        return ".".join(p for p in (schema, table) if p)

    def dbt_run_run_facet(self) -> dict[str, DbtRunRunFacet]:
        invocation_id = self.run_metadata.get("invocation_id")
        if not invocation_id:
            return {}
        return {
            "dbt_run": DbtRunRunFacet(
                invocation_id=invocation_id,
                project_name=PROJECT_NAME,
                profile_name=PROJECT_NAME,
                dbt_runtime="core",
                full_refresh=self.full_refresh,
            )
        }

    def get_run(self, run_id: str, query_id: str | None = None, run_facets: dict[str, Any] | None = None) -> Any:
        run = super().get_run(run_id=run_id, query_id=query_id, run_facets=run_facets)
        run.facets.update(self._extra_run_facets)
        return run


def job_name_of(event: RunEvent) -> str:
    """relance's name for a dbt job: ``dbt.<schema>.<model>`` (``.tests`` for a model's tests, ``dbt.<unique_id>``
    for a singular test), from the processor's ``dbt_node`` and ``jobType`` facets."""
    facets = event.job.facets or {}
    node = facets.get("dbt_node")
    kind = getattr(facets.get("jobType"), "jobType", "MODEL")
    unique_id = getattr(node, "unique_id", None) or event.job.name
    if unique_id.startswith("test."):
        return f"dbt.{unique_id}"
    schema = getattr(node, "schema", None)
    name = getattr(node, "alias", None) or unique_id.rsplit(".", 1)[-1]
    base = f"dbt.{schema}.{name}" if schema else f"dbt.{unique_id}"
    return base + ".tests" if kind == "TEST" else base


@dataclass
class DbtLineage:
    """What the events of one invocation said: how many, and the datasets the build read and wrote."""

    invocation_id: str
    events: list[RunEvent] = field(default_factory=list)
    models: int = 0
    failed: int = 0
    inputs: list[Any] = field(default_factory=list)  # read by the build, not built by it (sources, earlier tables)
    outputs: list[Any] = field(default_factory=list)  # built by the build


def load_invocation(runs_dir: Path, invocation_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The archived ``manifest.json`` and ``run_results.json`` of one invocation.

    Raises:
        FileNotFoundError: the invocation was not archived.
    """
    folder = Path(runs_dir) / invocation_id
    with open(folder / "manifest.json", encoding="utf-8") as f:
        manifest = json.load(f)
    with open(folder / "run_results.json", encoding="utf-8") as f:
        run_results = json.load(f)
    return manifest, run_results


def invocation_events(
    manifest: dict[str, Any],
    run_results: dict[str, Any],
    *,
    dataset_namespace: str,
    job_namespace: str,
    parent: ol.RunRef | None,
    root: ol.RunRef | None,
    as_of_date: date | None = None,
    timezone: str = "UTC",
    flow_run_id: str | None = None,
    prefect_ui_url: str | None = None,
) -> DbtLineage:
    """The OpenLineage events of one dbt invocation (pure: reads nothing, emits nothing)."""
    invocation_id = run_results.get("metadata", {}).get("invocation_id", "")
    extra: dict[str, Any] = {
        ol.RELANCE_FACET: ol.RelanceRunFacet(
            dbt_invocation_id=invocation_id or None,
            prefect_flow_run_id=flow_run_id,
            prefect_flow_run_url=(
                f"{prefect_ui_url.rstrip('/')}/runs/flow-run/{flow_run_id}" if prefect_ui_url and flow_run_id else None
            ),
            as_of_date=as_of_date.isoformat() if as_of_date else None,
            producer=ol.producer(),
        )
    }
    if as_of_date is not None:
        extra["nominalTime"] = ol.nominal_time(as_of_date, timezone)
    processor = ArchivedInvocationProcessor(
        manifest,
        run_results,
        dataset_namespace=dataset_namespace,
        job_namespace=job_namespace,
        extra_run_facets=extra,
    )
    if parent is not None:
        root = root or parent
        processor.dbt_run_metadata = ParentRunMetadata(
            run_id=parent.run_id,
            job_name=parent.job,
            job_namespace=parent.namespace,
            root_parent_job_name=root.job,
            root_parent_job_namespace=root.namespace,
            root_parent_run_id=root.run_id,
        )
    parsed = processor.parse()
    events = parsed.events()
    renamed: set[int] = set()
    for event in events:  # START and COMPLETE of a run share their Job object
        if id(event.job) not in renamed:
            event.job.name = job_name_of(event)
            renamed.add(id(event.job))
    result = DbtLineage(invocation_id=invocation_id, events=events)
    built: dict[tuple[str, str], Any] = {}
    read: dict[tuple[str, str], Any] = {}
    for event in parsed.starts:
        kind = getattr((event.job.facets or {}).get("jobType"), "jobType", "")
        if kind not in ("MODEL", "SNAPSHOT"):
            continue
        result.models += 1
        for ds in event.outputs or []:
            built[(ds.namespace, ds.name)] = ol.as_output(_bare(ds))
        for ds in event.inputs or []:
            read[(ds.namespace, ds.name)] = ol.as_input(_bare(ds))
    result.failed = len(parsed.fails)
    result.outputs = list(built.values())
    result.inputs = [ds for key, ds in read.items() if key not in built]
    return result


def _bare(ds: Any) -> Any:
    """A dataset without its facets (the flow-level summary names datasets; the model runs describe them)."""
    return ol.OutputDataset(namespace=ds.namespace, name=ds.name)


def emit_invocation(
    settings: Settings,
    invocation_id: str,
    *,
    parent: ol.RunRef | None,
    root: ol.RunRef | None = None,
    as_of_date: date | None = None,
    flow_run_id: str | None = None,
) -> DbtLineage | None:
    """Emit the events of an archived invocation through :func:`relance.openlineage.emitter_for`; ``None`` when
    lineage is off or the artefacts cannot be read (logged: lineage never fails a build)."""
    emitter = ol.emitter_for(settings)
    if not emitter.enabled:
        return None
    try:
        manifest, run_results = load_invocation(settings.dbt_runs_dir, invocation_id)
        lineage = invocation_events(
            manifest,
            run_results,
            dataset_namespace=ol.warehouse_namespace(settings.warehouse),
            job_namespace=settings.openlineage_namespace,
            parent=parent,
            root=root,
            as_of_date=as_of_date,
            timezone=settings.timezone,
            flow_run_id=flow_run_id,
            prefect_ui_url=settings.prefect_ui_url,
        )
    except Exception:
        log.warning("no OpenLineage events for dbt invocation %s", invocation_id, exc_info=True)
        return None
    emitter.emit_all(lineage.events)
    return lineage
