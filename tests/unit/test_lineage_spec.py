"""tests/lineage_spec.py, the validator every lineage test (and the end-to-end check) relies on, can fail: the spec's
own examples pass, and each kind of mistake in an event is reported where it is."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path

import pytest
from openlineage.client.serde import Serde

from relance import openlineage as ol
from tests.conftest import require
from tests.lineage_spec import SPEC_DIR, event_errors, facet_errors, facet_schema_ref, validate_events

RUN_ID = "0190c0de-0000-7000-8000-000000000002"


@pytest.fixture(autouse=True)
def _spec() -> None:
    require(SPEC_DIR.is_dir(), f"OpenLineage spec not found at {SPEC_DIR}")


@pytest.fixture
def event(tmp_path: Path) -> dict:
    """A FAIL event with every facet relance writes (parent, nominal time, relance, error, output statistics)."""
    from relance.settings import Settings

    settings = Settings(data_dir=tmp_path)
    lr = ol.LineageRun(
        ol.Emitter(None, "relance"),
        "relance.score-invoices",
        RUN_ID,
        parent=ol.RunRef("relance", "relance.daily-collections", "0190c0de-0000-7000-8000-000000000001"),
        as_of_date=date(2026, 10, 31),
    )
    lr.add_inputs(ol.file_dataset(tmp_path / "in.csv", sha256="ab")).add_outputs(
        ol.table(settings, "ops.predictions", rows=4)
    )
    lr.set_ids(raw_batch_ids=["b1"], model_version="3").count(scored=4)
    return json.loads(Serde.to_json(lr.event(ol.RunState.FAIL, ValueError("boom"))))


def test_the_spec_examples_are_valid() -> None:
    examples = SPEC_DIR / "examples"
    assert event_errors(json.loads((examples / "example_full_event.json").read_text())) == []
    checked = 0
    for path in sorted(examples.glob("*/*.json")):
        for facet in json.loads(path.read_text()).values():
            assert facet_schema_ref(facet["_schemaURL"]) is not None, f"{path}: no local schema"
            assert facet_errors(facet) == [], path
            checked += 1
    assert checked == 7


def test_relance_events_are_valid(event: dict) -> None:
    assert event_errors(event) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda e: e["run"].__setitem__("runId", "nope"), "run/runId: 'nope' is not a 'uuid'"),
        (lambda e: e.__setitem__("eventTime", "yesterday"), "eventTime: 'yesterday' is not a 'date-time'"),
        (lambda e: e.__setitem__("eventType", "DONE"), "eventType: 'DONE' is not one of"),
        (lambda e: e.__setitem__("producer", "not a uri"), "producer: 'not a uri' is not a 'uri'"),
        (lambda e: e["outputs"][0].pop("name"), "outputs/0: 'name' is a required property"),
        (lambda e: e.pop("job"), "(event): 'job' is a required property"),
        # facets: the generic rule (OpenLineage.json) and each facet's own schema
        (lambda e: e["run"]["facets"]["nominalTime"].pop("_producer"), "'_producer' is a required property"),
        (lambda e: e["run"]["facets"]["parent"]["run"].pop("runId"), "/run/facets/parent/run: 'runId' is a required"),
        (
            lambda e: e["run"]["facets"]["parent"]["root"]["run"].__setitem__("runId", "x"),
            "/run/facets/parent/root/run/runId: 'x' is not a 'uuid'",
        ),
        (
            lambda e: e["run"]["facets"]["errorMessage"].pop("programmingLanguage"),
            "/run/facets/errorMessage: 'programmingLanguage' is a required property",
        ),
        (lambda e: e["run"]["facets"]["relance"].__setitem__("surprise", 1), "'surprise' was unexpected"),
        (
            lambda e: e["run"]["facets"]["relance"].__setitem__("as_of_date", "31/10/2026"),
            "/run/facets/relance/as_of_date: '31/10/2026' is not a 'date'",
        ),
        (
            lambda e: e["run"]["facets"]["relance"].__setitem__("raw_batch_ids", "b1"),
            "/run/facets/relance/raw_batch_ids: 'b1' is not of type 'array'",
        ),
        (
            lambda e: e["inputs"][0]["facets"]["version"].__setitem__("_schemaURL", 5),
            "inputs/0/facets/version/_schemaURL: 5 is not of type 'string'",
        ),
    ],
)
def test_each_mistake_is_reported_where_it_is(event: dict, mutate, expected: str) -> None:
    broken = copy.deepcopy(event)
    mutate(broken)
    errors = event_errors(broken)
    assert any(expected in e for e in errors), errors


def test_a_facet_of_another_minor_version_is_checked_against_the_local_schema(event: dict) -> None:
    parent = event["run"]["facets"]["parent"]
    parent["_schemaURL"] = "https://openlineage.io/spec/facets/1-0-0/ParentRunFacet.json"  # older, no fragment
    assert facet_schema_ref(parent["_schemaURL"]).endswith("1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet")
    assert event_errors(event) == []
    parent.pop("job")
    assert any("'job' is a required property" in e for e in event_errors(event))
    assert facet_schema_ref("https://openlineage.io/spec/facets/2-0-0/ParentRunFacet.json") is None  # other major


def test_a_jsonl_file_reports_each_bad_line_and_event(tmp_path: Path, event: dict) -> None:
    path = tmp_path / "events.jsonl"
    bad = copy.deepcopy(event)
    bad["run"]["runId"] = "nope"
    path.write_text(json.dumps(event) + "\n\n{not json\n" + json.dumps(bad) + "\n", encoding="utf-8")
    errors = validate_events(path)
    assert len(errors) == 2
    assert errors[0].startswith("line 3: not JSON")
    assert errors[1].startswith("event 2 (relance.score-invoices FAIL): run/runId")
