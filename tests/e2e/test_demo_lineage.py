"""`relance lineage show` on the README demo: a reminder that went out (an email or a letter) resolved back to the raw
files it came from, every link pointing to something that exists: the message in the send ledger and its outbox file,
the engine's decision, the score and the MLflow run of its model, the features and the archived dbt invocation, the
load batches with the landing files' sha256 and the validation that passed them (its data docs), up to the demo's
Prefect flow run. Reads the shared demo run only (the command writes nothing)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from tests.e2e.conftest import AS_OF, DemoRun

pytestmark = pytest.mark.e2e

#: The `relance` of the environment running the tests (the editable install of this checkout).
RELANCE = Path(sys.executable).parent / "relance"


def _relance(demo_run: DemoRun, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RELANCE), *args], env=demo_run.env | {"COLUMNS": "200"}, cwd=demo_run.rerun_cwd,
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def _walk(node: dict) -> Iterator[dict]:
    yield node
    for child in node["children"]:
        yield from _walk(child)


def _sent_reminder(demo_run: DemoRun) -> dict:
    """An email or a letter of the demo's day that went out; the one grouping the most invoices (then by key)."""
    with duckdb.connect(str(demo_run.data / "warehouse.duckdb"), read_only=True) as con:
        cur = con.execute(
            f"""SELECT p.reminder_key, p.channel, p.model_run_id, p.dbt_invocation_id, p.invoice_ids
                FROM ops.reminders_planned p JOIN ops.reminder_sends s USING (reminder_key)
                WHERE p.as_of_date = DATE '{AS_OF}' AND p.channel IN ('email', 'letter') AND s.status = 'sent'
                ORDER BY json_array_length(p.invoice_ids) DESC, p.reminder_key LIMIT 1"""
        )
        row = cur.fetchone()
        assert row is not None, "the demo sends emails and letters"
        return dict(zip([d[0] for d in cur.description], row, strict=True))


@pytest.fixture(scope="module")
def lineage(demo_run: DemoRun) -> tuple[dict, dict]:
    reminder = _sent_reminder(demo_run)
    shown = _relance(demo_run, "lineage", "show", reminder["reminder_key"], "--json")
    assert shown.returncode == 0, shown.stderr[-3000:]
    return reminder, json.loads(shown.stdout)


def test_every_link_of_a_sent_reminder_is_found(lineage: tuple[dict, dict]) -> None:
    reminder, tree = lineage
    assert tree["kind"] == "reminder" and tree["id"] == reminder["reminder_key"]
    nodes = list(_walk(tree))
    unresolved = [(n["kind"], n["id"], n["found"], n["attributes"]) for n in nodes if n["found"] is not True]
    assert not unresolved, unresolved
    kinds = {n["kind"] for n in nodes}
    assert {"message", "decision", "prediction", "mlflow_run", "features", "dbt_invocation", "raw_batch", "file",
            "validation", "flow_run"} <= kinds  # fmt: skip
    predictions = [n for n in nodes if n["kind"] == "prediction"]
    assert len(predictions) == len(json.loads(reminder["invoice_ids"])), "one score per invoice of the message"
    for node in nodes:  # every path it says to open exists
        for name, target in node["links"].items():
            if not target.startswith(("http://", "https://")):
                assert Path(target).exists(), (node["kind"], name, target)


def test_the_message_and_the_decision(lineage: tuple[dict, dict]) -> None:
    reminder, tree = lineage
    (message,) = (c for c in tree["children"] if c["kind"] == "message")
    assert message["attributes"]["status"] == "sent" and message["attributes"]["channel"] == reminder["channel"]
    outbox = [c for c in message["children"] if c["kind"] == "file"]
    assert outbox and Path(outbox[0]["id"]).is_file()
    (decision,) = (c for c in tree["children"] if c["kind"] == "decision")
    assert decision["attributes"]["decision"] == "send" and decision["attributes"]["reasons"]
    assert tree["attributes"]["scenario"] and tree["attributes"]["step"]


def test_back_to_the_raw_file_hash_and_the_validation_result(lineage: tuple[dict, dict]) -> None:
    _, tree = lineage
    batches = [n for n in _walk(tree) if n["kind"] == "raw_batch"]
    assert {"invoices", "customers"} <= {b["attributes"]["entity"] for b in batches}
    for batch in batches:
        source = Path(batch["attributes"]["source_file"])
        assert source.parent.name == "landing" and source.is_file()
        (landing,) = (c for c in batch["children"] if c["kind"] == "file")
        assert landing["id"] == str(source)
        assert landing["attributes"]["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
        assert landing["found"] is True, "the batch's hash derives from the file on disk"
        validations = [c for c in batch["children"] if c["kind"] == "validation"]
        assert validations and all(v["attributes"]["result"] == "passed" for v in validations)
        assert batch["attributes"]["validation_state"] == "passed"
        for v in validations:
            docs = Path(v["attributes"]["data_docs_path"])
            assert docs.is_file() and any(c["kind"] == "file" and c["id"] == str(docs) for c in v["children"])


def test_the_model_run_the_dbt_invocation_and_the_flow_run_are_the_demos(
    lineage: tuple[dict, dict], demo_run: DemoRun
) -> None:
    reminder, tree = lineage
    nodes = list(_walk(tree))
    assert {n["id"] for n in nodes if n["kind"] == "mlflow_run"} == {reminder["model_run_id"]}
    run = next(n for n in nodes if n["kind"] == "mlflow_run")
    assert run["links"]["run"].endswith(f"/#/experiments/{run['attributes']['experiment_id']}/runs/{run['id']}")
    dbt_ids = {n["id"] for n in nodes if n["kind"] == "dbt_invocation"}
    assert dbt_ids == {reminder["dbt_invocation_id"]}
    assert (demo_run.data / "dbt" / "runs" / reminder["dbt_invocation_id"] / "run_results.json").is_file()

    planned_by = next(c for c in tree["children"] if c["kind"] == "flow_run")
    assert planned_by["attributes"]["flow"] == "send-reminders"
    (daily,) = planned_by["children"]
    assert daily["id"] == demo_run.demo_result["flow_run_id"], "the demo's daily run sent it"
    assert daily["attributes"]["flow"] == "daily-collections"
    assert daily["links"]["prefect"].endswith(f"/runs/flow-run/{daily['id']}")


def test_the_tree_for_people_and_an_unknown_key(demo_run: DemoRun) -> None:
    key = _sent_reminder(demo_run)["reminder_key"]
    shown = _relance(demo_run, "lineage", "show", key[:12])
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert "lineage complete" in shown.stdout and "✗ missing" not in shown.stdout
    unknown = _relance(demo_run, "lineage", "show", "INV-99999999")
    assert unknown.returncode == 1
    assert "no reminder, invoice or prediction named INV-99999999" in unknown.stdout + unknown.stderr


def test_every_openlineage_event_of_the_demo_validates_against_the_spec(demo_run: DemoRun) -> None:
    """The demo's OpenLineage events (the file transport, the default): every flow that reads or writes a dataset
    and every dbt model is a job, and every event validates against ../shared/specs/openlineage (the spec and the
    facet schemas it references); the subflows' parent is a daily-collections run, the root of them all."""
    from relance.openlineage import EVENTS_FILE, read_events
    from tests.conftest import require
    from tests.lineage_spec import SPEC_DIR, validate_events

    require(SPEC_DIR.is_dir(), f"OpenLineage spec not found at {SPEC_DIR}")
    path = demo_run.data / "lineage" / EVENTS_FILE
    events = read_events(path)
    jobs = {e["job"]["name"] for e in events}
    assert {
        "relance.daily-collections",
        "relance.ingest-receivables",
        "relance.validate-receivables",
        "relance.build-features",
        "relance.train-model",
        "relance.score-invoices",
        "relance.send-reminders",
        "relance.publish-finance-report",
    } <= jobs
    assert any(j.startswith("dbt.") for j in jobs)
    daily_runs = {e["run"]["runId"] for e in events if e["job"]["name"] == "relance.daily-collections"}
    assert demo_run.demo_result["flow_run_id"] in daily_runs
    for e in events:
        if e["job"]["name"] == "relance.send-reminders":
            parent = e["run"]["facets"]["parent"]
            assert parent["run"]["runId"] in daily_runs and parent["job"]["name"] == "relance.daily-collections"
    assert validate_events(path) == []
