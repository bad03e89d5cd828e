"""relance.openlineage: dataset and job names, runs and their parent chain, transports that never fail a run, and
every event it builds valid against the OpenLineage spec (tests/lineage_spec.py)."""

from __future__ import annotations

import json
import logging
import socket
from datetime import date
from pathlib import Path

import pytest
from pydantic import SecretStr

from relance import openlineage as ol
from relance.settings import Settings
from tests.conftest import require
from tests.lineage_spec import SPEC_DIR, validate_events

AS_OF = date(2026, 10, 31)
DAILY_ID = "0190c0de-0000-7000-8000-000000000001"
CHILD_ID = "0190c0de-0000-7000-8000-000000000002"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", timezone="Europe/Paris")


def events_file(settings: Settings) -> Path:
    return settings.lineage_dir / ol.EVENTS_FILE


def fresh_emitter(settings: Settings) -> ol.Emitter:
    """An emitter of its own (emitter_for shares one per configuration and process)."""
    return ol.Emitter(
        ol.build_client(settings),
        settings.openlineage_namespace,
        spool=settings.lineage_dir / ol.UNDELIVERED_FILE,
        prefect_ui_url=settings.prefect_ui_url,
        timezone=settings.timezone,
    )


# --- naming -------------------------------------------------------------------------------------------------------


def test_dataset_and_job_names_follow_the_agreed_scheme(settings: Settings, tmp_path: Path) -> None:
    host = socket.gethostname()
    assert ol.job_name("send-reminders") == "relance.send-reminders"
    assert ol.job_name("relance.send-reminders") == "relance.send-reminders"  # idempotent

    raw = ol.table(settings, "raw.invoices", rows=12)
    assert (raw.namespace, raw.name) == ("duckdb://warehouse.duckdb", "raw.invoices")
    assert raw.outputFacets["outputStatistics"].rowCount == 12
    with pytest.raises(ValueError, match="schema.table"):
        ol.table(settings, "invoices")

    landing = ol.file_dataset(tmp_path / "landing" / ".." / "landing" / "invoices.csv", sha256="ab12")
    assert landing.namespace == f"file://{host}"
    assert landing.name == str((tmp_path / "landing" / "invoices.csv").resolve())
    assert landing.facets["version"].datasetVersion == "ab12"

    model = ol.mlflow_model(settings, "payment_delay", 7)
    assert model.namespace == f"mlflow://sqlite:///{settings.data / 'mlflow' / 'mlflow.db'}"
    assert model.name == "models/payment_delay/7"

    # an SQL source: the URL the loader records (no password), the entity after '#'
    db = ol.source_dataset("postgresql+psycopg://erp@db.internal:5432/ledger#invoices", sha256="q1")
    assert (db.namespace, db.name) == ("postgres://db.internal:5432", "ledger#invoices")
    assert ol.source_dataset("bodacc:2026-10-31").namespace == f"relance://{host}"
    assert ol.source_dataset(str(tmp_path / "x.csv")).namespace == f"file://{host}"


def test_messages_are_named_where_they_went(tmp_path: Path) -> None:
    host = socket.gethostname()
    outbox = Settings(data_dir=tmp_path / "d")
    email = ol.channel_dataset(outbox, "email", rows=3)
    assert (email.namespace, email.name) == (f"outbox://{host}", str(outbox.outbox.resolve() / "email"))
    assert ol.channel_dataset(outbox, "call").name.endswith("/calls")  # the call list's folder
    finance = ol.channel_dataset(outbox, "email", outbox_dir=outbox.finance_outbox)
    assert finance.name == str(outbox.finance_outbox.resolve() / "email")

    live = Settings(
        data_dir=tmp_path / "d",
        sendgrid_api_key=SecretStr("SG.key"),
        twilio_account_sid="AC123",
        twilio_auth_token=SecretStr("tok"),
        twilio_from_number="+33600000000",
    )
    sent = ol.channel_dataset(live, "email", rows=2)
    assert (sent.namespace, sent.name) == ("sendgrid://api.sendgrid.com", "v3/mail/send")
    assert ol.channel_dataset(live, "sms").namespace == "twilio://api.twilio.com"
    assert ol.channel_dataset(live, "letter").namespace == f"outbox://{host}"  # letters are always printed here


# --- runs ---------------------------------------------------------------------------------------------------------


def test_nested_runs_chain_parent_and_root_and_every_event_is_valid(settings: Settings) -> None:
    require(SPEC_DIR.is_dir(), f"OpenLineage spec not found at {SPEC_DIR}")
    emitter = fresh_emitter(settings)
    with ol.run(emitter, "daily-collections", DAILY_ID, as_of_date=AS_OF) as daily:
        with ol.run(emitter, "build-features", CHILD_ID, as_of_date=AS_OF) as build:
            build.add_inputs(ol.table(settings, "raw.invoices")).add_outputs(ol.table(settings, "ml.features", rows=5))
            build.set_ids(dbt_invocation_id="inv-1", raw_batch_ids=["b1", "b2"]).count(models=3)
            with ol.run(emitter, "dbt-step", None) as grandchild:
                assert grandchild.parent == build.ref and grandchild.root == daily.ref
        assert ol.current() is daily
    assert ol.current() is None

    events = ol.read_events(events_file(settings))
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [
        ("relance.daily-collections", "START"),
        ("relance.build-features", "START"),
        ("relance.dbt-step", "START"),
        ("relance.dbt-step", "COMPLETE"),
        ("relance.build-features", "COMPLETE"),
        ("relance.daily-collections", "COMPLETE"),
    ]
    assert validate_events(events_file(settings)) == []
    daily_start, build_start, dbt_start, _, build_done, _ = events
    assert "parent" not in daily_start["run"]["facets"]
    assert daily_start["run"]["runId"] == DAILY_ID and build_start["run"]["runId"] == CHILD_ID
    parent = build_start["run"]["facets"]["parent"]
    assert parent["run"]["runId"] == DAILY_ID
    assert (parent["job"]["namespace"], parent["job"]["name"]) == ("relance", "relance.daily-collections")
    assert parent["root"]["run"]["runId"] == DAILY_ID
    grand = dbt_start["run"]["facets"]["parent"]
    assert (grand["run"]["runId"], grand["root"]["run"]["runId"]) == (CHILD_ID, DAILY_ID)

    # what a person joins back with: the ids, the Prefect link, the business day, the engine
    facets = build_done["run"]["facets"]
    relance = facets["relance"]
    assert relance["dbt_invocation_id"] == "inv-1" and relance["raw_batch_ids"] == ["b1", "b2"]
    assert relance["prefect_flow_run_id"] == CHILD_ID
    assert relance["prefect_flow_run_url"] == f"http://127.0.0.1:4200/runs/flow-run/{CHILD_ID}"
    assert relance["as_of_date"] == "2026-10-31" and relance["counts"] == {"models": 3.0}
    assert facets["nominalTime"]["nominalStartTime"] == "2026-10-31T00:00:00+01:00"  # Paris, winter time
    assert facets["processing_engine"]["name"] == "prefect"
    assert [d["name"] for d in build_done["inputs"]] == ["raw.invoices"]
    assert build_done["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 5
    assert build_start["outputs"] == []  # the outputs are known at the end
    assert emitter.emitted == 6 and emitter.failed == 0


def test_a_failing_run_emits_fail_with_the_error_then_raises(settings: Settings) -> None:
    emitter = fresh_emitter(settings)
    with pytest.raises(RuntimeError, match="dbt exploded"), ol.run(emitter, "build-features", CHILD_ID) as lr:
        lr.add_outputs(ol.table(settings, "staging.stg_invoices"))
        raise RuntimeError("dbt exploded")
    start, failed = ol.read_events(events_file(settings))
    assert failed["eventType"] == "FAIL"
    error = failed["run"]["facets"]["errorMessage"]
    assert error["message"] == "RuntimeError: dbt exploded" and error["programmingLanguage"] == "PYTHON"
    assert "raise RuntimeError" in error["stackTrace"]
    assert not ol.complete(lr) and not ol.fail(lr)  # a run ends once
    require(SPEC_DIR.is_dir(), f"OpenLineage spec not found at {SPEC_DIR}")
    assert validate_events(events_file(settings)) == []


def test_an_error_never_carries_a_secret_out(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", sendgrid_api_key=SecretStr("SG.super-secret-key-123456"))
    emitter = ol.emitter_for(settings)
    with pytest.raises(RuntimeError), ol.run(emitter, "send-reminders", CHILD_ID):
        raise RuntimeError("SendGrid refused key SG.super-secret-key-123456")
    failed = ol.read_events(events_file(settings))[-1]
    error = failed["run"]["facets"]["errorMessage"]
    assert "super-secret" not in json.dumps(failed)
    assert error["message"] == "RuntimeError: SendGrid refused key ***"


def test_explicit_parent_a_bad_run_id_and_unknown_ids(settings: Settings) -> None:
    emitter = fresh_emitter(settings)
    parent = ol.RunRef("relance", "relance.retrain-model", DAILY_ID)
    lr = ol.start(emitter, "train-model", "not-a-uuid", parent=parent)
    assert lr.parent == parent and lr.root == parent  # the parent is its own root when none is given
    assert len(lr.run_id) == 36 and lr.run_id != "not-a-uuid"  # a fresh UUID: the spec wants one
    with pytest.raises(ValueError, match="unknown lineage ids"):
        lr.set_ids(flow_run="x")
    lr.set_ids(model_version="", mlflow_run_id=None, model_name="payment_delay")  # empty values are skipped
    assert lr.ids == {"model_name": "payment_delay"}
    assert lr.mlflow_tags() == {
        "openlineage.namespace": "relance",
        "openlineage.job_name": "relance.train-model",
        "openlineage.run_id": lr.run_id,
        "openlineage.parent_run_id": DAILY_ID,
        "openlineage.parent_job_name": "relance.retrain-model",
        "openlineage.root_run_id": DAILY_ID,
    }


def test_transport_none_emits_nothing_and_tags_nothing(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", openlineage_transport="none")
    emitter = ol.emitter_for(settings)
    assert not emitter.enabled
    with ol.run(emitter, "score-invoices", CHILD_ID) as lr:
        lr.add_outputs(ol.table(settings, "ops.predictions"))
        assert lr.mlflow_tags() == {}
    assert not settings.lineage_dir.exists()


def test_emitter_for_shares_one_emitter_per_configuration(tmp_path: Path) -> None:
    a = Settings(data_dir=tmp_path / "a")
    assert ol.emitter_for(a) is ol.emitter_for(Settings(data_dir=tmp_path / "a"))
    assert ol.emitter_for(a) is not ol.emitter_for(Settings(data_dir=tmp_path / "b"))


def test_http_without_a_url_disables_lineage_with_an_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(data_dir=tmp_path / "data", openlineage_transport="http")
    with pytest.raises(ValueError, match="RELANCE_OPENLINEAGE_URL"):
        ol.build_client(settings)
    with caplog.at_level(logging.ERROR, logger="relance.openlineage"):
        assert not ol.emitter_for(settings).enabled
    assert "OpenLineage disabled" in caplog.text


# --- a collector or a disk that fails never fails the run ----------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_collector_that_is_down_costs_a_warning_and_keeps_the_events(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", openlineage_transport="http", openlineage_url=f"http://127.0.0.1:{_closed_port()}"
    )
    emitter = fresh_emitter(settings)
    with (
        caplog.at_level(logging.WARNING, logger="relance.openlineage"),
        ol.run(emitter, "send-reminders", CHILD_ID) as lr,
    ):
        lr.add_outputs(ol.table(settings, "ops.reminder_decisions"))
    assert emitter.emitted == 0 and emitter.failed == 2
    assert caplog.text.count("OpenLineage events not delivered") == 1  # once per outage, not per event
    kept = ol.read_events(settings.lineage_dir / ol.UNDELIVERED_FILE)
    assert [e["eventType"] for e in kept] == ["START", "COMPLETE"]
    assert kept[0]["run"]["runId"] == CHILD_ID
    # still down: nothing delivered, nothing lost
    assert ol.redeliver(settings) == (0, 2)
    assert len(ol.read_events(settings.lineage_dir / ol.UNDELIVERED_FILE)) == 2


def test_an_unwritable_events_file_never_raises(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    events_file(settings).mkdir(parents=True)  # a directory where the file should be
    emitter = fresh_emitter(settings)
    with caplog.at_level(logging.WARNING, logger="relance.openlineage"), ol.run(emitter, "ingest", CHILD_ID):
        pass
    assert emitter.failed == 2 and emitter.emitted == 0
    assert "OpenLineage events not delivered" in caplog.text


def test_the_file_transport_appends_one_json_line_per_event(settings: Settings) -> None:
    emitter = fresh_emitter(settings)
    for run_id in (DAILY_ID, CHILD_ID):
        with ol.run(emitter, "score-invoices", run_id):
            pass
    lines = events_file(settings).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4 and all(json.loads(line)["job"]["name"] == "relance.score-invoices" for line in lines)
