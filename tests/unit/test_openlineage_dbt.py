"""relance.openlineage_dbt: the models of a dbt invocation as OpenLineage jobs, from a tiny manifest and run results
in the shape dbt 1.11 writes them (manifest v12, run results v6).

Three models over one source: staging (built), a mart on it (built, tested) and a second mart that failed; a
skipped model emits nothing. The processor is openlineage-integration-common's, run in process."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from relance import openlineage as ol
from relance.openlineage_dbt import emit_invocation, invocation_events, job_name_of, load_invocation
from relance.settings import Settings
from tests.conftest import require
from tests.lineage_spec import SPEC_DIR, validate_event_objects

INVOCATION = "5e1ec7ed-0000-4000-8000-00000000abcd"
BUILD = ol.RunRef("relance", "relance.build-features", "0190c0de-0000-7000-8000-00000000b11d")
DAILY = ol.RunRef("relance", "relance.daily-collections", "0190c0de-0000-7000-8000-0000000da117")


def _model(name: str, schema: str, sql: str, columns: tuple[str, ...] = ("invoice_id",)) -> dict:
    return {
        "unique_id": f"model.relance.{name}",
        "resource_type": "model",
        "name": name,
        "alias": name,
        "database": "warehouse",
        "schema": schema,
        "original_file_path": f"models/{schema}/{name}.sql",
        "compiled_code": sql,
        "description": f"the {name} model",
        "columns": {c: {"name": c, "description": f"{c} described", "data_type": "varchar"} for c in columns},
        "config": {"materialized": "table"},
        "tags": [],
        "meta": {},
    }


def manifest() -> dict:
    nodes = {
        "model.relance.stg_invoices": _model(
            "stg_invoices", "staging", 'select invoice_id from "warehouse"."raw"."invoices"'
        ),
        "model.relance.invoices": _model(
            "invoices", "marts", 'select invoice_id from "warehouse"."staging"."stg_invoices"'
        ),
        "model.relance.payments": _model("payments", "marts", "select 1 as payment_id", ("payment_id",)),
        "model.relance.skipped_one": _model("skipped_one", "marts", "select 2"),
        "test.relance.not_null_invoices_invoice_id.abc": {
            "unique_id": "test.relance.not_null_invoices_invoice_id.abc",
            "resource_type": "test",
            "name": "not_null_invoices_invoice_id",
            "alias": "not_null_invoices_invoice_id",
            "database": "warehouse",
            "schema": "main_dbt_test__audit",
            "original_file_path": "models/marts/_marts.yml",
            "column_name": "invoice_id",
            "test_metadata": {"name": "not_null", "kwargs": {"column_name": "invoice_id", "model": "{{ ref('x') }}"}},
            "config": {"severity": "ERROR"},
            "tags": [],
            "meta": {},
        },
    }
    return {
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json",
            "adapter_type": "duckdb",
            "invocation_id": INVOCATION,
        },
        "nodes": nodes,
        "sources": {
            "source.relance.raw.invoices": {
                "unique_id": "source.relance.raw.invoices",
                "resource_type": "source",
                "name": "invoices",
                "identifier": "invoices",
                "database": "warehouse",
                "schema": "raw",
                "description": "invoices as loaded",
                "columns": {},
                "tags": [],
                "meta": {},
            }
        },
        "exposures": {},
        "parent_map": {
            "model.relance.stg_invoices": ["source.relance.raw.invoices"],
            "model.relance.invoices": ["model.relance.stg_invoices"],
            "model.relance.payments": [],
            "model.relance.skipped_one": ["model.relance.invoices"],
            "test.relance.not_null_invoices_invoice_id.abc": ["model.relance.invoices"],
        },
    }


def _result(unique_id: str, status: str, rows: int | None = None) -> dict:
    return {
        "unique_id": unique_id,
        "status": status,
        "timing": [
            {"name": "compile", "started_at": "2026-10-31T05:00:00.000001Z", "completed_at": "2026-10-31T05:00:01Z"},
            {"name": "execute", "started_at": "2026-10-31T05:00:01.000001Z", "completed_at": "2026-10-31T05:00:02Z"},
        ],
        "adapter_response": {} if rows is None else {"_message": "OK", "rows_affected": rows},
        "failures": 0 if unique_id.startswith("test.") else None,
        "message": None,
    }


def run_results() -> dict:
    return {
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
            "dbt_version": "1.11.16",
            "invocation_id": INVOCATION,
        },
        "args": {"which": "build", "full_refresh": False},
        "results": [
            _result("model.relance.stg_invoices", "success", 40),
            _result("model.relance.invoices", "success", 40),
            _result("model.relance.payments", "error"),
            _result("model.relance.skipped_one", "skipped"),
            _result("test.relance.not_null_invoices_invoice_id.abc", "pass"),
        ],
    }


def events(**kw) -> object:
    return invocation_events(
        manifest(),
        run_results(),
        dataset_namespace="duckdb://warehouse.duckdb",
        job_namespace="relance",
        parent=BUILD,
        root=DAILY,
        **kw,
    )


def as_json(event: object) -> dict:
    from openlineage.client.serde import Serde

    return json.loads(Serde.to_json(event))


def test_each_executed_model_is_a_job_named_after_its_relation_with_its_inputs_and_output() -> None:
    lineage = events(as_of_date=date(2026, 10, 31), flow_run_id=BUILD.run_id, prefect_ui_url="http://prefect")
    runs = {}
    for event in map(as_json, lineage.events):
        runs.setdefault(event["job"]["name"], []).append(event)
    assert sorted(runs) == [
        "dbt.marts.invoices",
        "dbt.marts.invoices.tests",
        "dbt.marts.payments",
        "dbt.staging.stg_invoices",
    ]  # the skipped model emits nothing
    assert [e["eventType"] for e in runs["dbt.staging.stg_invoices"]] == ["START", "COMPLETE"]
    assert [e["eventType"] for e in runs["dbt.marts.payments"]] == ["START", "FAIL"]
    assert lineage.models == 3 and lineage.failed == 1

    stg = runs["dbt.staging.stg_invoices"][-1]
    assert [(d["namespace"], d["name"]) for d in stg["inputs"]] == [("duckdb://warehouse.duckdb", "raw.invoices")]
    out = stg["outputs"][0]
    assert (out["namespace"], out["name"]) == ("duckdb://warehouse.duckdb", "staging.stg_invoices")
    assert out["outputFacets"]["outputStatistics"]["rowCount"] == 40
    assert out["facets"]["schema"]["fields"][0]["name"] == "invoice_id"
    assert stg["job"]["facets"]["sql"]["query"].startswith("select invoice_id")
    assert stg["job"]["facets"]["jobType"]["jobType"] == "MODEL"
    mart = runs["dbt.marts.invoices"][-1]
    assert [d["name"] for d in mart["inputs"]] == ["staging.stg_invoices"]  # a ref: the upstream model's relation
    tests = runs["dbt.marts.invoices.tests"][-1]
    assertions = tests["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert [(a["assertion"], a["column"], a["success"], a["actual"]) for a in assertions] == [
        ("not_null", "invoice_id", True, "0")
    ]

    # every run: parent = the build-features flow run, root = the daily run, relance's ids, the business day
    for event in map(as_json, lineage.events):
        facets = event["run"]["facets"]
        assert facets["parent"]["run"]["runId"] == BUILD.run_id
        assert facets["parent"]["job"]["name"] == "relance.build-features"
        assert facets["parent"]["root"]["run"]["runId"] == DAILY.run_id
        assert facets["relance"]["dbt_invocation_id"] == INVOCATION
        assert facets["relance"]["prefect_flow_run_url"] == f"http://prefect/runs/flow-run/{BUILD.run_id}"
        assert facets["dbt_run"]["invocation_id"] == INVOCATION
        assert facets["nominalTime"]["nominalStartTime"].startswith("2026-10-31T00:00:00")
        assert facets["processing_engine"]["name"] == "dbt"

    # the flow-level summary: what the build read from outside, what it built
    assert [d.name for d in lineage.inputs] == ["raw.invoices"]
    assert sorted(d.name for d in lineage.outputs) == ["marts.invoices", "marts.payments", "staging.stg_invoices"]


def test_the_events_validate_against_the_spec() -> None:
    require(SPEC_DIR.is_dir(), f"OpenLineage spec not found at {SPEC_DIR}")
    lineage = events(as_of_date=date(2026, 10, 31))
    assert len(lineage.events) == 8
    assert validate_event_objects([as_json(e) for e in lineage.events]) == []


def test_a_singular_test_keeps_its_node_id_as_job_name() -> None:
    m, r = manifest(), run_results()
    m["nodes"]["test.relance.assert_no_negative_amounts"] = {
        **m["nodes"]["test.relance.not_null_invoices_invoice_id.abc"],
        "unique_id": "test.relance.assert_no_negative_amounts",
        "name": "assert_no_negative_amounts",
        "test_metadata": None,
    }
    m["parent_map"]["test.relance.assert_no_negative_amounts"] = ["model.relance.invoices"]
    r["results"].append(_result("test.relance.assert_no_negative_amounts", "fail"))
    lineage = invocation_events(
        m, r, dataset_namespace="duckdb://warehouse.duckdb", job_namespace="relance", parent=BUILD, root=None
    )
    names = {job_name_of(e) for e in lineage.events}
    assert "dbt.test.relance.assert_no_negative_amounts" in names
    singular = [as_json(e) for e in lineage.events if e.job.name == "dbt.test.relance.assert_no_negative_amounts"]
    assert [e["eventType"] for e in singular] == ["START", "FAIL"]
    assert singular[0]["run"]["facets"]["parent"]["root"]["run"]["runId"] == BUILD.run_id  # no root: the parent


def test_emit_invocation_reads_the_archive_and_never_raises(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    folder = settings.dbt_runs_dir / INVOCATION
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps(manifest()))
    (folder / "run_results.json").write_text(json.dumps(run_results()))
    assert load_invocation(settings.dbt_runs_dir, INVOCATION)[1]["metadata"]["invocation_id"] == INVOCATION

    lineage = emit_invocation(settings, INVOCATION, parent=BUILD, root=DAILY)
    assert lineage is not None and lineage.models == 3
    written = ol.read_events(settings.lineage_dir / ol.EVENTS_FILE)
    assert len(written) == len(lineage.events) == 8
    assert emit_invocation(settings, "no-such-invocation", parent=BUILD) is None  # logged, not raised
    assert len(ol.read_events(settings.lineage_dir / ol.EVENTS_FILE)) == 8


@pytest.mark.parametrize("transport", ["none"])
def test_emit_invocation_does_nothing_without_lineage(tmp_path: Path, transport: str) -> None:
    settings = Settings(data_dir=tmp_path / "data", openlineage_transport=transport)
    assert emit_invocation(settings, INVOCATION, parent=BUILD) is None
    assert not settings.lineage_dir.exists()
