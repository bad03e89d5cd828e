"""The walking skeleton end to end under the Prefect test harness, on real DuckDB, dbt, GX and MLflow.

One small generated dataset, the daily flow run twice for the same as-of date: the first run must produce every
table, a champion, a prediction per open invoice, unique outbox messages, report files and resolvable lineage ids;
the second must send nothing new.
"""

from __future__ import annotations

import json
import uuid
from datetime import date
from pathlib import Path

import pytest

from relance.demo.generate import generate_demo
from relance.settings import Settings
from relance.warehouse import connection

pytestmark = pytest.mark.integration
AS_OF = date(2026, 10, 31)


def _corrupted_copy(repo_root: Path, data: Path) -> Settings:
    """A landing directory whose invoices break a critical contract: one invoice id appears twice."""
    bad = Settings(project_root=repo_root, data_dir=data, warehouse_path=data / "warehouse.duckdb")
    bad.ensure_dirs()
    generate_demo(bad.landing, bad.ground_truth_dir, n_customers=60, n_invoices=800, months=12, end_date=AS_OF, seed=3)
    path = bad.landing / "invoices.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join([*lines, lines[1]]))
    return bad


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, repo_root: Path):
    data = tmp_path_factory.mktemp("relance")
    # a 4-weekly training grid instead of the weekly default keeps the suite short (the grid has its own tests)
    settings = Settings(project_root=repo_root, data_dir=data, snapshot_interval_days=28)
    settings.ensure_dirs()
    with pytest.MonkeyPatch.context() as mp:
        for key, value in settings.tool_environment().items():
            mp.setenv(key, value)
        generate_demo(
            settings.landing,
            settings.ground_truth_dir,
            n_customers=250,
            n_invoices=6000,
            months=18,
            end_date=AS_OF,
            seed=7,
        )
        from prefect.client.orchestration import get_client
        from prefect.testing.utilities import prefect_test_harness

        from flows.daily_collections import daily_collections

        with prefect_test_harness(server_startup_timeout=120):
            first = daily_collections(as_of_date=AS_OF, settings=settings)
            outbox_after_first = sorted((settings.outbox / "email").glob("*.json"))
            second = daily_collections(as_of_date=AS_OF, settings=settings)
            bad = _corrupted_copy(repo_root, data / "bad")
            assert bad.warehouse != settings.warehouse
            with pytest.raises(Exception, match="critical") as critical:
                daily_collections(as_of_date=AS_OF, settings=bad)
            with get_client(sync_client=True) as client:
                yield {
                    "settings": settings,
                    "first": first,
                    "second": second,
                    "outbox_after_first": outbox_after_first,
                    "prefect": client,
                    "bad": bad,
                    "critical": str(critical.value),
                }


def test_tables_are_filled(pipeline) -> None:
    s: Settings = pipeline["settings"]
    with connection(s.warehouse) as con:
        n_raw = con.sql("select count(*) from raw.invoices").fetchone()[0]
        n_file = con.sql(f"select count(*) from read_csv('{s.landing / 'invoices.csv'}', header=true)").fetchone()[0]
        assert n_raw == n_file > 0, "a rerun must not append the same file again"
        assert con.sql("select count(*) from ml.ml_invoice_features").fetchone()[0] > 0
        assert con.sql("select count(distinct as_of_date) from ml.ml_invoice_features").fetchone()[0] > 3
        assert con.sql("select count(*) from ops.reminders_planned").fetchone()[0] > 0


def test_every_open_invoice_has_a_prediction_from_the_champion(pipeline) -> None:
    import mlflow

    s: Settings = pipeline["settings"]
    client = mlflow.MlflowClient(tracking_uri=s.mlflow_uri, registry_uri=s.mlflow_uri)
    champion = client.get_model_version_by_alias(s.model_name, "champion")
    with connection(s.warehouse) as con:
        open_ids = {r[0] for r in con.sql("select invoice_id from marts.invoices where is_open").fetchall()}
        preds = con.sql(
            "select invoice_id, p_late_30d, model_version, model_run_id from ops.predictions where as_of_date = ?",
            params=[AS_OF],
        ).fetchall()
    assert open_ids and {p[0] for p in preds} == open_ids
    assert all(0.0 <= p[1] <= 1.0 for p in preds)
    assert {p[2] for p in preds} == {str(champion.version)}
    assert {p[3] for p in preds} == {champion.run_id}


def test_outbox_messages_unique_per_idempotency_key(pipeline) -> None:
    s: Settings = pipeline["settings"]
    files = pipeline["outbox_after_first"]
    assert files, "the demo policy must send some emails"
    keys = []
    for path in files:
        body = json.loads(path.read_text())
        key = body["personalizations"][0]["custom_args"]["reminder_key"]
        assert path.stem == key
        keys.append(key)
    assert len(keys) == len(set(keys))
    with connection(s.warehouse) as con:
        sent = {
            r[0]
            for r in con.sql(
                "select reminder_key from ops.reminder_sends where channel = 'email' and status = 'sent'"
            ).fetchall()
        }
    assert sent == set(keys)


def test_second_run_for_the_same_date_sends_nothing_new(pipeline) -> None:
    s: Settings = pipeline["settings"]
    assert pipeline["first"]["reminders_sent"] > 0
    assert pipeline["second"]["reminders_sent"] == 0
    assert pipeline["second"]["candidate_version"] == pipeline["first"]["champion_version"], "no retrain on same data"
    assert not pipeline["second"]["promoted"]
    assert sorted((s.outbox / "email").glob("*.json")) == pipeline["outbox_after_first"]
    with connection(s.warehouse) as con:
        dupes = con.sql("select reminder_key from ops.reminder_sends group by 1 having count(*) > 1").fetchall()
        n_sent = con.sql("select count(*) from ops.reminder_sends where status = 'sent'").fetchone()[0]
    assert dupes == []
    assert n_sent == pipeline["first"]["reminders_sent"]


def test_report_files_exist(pipeline) -> None:
    html = Path(pipeline["first"]["report_html"])
    assert html.exists() and "DSO" in html.read_text()
    assert list(html.parent.glob("*.csv"))


def test_lineage_ids_resolve(pipeline) -> None:
    import mlflow

    s: Settings = pipeline["settings"]
    first = pipeline["first"]
    client = mlflow.MlflowClient(tracking_uri=s.mlflow_uri, registry_uri=s.mlflow_uri)
    with connection(s.warehouse) as con:
        planned = con.sql(
            "select distinct flow_run_id, model_run_id, model_version, dbt_invocation_id from ops.reminders_planned"
        ).fetchall()
        feature_invocations = dict(
            con.sql(
                "select as_of_date = ?, list(distinct dbt_invocation_id) from ml.ml_invoice_features group by 1",
                params=[AS_OF],
            ).fetchall()
        )
        batch_ids = {r[0] for r in con.sql("select batch_id from ops.ingest_batches").fetchall()}
        raw_batches = {r[0] for r in con.sql("select distinct _batch_id from raw.invoices").fetchall()}
    assert raw_batches <= batch_ids
    prefect = pipeline["prefect"]
    for flow_run_id, model_run_id, model_version, dbt_invocation_id in planned:
        run = client.get_run(model_run_id)  # the MLflow run exists
        assert run.info.run_id == model_run_id
        assert client.get_model_version(s.model_name, model_version).run_id == model_run_id
        flow_run = prefect.read_flow_run(uuid.UUID(flow_run_id))  # the Prefect flow run exists
        parent_task = prefect.read_task_run(flow_run.parent_task_run_id)
        assert str(parent_task.flow_run_id) == first["flow_run_id"], "sends belong to the daily run"
        assert dbt_invocation_id == first["dbt_invocation_id"]
        archived = json.loads((s.dbt_runs_dir / dbt_invocation_id / "run_results.json").read_text())
        assert archived["metadata"]["invocation_id"] == dbt_invocation_id  # resolves after a rebuild
        assert any(r["unique_id"] == "model.relance.ml_invoice_features" for r in archived["results"])
    # features carry the id of the build that made them: the grid dates were built by the first run and kept
    # (incremental), the scoring date was rebuilt by the second
    assert feature_invocations == {
        False: [first["dbt_invocation_id"]],
        True: [pipeline["second"]["dbt_invocation_id"]],
    }
    trained = client.search_runs(
        [client.get_experiment_by_name(s.model_name).experiment_id],
        filter_string=f"tags.`prefect.flow_run_id` = '{first['flow_run_id']}'",
    )
    assert trained, "the training run is tagged with the daily flow run id"


def test_a_critical_contract_failure_stops_the_run_before_anything_downstream(pipeline) -> None:
    bad: Settings = pipeline["bad"]
    assert "invoice_id" in pipeline["critical"]
    with connection(bad.warehouse) as con:
        schemas = {r[0] for r in con.sql("select schema_name from information_schema.schemata").fetchall()}
        assert con.sql("select count(*) from raw.invoices").fetchone()[0] > 0, "the bad batch itself is kept"
        assert con.sql("select count(*) from ops.predictions").fetchone()[0] == 0
        assert con.sql("select count(*) from ops.reminders_planned").fetchone()[0] == 0
        assert con.sql("select bool_or(not success) from ops.validation_runs").fetchone()[0]
    assert "ml" not in schemas, "dbt did not run"
    assert not list(bad.outbox.rglob("*.json")), "nothing was sent"
