"""OpenLineage from real flows under Prefect's test harness: every event valid against the spec, runIds that are the
Prefect flow run ids, parent facets that mirror Prefect's own hierarchy, dbt models as children of the flow that
built them, MLflow runs tagged with the lineage run, and the HTTP transport against a Marquez-compatible collector.

The worlds: a copy of the session's demo landing (200 customers, 3,000 invoices), loaded by the real
``ingest-receivables`` flow and validated by the real ``validate-receivables`` flow (Great Expectations), then a
small real dbt build (a few staging models and their tests, through the session's parsed manifest) whose models
``flows.build_features._model_lineage`` emits, all inside one parent flow; the real ``train-model`` flow on synthetic
feature tables and a real MLflow (SQLite) registry; a stand-in collector on 127.0.0.1
(``tests/standins/openlineage_collector.py``).
"""

from __future__ import annotations

import asyncio
import shutil
from datetime import date
from pathlib import Path
from uuid import UUID

import duckdb
import numpy as np
import pytest
from prefect import flow
from prefect.client.orchestration import get_client

from flows._common import current_flow_run_id
from flows._lineage import flow_lineage
from flows.build_features import _model_lineage
from flows.ingest_receivables import ingest_receivables
from flows.train_model import train_model
from flows.validate_receivables import validate_receivables
from models.registry import client_for
from relance import dbt
from relance import openlineage as ol
from relance.settings import Settings
from relance.warehouse import connection
from tests.conftest import DEMO_AS_OF, DbtInvoke, require
from tests.integration.test_models_lifecycle import RUN_AS_OF, SNAPSHOTS, make_features, make_labels, write_tables
from tests.lineage_spec import SPEC_DIR, validate_events
from tests.standins.openlineage_collector import OpenLineageCollector

pytestmark = pytest.mark.integration

DBT_MODELS = ("stg_customers", "stg_invoices")
PREFECT_FLOWS = {
    "relance.lineage-check",
    "relance.ingest-receivables",
    "relance.validate-receivables",
    "relance.dbt-step",
}


def _settings(tmp_path: Path, demo_landing: Path, **kw: object) -> Settings:
    landing = tmp_path / "landing"
    shutil.copytree(demo_landing, landing)
    settings = Settings(data_dir=tmp_path / "data", landing_dir=landing, **kw)
    settings.ensure_dirs()
    return settings


def _by_run(events: list[dict]) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {}
    for e in events:
        runs.setdefault(e["run"]["runId"], []).append(e)
    return runs


async def _flow_runs(ids: list[str]) -> dict[str, tuple[str, str | None]]:
    """Prefect's own record: flow run id -> (flow name, parent flow run id)."""
    out = {}
    async with get_client() as client:
        for run_id in ids:
            fr = await client.read_flow_run(UUID(run_id))
            name = (await client.read_flow(fr.flow_id)).name
            parent = None
            if fr.parent_task_run_id is not None:
                parent = str((await client.read_task_run(fr.parent_task_run_id)).flow_run_id)
            out[run_id] = (name, parent)
    return out


@pytest.fixture(scope="module")
def pipeline(
    tmp_path_factory: pytest.TempPathFactory, demo_landing: Path, dbt_invoke: DbtInvoke, prefect_api: None
) -> tuple[Settings, str]:
    """One parent flow running ingest, validation and a small dbt build as Prefect subflows, events to a file."""
    settings = _settings(tmp_path_factory.mktemp("ol-flows"), demo_landing)

    @flow(name="dbt-step")
    def dbt_step() -> str:
        with flow_lineage(settings, "dbt-step", as_of_date=DEMO_AS_OF) as lineage:
            args = dbt.dbt_args(
                settings,
                ["build"],
                as_of_date=DEMO_AS_OF,
                unit_tests=False,
                extra=["--select", *DBT_MODELS, "--indirect-selection", "cautious"],
            )
            run = dbt.run_dbt(settings, args, invoke=dbt_invoke)
            _model_lineage(settings, run, DEMO_AS_OF, lineage)  # what build-features does after its build
        assert run.invocation_id is not None
        return run.invocation_id

    @flow(name="lineage-check")
    def lineage_check() -> str:
        with flow_lineage(settings, "lineage-check", as_of_date=DEMO_AS_OF):
            ingest_receivables(settings)
            validate_receivables(settings)
            dbt_step()
        run_id = current_flow_run_id()
        assert run_id is not None
        return run_id

    return settings, lineage_check()


def test_every_event_of_a_run_validates_against_the_spec(pipeline: tuple[Settings, str]) -> None:
    require(SPEC_DIR.is_dir(), f"OpenLineage spec not found at {SPEC_DIR}")
    settings, _ = pipeline
    path = settings.lineage_dir / ol.EVENTS_FILE
    events = ol.read_events(path)
    jobs = {e["job"]["name"] for e in events}
    assert jobs >= PREFECT_FLOWS
    assert {f"dbt.staging.{m}" for m in DBT_MODELS} <= jobs
    assert validate_events(path) == []
    for run_id, run_events in _by_run(events).items():  # one START, then exactly one COMPLETE or FAIL per run
        states = [e["eventType"] for e in run_events]
        assert states[0] == "START" and len(states) == 2 and states[1] in ("COMPLETE", "FAIL"), (run_id, states)


def test_run_ids_and_parents_mirror_prefect(pipeline: tuple[Settings, str]) -> None:
    settings, root_id = pipeline
    events = ol.read_events(settings.lineage_dir / ol.EVENTS_FILE)
    flows = {e["run"]["runId"]: e for e in events if e["job"]["name"] in PREFECT_FLOWS}
    prefect = asyncio.run(_flow_runs(list(flows)))
    for run_id, event in flows.items():
        flow_name, prefect_parent = prefect[run_id]  # the runId is a real Prefect flow run, of this flow
        assert event["job"]["name"] == f"relance.{flow_name}"
        parent = event["run"]["facets"].get("parent")
        if run_id == root_id:
            assert prefect_parent is None and parent is None
            continue
        assert parent["run"]["runId"] == prefect_parent == root_id  # Prefect's parent is the lineage parent
        assert parent["job"]["name"] == "relance.lineage-check"
        assert parent["root"]["run"]["runId"] == root_id
        assert event["run"]["facets"]["relance"]["prefect_flow_run_id"] == run_id

    # the dbt models: children of the flow that built them, the root above
    (dbt_step_id,) = [r for r, e in flows.items() if e["job"]["name"] == "relance.dbt-step"]
    dbt_events = [e for e in events if e["job"]["name"].startswith("dbt.")]
    assert dbt_events
    for e in dbt_events:
        parent = e["run"]["facets"]["parent"]
        assert parent["run"]["runId"] == dbt_step_id and parent["job"]["name"] == "relance.dbt-step"
        assert parent["root"]["run"]["runId"] == root_id
    step_done = [e for e in events if e["run"]["runId"] == dbt_step_id and e["eventType"] == "COMPLETE"][0]
    invocation = step_done["run"]["facets"]["relance"]["dbt_invocation_id"]
    assert all(e["run"]["facets"]["dbt_run"]["invocation_id"] == invocation for e in dbt_events)
    assert (settings.dbt_runs_dir / invocation / "manifest.json").is_file()  # the id resolves


def test_datasets_and_ids_join_back_to_the_warehouse(pipeline: tuple[Settings, str]) -> None:
    settings, _ = pipeline
    events = ol.read_events(settings.lineage_dir / ol.EVENTS_FILE)
    done = {e["job"]["name"]: e for e in events if e["eventType"] == "COMPLETE"}
    with connection(settings.warehouse) as con:  # in-process dbt keeps the file open read-write
        batches = con.execute(
            "SELECT batch_id, entity, source_file, file_hash FROM ops.ingest_batches WHERE status = 'loaded'"
        ).fetchall()
        validation_id = con.execute("SELECT validation_id FROM ops.validation_runs").fetchone()[0]

    ingest = done["relance.ingest-receivables"]
    assert sorted(ingest["run"]["facets"]["relance"]["raw_batch_ids"]) == sorted(b[0] for b in batches)
    files = {d["name"]: d["facets"]["version"]["datasetVersion"] for d in ingest["inputs"]}
    assert files == {str(Path(b[2]).resolve()): b[3] for b in batches}  # each landing file with its sha256
    assert all(d["namespace"].startswith("file://") for d in ingest["inputs"])
    outputs = {d["name"] for d in ingest["outputs"]}
    assert {f"raw.{b[1]}" for b in batches} | {"ops.ingest_batches"} <= outputs

    validation = done["relance.validate-receivables"]
    assert validation["run"]["facets"]["relance"]["validation_id"] == validation_id
    assert {d["name"] for d in validation["inputs"]} == {f"raw.{b[1]}" for b in batches}
    assert {"ops.validation_runs", "ops.ingest_batches"} <= {d["name"] for d in validation["outputs"]}

    # the dbt model reads what ingest wrote: the same dataset, named the same way by both
    stg = done["dbt.staging.stg_invoices"]
    assert ("duckdb://warehouse.duckdb", "raw.invoices") in {(d["namespace"], d["name"]) for d in stg["inputs"]}
    assert ("duckdb://warehouse.duckdb", "raw.invoices") in {(d["namespace"], d["name"]) for d in ingest["outputs"]}
    step = done["relance.dbt-step"]
    assert {"staging.stg_customers", "staging.stg_invoices"} <= {d["name"] for d in step["outputs"]}
    assert "raw.invoices" in {d["name"] for d in step["inputs"]}


def test_the_training_run_and_its_mlflow_run_name_each_other(tmp_path: Path, prefect_api: None) -> None:
    require(SPEC_DIR.is_dir(), f"OpenLineage spec not found at {SPEC_DIR}")
    settings = Settings(data_dir=tmp_path / "data", model_name="payment_delay_ol")
    settings.ensure_dirs()
    rng = np.random.default_rng(3)
    feats = make_features(rng, SNAPSHOTS, 60)
    with duckdb.connect(str(settings.warehouse)) as con:
        write_tables(con, feats, make_labels(rng, feats, noise_only=False))

    result = train_model(settings, RUN_AS_OF, {"git.sha": "abc", "dbt.invocation_id": "inv-9"})

    path = settings.lineage_dir / ol.EVENTS_FILE
    assert validate_events(path) == []
    start, done = ol.read_events(path)
    run_id = done["run"]["runId"]
    assert (start["run"]["runId"], done["job"]["name"], done["eventType"]) == (
        run_id,
        "relance.train-model",
        "COMPLETE",
    )
    tags = client_for(settings.mlflow_uri).get_run(result.run_id).data.tags
    assert tags["openlineage.run_id"] == run_id and tags["openlineage.namespace"] == "relance"
    assert tags["openlineage.job_name"] == "relance.train-model"
    assert tags["dbt.invocation_id"] == "inv-9"  # the flow's own lineage dict is kept
    facet = done["run"]["facets"]["relance"]
    assert (facet["mlflow_run_id"], facet["model_version"]) == (result.run_id, result.model_version)
    assert facet["dbt_invocation_id"] == "inv-9"
    assert [d["name"] for d in done["inputs"]] == ["ml.ml_invoice_features", "ml.ml_invoice_labels"]
    (model,) = done["outputs"]
    assert model["name"] == f"models/payment_delay_ol/{result.model_version}"
    assert model["namespace"] == f"mlflow://{settings.redacted_mlflow_uri}"


def test_events_reach_a_marquez_compatible_collector_over_http(
    tmp_path: Path, demo_landing: Path, prefect_api: None
) -> None:
    require(SPEC_DIR.is_dir(), f"OpenLineage spec not found at {SPEC_DIR}")
    with OpenLineageCollector(api_key="ol-secret") as collector:
        settings = _settings(
            tmp_path,
            demo_landing,
            openlineage_transport="http",
            openlineage_url=collector.url,
            openlineage_api_key="ol-secret",
        )
        ingest_receivables(settings)
        assert collector.rejected == []
        assert [(e["job"]["name"], e["eventType"]) for e in collector.events] == [
            ("relance.ingest-receivables", "START"),
            ("relance.ingest-receivables", "COMPLETE"),
        ]
        assert any(d["name"] == "raw.invoices" for d in collector.events[-1]["outputs"])
        assert not (settings.lineage_dir / ol.EVENTS_FILE).exists()  # http only: no file on the side

        # the collector fails: the flow still succeeds, its events wait in the spool, then are delivered
        collector.fail_next(50, 503)
        again = ingest_receivables(settings)  # a rerun: every file unchanged
        assert again and all(b.status == "unchanged" for b in again)
        spool = settings.lineage_dir / ol.UNDELIVERED_FILE
        assert [e["eventType"] for e in ol.read_events(spool)] == ["START", "COMPLETE"]
        collector.recover()
        assert ol.redeliver(settings) == (2, 0)
        assert not spool.exists()
        assert [e["eventType"] for e in collector.events[2:]] == ["START", "COMPLETE"]
        assert collector.rejected == []


def test_a_wrong_api_key_is_refused_by_the_collector_and_kept(tmp_path: Path) -> None:
    with OpenLineageCollector(api_key="right") as collector:
        settings = Settings(
            data_dir=tmp_path / "data",
            openlineage_transport="http",
            openlineage_url=collector.url,
            openlineage_api_key="wrong",
        )
        emitter = ol.Emitter(ol.build_client(settings), "relance", spool=settings.lineage_dir / ol.UNDELIVERED_FILE)
        with ol.run(emitter, "score-invoices", None, as_of_date=date(2026, 10, 31)):
            pass
        assert collector.events == [] and collector.requests >= 1
        assert emitter.failed == 2 and len(ol.read_events(settings.lineage_dir / ol.UNDELIVERED_FILE)) == 2


def test_a_parent_flow_that_emits_nothing_is_still_named_as_parent(
    tmp_path: Path, demo_landing: Path, prefect_api: None
) -> None:
    """A subflow whose caller has no lineage context of its own (a flow started elsewhere) asks Prefect's API."""
    settings = _settings(tmp_path, demo_landing)

    @flow(name="outer-without-lineage")
    def outer() -> str | None:
        ingest_receivables(settings)
        return current_flow_run_id()

    outer_id = outer()
    start, done = ol.read_events(settings.lineage_dir / ol.EVENTS_FILE)
    for event in (start, done):
        parent = event["run"]["facets"]["parent"]
        assert parent["run"]["runId"] == outer_id and parent["job"]["name"] == "relance.outer-without-lineage"
        assert parent["root"]["run"]["runId"] == outer_id
