"""`relance ui` on the session's demo data (started by tests/e2e/conftest.py once the demo and its rerun are done):
the Prefect UI shows the demo's flow runs, the MLflow UI the champion, the docs server the dbt docs; every lineage id
stamped on a planned reminder resolves through them; and SIGTERM stops every server `relance ui` started, as Ctrl-C
does."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest

from tests.e2e.conftest import AS_OF, DemoRun, Ui

pytestmark = pytest.mark.e2e


def _http(url: str, body: dict | None = None) -> object:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_ui_shows_the_demo_flow_runs_the_champion_and_the_dbt_docs(ui: Ui) -> None:
    flows = _http(f"{ui.prefect}/flows/filter", {"flows": {"name": {"any_": ["daily-collections"]}}})
    assert flows, "the daily-collections flow is registered in the UI's database"
    runs = _http(f"{ui.prefect}/flow_runs/filter", {"flows": {"id": {"any_": [flows[0]["id"]]}}})
    # the demo, the refused run (never reached Prefect) and the rerun: two completed daily runs
    assert len(runs) == 2 and all(r["state_type"] == "COMPLETED" for r in runs)
    model = _http(f"{ui.mlflow}/api/2.0/mlflow/registered-models/get?name=payment_delay")
    assert "champion" in {a["alias"] for a in model["registered_model"].get("aliases", [])}
    with urllib.request.urlopen(f"{ui.docs}/index.html", timeout=10) as resp:
        page = resp.read().decode("utf-8", "replace")
    assert "dbt" in page[:5000].lower()


def test_the_rerun_reported_each_step_to_the_ui_server(ui: Ui, demo_run: DemoRun) -> None:
    """The rerun ran against the Prefect server `relance ui` started (as a scheduled run on a server would): its
    steps, the company-risk refresh among them, are subflow runs of its daily run there. (Every dbt node as a task,
    RELANCE_DBT_NODE_TASKS, is tested on a selection in tests/integration/test_dbt_node_tasks.py.)"""
    names = ["refresh-company-risk", "build-features", "raise-risk-alerts", "send-reminders"]
    flows = _http(f"{ui.prefect}/flows/filter", {"flows": {"name": {"any_": names}}})
    runs = _http(f"{ui.prefect}/flow_runs/filter", {"flows": {"id": {"any_": [f["id"] for f in flows]}}})
    parents = {r["parent_task_run_id"] for r in runs} - {None}
    daily = {_http(f"{ui.prefect}/task_runs/{p}")["flow_run_id"] for p in parents}
    assert demo_run.rerun_result["flow_run_id"] in daily
    mine = [r for r in runs if _http(f"{ui.prefect}/task_runs/{r['parent_task_run_id']}")["flow_run_id"]
            == demo_run.rerun_result["flow_run_id"]]  # fmt: skip
    assert {f["name"] for f in flows if f["id"] in {r["flow_id"] for r in mine}} == set(names)
    assert all(r["state_type"] == "COMPLETED" for r in mine)


def test_every_lineage_id_on_a_planned_reminder_resolves(ui: Ui, demo_run: DemoRun) -> None:
    import mlflow

    first, second = demo_run.demo_result, demo_run.rerun_result
    client = mlflow.MlflowClient(tracking_uri=ui.mlflow, registry_uri=ui.mlflow)
    with duckdb.connect(str(demo_run.data / "warehouse.duckdb"), read_only=True) as con:
        planned = con.sql(
            "select distinct flow_run_id, model_run_id, model_version, dbt_invocation_id from ops.reminders_planned"
        ).fetchall()
        feature_invocations = dict(
            con.execute(
                "select as_of_date = ?, list(distinct dbt_invocation_id) from ml.ml_invoice_features group by 1",
                [AS_OF],
            ).fetchall()
        )
        batch_ids = {r[0] for r in con.sql("select batch_id from ops.ingest_batches").fetchall()}
        raw_batches = {r[0] for r in con.sql("select distinct _batch_id from raw.invoices").fetchall()}
    assert planned and raw_batches <= batch_ids
    for flow_run_id, model_run_id, model_version, dbt_invocation_id in planned:
        assert client.get_run(model_run_id).info.run_id == model_run_id  # the MLflow run exists
        assert client.get_model_version("payment_delay", model_version).run_id == model_run_id
        flow_run = _http(f"{ui.prefect}/flow_runs/{flow_run_id}")  # the Prefect flow run exists
        parent_task = _http(f"{ui.prefect}/task_runs/{flow_run['parent_task_run_id']}")
        assert parent_task["flow_run_id"] == first["flow_run_id"], "sends belong to the demo's daily run"
        assert dbt_invocation_id == first["dbt_invocation_id"]
        archived = json.loads((demo_run.data / "dbt" / "runs" / dbt_invocation_id / "run_results.json").read_text())
        assert archived["metadata"]["invocation_id"] == dbt_invocation_id  # resolves after a rebuild
        assert any(r["unique_id"] == "model.relance.ml_invoice_features" for r in archived["results"])
    # features carry the id of the build that made them: grid dates built by the demo and kept (incremental),
    # the scoring date rebuilt by the rerun
    assert feature_invocations == {False: [first["dbt_invocation_id"]], True: [second["dbt_invocation_id"]]}
    experiment = client.get_experiment_by_name("payment_delay-unpaid_30d_after_due")  # one per target
    trained = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`prefect.flow_run_id` = '{first['flow_run_id']}'"
    )
    assert trained, "the training run is tagged with the daily flow run id"


def test_sigterm_stops_every_server_ui_started(ui: Ui) -> None:
    """Last in this module: it stops the servers the tests above used."""
    assert ui.servers, "relance ui started its servers as child processes"
    ui.proc.send_signal(signal.SIGTERM)  # the process only, as a service manager or `kill` does
    assert ui.proc.wait(timeout=60) == 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(p) for p in ui.servers):
        time.sleep(0.2)
    assert not [p for p in ui.servers if _alive(p)], "servers left running after SIGTERM"
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{ui.prefect}/health", timeout=5)
