"""`relance lineage show`: a reminder, an invoice or a prediction resolved to its chain, every link checked.

A tiny world in the data directory layout: a demo export of 4 customers loaded by the real loader (real batch
hashes), a validation run, a prediction, a reminder planned, decided and sent (send ledger, outbox file), a feature
row, an archived dbt invocation, an embedded-Prefect-style SQLite database with the flow runs, and a local stand-in
of the MLflow tracking server's REST API (runs/get, model-versions/get)."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from typer.testing import CliRunner

from relance import ops
from relance.demo.generate import generate_demo
from relance.importer import load_landing
from relance.lineage_cli import app, render_tree, summary
from relance.lineage_trace import NODE_KEYS, LineageNode, Locations, UnknownKey, resolve_key, trace
from relance.send_ledger import SendLedger
from relance.warehouse import connection

AS_OF = date(2026, 10, 31)
KEY = "ab12cd34" + "0" * 56
RUN_ID = "9f" * 16  # the MLflow run of the model
OTHER_RUN_ID = "7e" * 16
DBT_ID = "11111111-2222-3333-4444-555555555555"
DAILY, INGEST, VALIDATE, SCORE, SEND = (f"0000000{i}-0000-0000-0000-000000000000" for i in range(1, 6))
MESSAGE_ID = "sg-msg-42"


# --- a local MLflow tracking server (its REST API, as much as lineage asks) ------------------------------------


class _MlflowStandIn(BaseHTTPRequestHandler):
    runs = {RUN_ID: "3", OTHER_RUN_ID: "3"}  # run id -> experiment id

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/api/2.0/mlflow/runs/get" and query.get("run_id") in self.runs:
            run_id = query["run_id"]
            body = {
                "run": {
                    "info": {"run_id": run_id, "experiment_id": self.runs[run_id], "run_name": "payment_delay-x",
                             "status": "FINISHED", "start_time": 1796093608379},
                    "data": {"tags": [{"key": "dbt.invocation_id", "value": DBT_ID},
                                      {"key": "prefect.flow_run_id", "value": DAILY}]},
                }
            }  # fmt: skip
            return self._send(200, body)
        if url.path == "/api/2.0/mlflow/model-versions/get" and query == {"name": "payment_delay", "version": "1"}:
            return self._send(200, {"model_version": {"name": "payment_delay", "version": "1", "run_id": RUN_ID,
                                                      "aliases": ["champion"]}})  # fmt: skip
        self._send(404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "not found"})

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def mlflow_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MlflowStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# --- the world ----------------------------------------------------------------------------------------------


def _prefect_db(path: Path) -> None:
    """The tables and columns of Prefect's SQLite database that lineage reads, with the demo's flow runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    con.executescript(
        """CREATE TABLE flow (id TEXT PRIMARY KEY, name TEXT);
           CREATE TABLE flow_run (id TEXT PRIMARY KEY, name TEXT, state_type TEXT, state_name TEXT,
               start_time TEXT, end_time TEXT, flow_id TEXT, parent_task_run_id TEXT);
           CREATE TABLE task_run (id TEXT PRIMARY KEY, flow_run_id TEXT);"""
    )
    flows = {DAILY: "daily-collections", INGEST: "ingest-receivables", VALIDATE: "validate-receivables",
             SCORE: "score-invoices", SEND: "send-reminders"}  # fmt: skip
    for run_id, flow in flows.items():
        con.execute("INSERT INTO flow VALUES (?, ?)", [f"flow-{flow}", flow])
        parent_task = None if run_id == DAILY else f"task-{run_id}"
        if parent_task:
            con.execute("INSERT INTO task_run VALUES (?, ?)", [parent_task, DAILY])
        con.execute(
            "INSERT INTO flow_run VALUES (?, ?, 'COMPLETED', 'Completed', '2026-12-01 02:53', '2026-12-01 02:54', "
            "?, ?)",
            [run_id, f"run-of-{flow}", f"flow-{flow}", parent_task],
        )
    con.commit()
    con.close()


def _build(data: Path) -> SimpleNamespace:
    landing = data / "landing"
    generate_demo(landing, data / "ground_truth", n_customers=4, n_invoices=20, months=4, end_date=AS_OF)
    shutil.rmtree(landing / "risk", ignore_errors=True)
    with connection(data / "warehouse.duckdb") as con:
        load_landing(con, landing, flow_run_id=INGEST)
        at = datetime.now(UTC).replace(tzinfo=None)  # after the load, as in a run
        batches = [r[0] for r in con.execute("SELECT batch_id FROM ops.ingest_batches").fetchall()]
        ops.set_validation_states(con, dict.fromkeys(batches, "passed"), at=at, note="validation v1")
        docs = data / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
        docs.parent.mkdir(parents=True)
        docs.write_text("<html>data docs</html>")
        ops.record_validation_run(
            con, validation_id="v1", batch_ids=batches, success=True, critical_failures=0, warning_failures=0,
            data_docs_path=str(docs), validated_at=at, flow_run_id=VALIDATE,
        )  # fmt: skip
        invoice_id, customer_id = con.execute(
            "SELECT invoice_id, customer_id FROM raw.invoices WHERE invoice_id IN "
            "(SELECT invoice_id FROM raw.payment_allocations) ORDER BY invoice_id LIMIT 1"
        ).fetchone()
        con.execute("CREATE SCHEMA ml")
        con.execute(
            "CREATE TABLE ml.ml_invoice_features (invoice_id VARCHAR, customer_id VARCHAR, as_of_date DATE, "
            "open_amount DOUBLE, days_to_due INTEGER, dbt_invocation_id VARCHAR)"
        )
        con.execute(
            "INSERT INTO ml.ml_invoice_features VALUES (?, ?, ?, 120.5, -12, ?)",
            [invoice_id, customer_id, AS_OF, DBT_ID],
        )
        preds = pd.DataFrame(
            {"invoice_id": [invoice_id], "as_of_date": [AS_OF], "p_late": [0.81], "model_name": ["payment_delay"],
             "model_version": ["1"], "model_run_id": [RUN_ID], "target_name": ["unpaid_30d_after_due"],
             "days_late_p10": [3.0], "days_late_p50": [12.0], "days_late_p90": [40.0], "reason_1": ["12 days overdue"]}
        )  # fmt: skip
        ops.upsert_predictions(con, preds, dbt_invocation_id=DBT_ID, flow_run_id=SCORE, scored_at=at)
        planned = pd.DataFrame(
            {"reminder_key": [KEY], "invoice_id": [invoice_id], "customer_id": [customer_id], "as_of_date": [AS_OF],
             "step": ["first_reminder"], "channel": ["email"], "tone": ["cordial"], "p_late": [0.81],
             "open_amount": [120.5], "currency": ["EUR"], "recipient": ["ap@example.com"], "model_version": ["1"],
             "model_run_id": [RUN_ID], "dbt_invocation_id": [DBT_ID], "planned_at": [at],
             "flow_run_id": [SEND], "scenario": ["b2b_standard"], "arm": ["treatment"],
             "invoice_ids": [json.dumps([invoice_id])], "reasons": [json.dumps(["13 d overdue", "email"])],
             "expected_cash": [90.0], "action_cost": [0.01]}
        )  # fmt: skip
        ops.record_planned(con, planned)
        decisions = pd.DataFrame(
            {"as_of_date": [AS_OF], "customer_id": [customer_id], "decision": ["send"], "scenario": ["b2b_standard"],
             "arm": ["treatment"], "step": ["first_reminder"], "channel": ["email"], "reminder_key": [KEY],
             "rule": [None], "reasons": [json.dumps(["13 d overdue", "email"])]}
        )  # fmt: skip
        ops.record_decisions(con, decisions, at=at, flow_run_id=SEND)
    outbox = data / "outbox" / "email" / f"{KEY}.json"
    outbox.parent.mkdir(parents=True)
    outbox.write_text("{}")
    with SendLedger(data / "ledger" / "sends.sqlite") as ledger:
        ledger.claim(KEY, "email", flow_run_id=SEND, invoice_id=invoice_id, customer_id=customer_id)
        ledger.sent(KEY, provider_message_id=MESSAGE_ID, outbox_path=str(outbox), attempts=1, at=at, flow_run_id=SEND)
    archive = data / "dbt" / "runs" / DBT_ID
    archive.mkdir(parents=True)
    (archive / "run_results.json").write_text(
        json.dumps(
            {
                "metadata": {"invocation_id": DBT_ID, "generated_at": "2026-12-01T02:53:20Z", "dbt_version": "1.11"},
                "args": {"which": "build"},
                "elapsed_time": 7.0,
                "results": [{"unique_id": "model.relance.ml_invoice_features", "status": "success"}],
            }
        )
    )
    (archive / "manifest.json").write_text("{}")
    _prefect_db(data / "prefect" / "prefect.db")
    job = {"namespace": "relance", "name": "relance.send-reminders"}
    events = [{"eventType": t, "run": {"runId": SEND}, "job": job} for t in ("START", "COMPLETE")]
    (data / "lineage").mkdir()
    (data / "lineage" / "openlineage.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events) + "not json\n")
    return SimpleNamespace(invoice_id=invoice_id, customer_id=customer_id)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SimpleNamespace]:
    data = tmp_path_factory.mktemp("lineage") / "data"
    return data, _build(data)


@pytest.fixture
def world(built: tuple[Path, SimpleNamespace], tmp_path: Path, mlflow_server: str) -> SimpleNamespace:
    """A copy of the built world (tests may break it), with where lineage looks for things."""
    source, ids = built
    data = tmp_path / "data"
    shutil.copytree(source, data)
    # the ledger, the landing files and the data docs keep their original paths in the rows: point them at the copy
    for table, column in (("ops.ingest_batches", "source_file"), ("ops.validation_runs", "data_docs_path")):
        with connection(data / "warehouse.duckdb") as con:
            con.execute(f"UPDATE {table} SET {column} = replace({column}, ?, ?)", [str(source), str(data)])
    ledger = sqlite3.connect(data / "ledger" / "sends.sqlite")
    ledger.execute("UPDATE reminder_sends SET outbox_path = replace(outbox_path, ?, ?)", [str(source), str(data)])
    ledger.commit()
    ledger.close()
    loc = Locations(
        warehouse=data / "warehouse.duckdb",
        send_ledger=data / "ledger" / "sends.sqlite",
        dbt_runs_dir=data / "dbt" / "runs",
        prefect_db=data / "prefect" / "prefect.db",
        prefect_ui_url="http://prefect.example:4200",
        mlflow_uri=mlflow_server,
        mlflow_ui_url="http://mlflow.example:5000",
        openlineage_events=data / "lineage" / "openlineage.jsonl",
    )
    return SimpleNamespace(data=data, loc=loc, mlflow=mlflow_server, **vars(ids))


def _trace(world: SimpleNamespace, key: str, **changes: object) -> LineageNode:
    loc = Locations(**{**vars(world.loc), **changes})
    with connection(world.data / "warehouse.duckdb", read_only=True) as con:
        return trace(con, key, loc)


def _nodes(root: LineageNode, kind: str) -> list[LineageNode]:
    return [n for n in root.walk() if n.kind == kind]


# --- the chain ----------------------------------------------------------------------------------------------


def test_a_sent_reminder_resolves_to_the_raw_files_and_the_flow_runs_every_link_found(world: SimpleNamespace) -> None:
    root = _trace(world, KEY)
    assert root.kind == "reminder" and root.id == KEY and root.found
    assert root.attributes["scenario"] == "b2b_standard" and root.attributes["step"] == "first_reminder"
    assert root.attributes["invoices"] == [world.invoice_id]
    assert root.missing() == [], [(n.kind, n.id, n.attributes) for n in root.missing()]
    assert all(n.found is True for n in root.walk()), "every link checked and found"

    (message,) = _nodes(root, "message")
    assert message.id == MESSAGE_ID and message.attributes["status"] == "sent"
    assert {c.attributes["role"] for c in message.children} == {"outbox copy of the message"}
    (decision,) = _nodes(root, "decision")
    assert decision.attributes["decision"] == "send" and decision.attributes["reasons"] == ["13 d overdue", "email"]
    (prediction,) = _nodes(root, "prediction")
    assert prediction.id == f"{world.invoice_id}@{AS_OF}" and prediction.attributes["p_late"] == 0.81
    (run,) = _nodes(root, "mlflow_run")
    assert run.id == RUN_ID and run.attributes["aliases_now"] == ["champion"]
    assert run.links["run"] == f"http://mlflow.example:5000/#/experiments/3/runs/{RUN_ID}"
    (dbt,) = _nodes(root, "dbt_invocation")
    assert dbt.id == DBT_ID and Path(dbt.links["manifest"]).is_file()

    batches = {n.attributes["entity"]: n for n in _nodes(root, "raw_batch")}
    assert {"invoices", "customers", "payments", "payment_allocations"} <= set(batches)
    invoices = batches["invoices"]
    assert invoices.attributes["keys"] == [world.invoice_id] and invoices.attributes["holds_current_version"]
    assert invoices.attributes["validation_state"] == "passed"
    landing = next(c for c in invoices.children if c.kind == "file")
    on_disk = (world.data / "landing" / "invoices.csv").read_bytes()
    assert landing.attributes["sha256"] == hashlib.sha256(on_disk).hexdigest()
    assert "profile 'demo'" in landing.attributes["hash_check"]
    validation = next(c for c in invoices.children if c.kind == "validation")
    assert validation.attributes["result"] == "passed" and Path(validation.links["data_docs"]).is_file()

    flow_runs = _nodes(root, "flow_run")
    assert {n.attributes["flow"] for n in flow_runs} == {
        "send-reminders", "score-invoices", "ingest-receivables", "validate-receivables", "daily-collections"
    }  # fmt: skip
    planned_by = next(c for c in root.children if c.kind == "flow_run")
    assert planned_by.id == SEND and planned_by.links["prefect"] == f"http://prefect.example:4200/runs/flow-run/{SEND}"
    assert [c.id for c in planned_by.children] == [DAILY], "up to the daily run"
    assert planned_by.attributes["openlineage_events"] == [
        "START relance.send-reminders",
        "COMPLETE relance.send-reminders",
    ]
    assert planned_by.links["openlineage"] == str(world.data / "lineage" / "openlineage.jsonl")
    assert planned_by.children[0].attributes["openlineage_events"] == "none"


def test_missing_links_are_flagged_not_skipped(world: SimpleNamespace) -> None:
    (world.data / "landing" / "customers.csv").unlink()
    (world.data / "outbox" / "email" / f"{KEY}.json").unlink()
    shutil.rmtree(world.data / "dbt" / "runs" / DBT_ID)
    (world.data / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html").unlink()
    with open(world.data / "landing" / "invoices.csv", "a") as fh:
        fh.write("\n")  # changed since it was loaded
    root = _trace(world, KEY, mlflow_uri=f"sqlite:///{world.data}/mlflow/nowhere.db")

    missing = {(n.kind, n.attributes.get("role", "")): n for n in root.missing()}
    assert ("dbt_invocation", "") in missing and ("mlflow_run", "") in missing
    assert ("file", "outbox copy of the message") in missing
    assert ("file", "Great Expectations data docs") in missing
    files = {n.id: n for n in _nodes(root, "file") if n.attributes.get("role") == "landing file"}
    assert files[str(world.data / "landing" / "customers.csv")].found is False
    assert files[str(world.data / "landing" / "invoices.csv")].found is False, "a file changed since its load"
    assert all(n.attributes.get("missing") for n in root.missing()), "each says what is missing"
    assert not (world.data / "mlflow" / "nowhere.db").exists(), "a look-up creates no MLflow database"

    text = _render(root)
    assert "✗ missing" in text and "missing link(s)" in text


def test_an_unknown_mlflow_run_and_an_unreachable_prefect_database(world: SimpleNamespace) -> None:
    with connection(world.data / "warehouse.duckdb") as con:
        con.execute("UPDATE ops.reminders_planned SET model_run_id = ?", ["00" * 16])
    (world.data / "prefect" / "prefect.db").unlink()
    root = _trace(world, KEY)
    runs = _nodes(root, "mlflow_run")
    assert [(n.id, n.found) for n in runs] == [("00" * 16, False)], "the run the reminder was decided with"
    flow_runs = _nodes(root, "flow_run")
    assert flow_runs and all(
        n.found is None and "no Prefect database" in n.attributes["not_checked"] for n in flow_runs
    )
    assert all(n.links["prefect"].endswith(n.id) for n in flow_runs), "still says where to open it"
    assert "not checked" in _render(root)


def test_a_rescored_prediction_keeps_the_ids_the_reminder_was_decided_with(world: SimpleNamespace) -> None:
    with connection(world.data / "warehouse.duckdb") as con:
        rescored = pd.DataFrame(
            {"invoice_id": [world.invoice_id], "as_of_date": [AS_OF], "p_late": [0.5], "model_name": ["payment_delay"],
             "model_version": ["2"], "model_run_id": [OTHER_RUN_ID]}
        )  # fmt: skip
        ops.upsert_predictions(
            con, rescored, dbt_invocation_id="other-dbt", flow_run_id=SCORE, scored_at=datetime.now()
        )
    root = _trace(world, KEY)
    (prediction,) = _nodes(root, "prediction")
    assert prediction.attributes["model_run_id"] == OTHER_RUN_ID and "rescored" in prediction.attributes
    assert [n.id for n in _nodes(root, "mlflow_run")] == [RUN_ID]
    assert [n.id for n in _nodes(root, "dbt_invocation")] == [DBT_ID]
    standalone = _trace(world, f"prediction:{world.invoice_id}@{AS_OF}")
    assert [n.id for n in _nodes(standalone, "mlflow_run")] == [OTHER_RUN_ID]
    assert standalone.attributes["reminders"] == [KEY]


# --- what a key may be ----------------------------------------------------------------------------------------


def test_a_key_is_a_reminder_an_invoice_a_prediction_or_a_message(world: SimpleNamespace) -> None:
    inv = world.invoice_id
    with (
        connection(world.data / "warehouse.duckdb", read_only=True) as con,
        SendLedger(world.loc.send_ledger) as ledger,
    ):
        kinds = {
            text: (k.kind, k.value, k.as_of_date)
            for text in (
                KEY,
                KEY[:8],
                f"reminder:{KEY}",
                inv,
                f"invoice:{inv}",
                f"{inv}@{AS_OF}",
                f"prediction:{inv}@{AS_OF}",
                MESSAGE_ID,
                f"message:{MESSAGE_ID}",
            )  # fmt: skip
            for k in [resolve_key(con, ledger, text)]
        }
        with pytest.raises(UnknownKey) as near:
            resolve_key(con, ledger, inv[:-1])
        with pytest.raises(UnknownKey) as other_day:
            resolve_key(con, ledger, f"{inv}@2026-10-30")
        with pytest.raises(UnknownKey):
            resolve_key(con, ledger, f"invoice:{KEY}")  # a reminder key is no invoice
        with pytest.raises(UnknownKey) as bad_date:
            resolve_key(con, ledger, f"{inv}@31/10/2026")
    reminder, invoice, prediction = ("reminder", KEY, None), ("invoice", inv, None), ("prediction", inv, AS_OF)
    assert kinds == {
        KEY: reminder, KEY[:8]: reminder, f"reminder:{KEY}": reminder, inv: invoice, f"invoice:{inv}": invoice,
        f"{inv}@{AS_OF}": prediction, f"prediction:{inv}@{AS_OF}": prediction, MESSAGE_ID: reminder,
        f"message:{MESSAGE_ID}": reminder,
    }  # fmt: skip
    assert inv in near.value.hints, "a truncated id: the ids it starts"
    assert str(near.value).startswith(f"no reminder, invoice or prediction named {inv[:-1]}")
    assert other_day.value.hints == [f"{inv}@{AS_OF}"], "the dates it was scored on"
    assert "not a date" in bad_date.value.detail


def test_an_invoice_lists_its_reminders_with_their_chain(world: SimpleNamespace) -> None:
    root = _trace(world, world.invoice_id)
    assert root.kind == "invoice" and root.found and root.attributes["reminders"] == 1
    assert root.attributes["customer_id"] == world.customer_id
    (reminder,) = root.children
    assert reminder.kind == "reminder" and reminder.id == KEY
    assert [n.id for n in _nodes(root, "prediction")] == [f"{world.invoice_id}@{AS_OF}"]
    assert root.missing() == []


def test_a_send_whose_plan_the_warehouse_lost_still_shows_the_message(world: SimpleNamespace) -> None:
    with connection(world.data / "warehouse.duckdb") as con:
        con.execute("DELETE FROM ops.reminders_planned")
        con.execute("DELETE FROM ops.reminder_decisions")
    root = _trace(world, KEY)
    assert root.found is False and "reminders_planned" in root.attributes["missing"]
    (message,) = _nodes(root, "message")
    assert message.found and message.attributes["status"] == "sent"
    assert [n.found for n in _nodes(root, "decision")] == [False]
    assert [n.id for n in root.children if n.kind == "flow_run"] == [SEND], "the run that sent it, from the ledger"


# --- JSON and the command --------------------------------------------------------------------------------------


def _keys_everywhere(node: dict) -> set[tuple[str, ...]]:
    return {tuple(node)} | {k for child in node["children"] for k in _keys_everywhere(child)}


def test_json_has_the_stable_keys_on_every_node(world: SimpleNamespace) -> None:
    tree = json.loads(json.dumps(_trace(world, KEY).to_dict()))
    assert _keys_everywhere(tree) == {NODE_KEYS}
    assert tree["kind"] == "reminder" and tree["found"] is True
    assert all(isinstance(v, str) for v in tree["links"].values())


def _render(root: LineageNode) -> str:
    from rich.console import Console

    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115 (closed with the console)
    console.print(render_tree(root))
    console.print(summary(root))
    return console.export_text()


def _cli(world: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, *args: str):
    monkeypatch.chdir(world.data.parent)
    monkeypatch.setenv("RELANCE_DATA_DIR", str(world.data))
    monkeypatch.setenv("RELANCE_MLFLOW_TRACKING_URI", world.mlflow)
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def test_show_prints_the_tree_and_json(world: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    shown = _cli(world, monkeypatch, "show", KEY[:10])
    assert shown.exit_code == 0, shown.output
    for text in ("reminder", "message", "decision", "prediction", "mlflow_run", "features", "dbt_invocation",
                 "raw_batch", "validation", "flow_run", "lineage complete", f"/runs/flow-run/{SEND}"):  # fmt: skip
        assert text in shown.stdout, text
    as_json = _cli(world, monkeypatch, "show", KEY, "--json")
    assert as_json.exit_code == 0
    tree = json.loads(as_json.stdout)
    assert tree["id"] == KEY and _keys_everywhere(tree) == {NODE_KEYS}


def test_show_an_unknown_key_or_no_warehouse(world: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    unknown = _cli(world, monkeypatch, "show", world.invoice_id[:-1])
    assert unknown.exit_code == 1
    assert f"no reminder, invoice or prediction named {world.invoice_id[:-1]}" in unknown.output
    assert world.invoice_id in unknown.output, "the nearest names"
    (world.data / "warehouse.duckdb").unlink()
    empty = _cli(world, monkeypatch, "show", KEY)
    assert empty.exit_code == 2 and "no warehouse" in empty.output
