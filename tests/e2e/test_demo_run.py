"""What the README demo must show, read from the session's one demo run (tests/e2e/conftest.py).

The demo ran from a wheel in a fresh virtual environment, from an empty directory; a second run refused while it
ran; the rerun from outside the checkout sent nothing new; a corrupted ledger stopped before anything downstream.
Every check here reads those runs' files and warehouse: none starts a pipeline of its own.
"""

from __future__ import annotations

import csv
import json
import subprocess
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from relance.send_ledger import SendLedger
from relance.settings import Settings
from tests.e2e.conftest import AS_OF, DemoRun

pytestmark = pytest.mark.e2e


def _rows(warehouse: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


# --------------------------------------------------------------------------------------- the newcomer's run
def test_the_demo_ran_from_the_wheel_in_an_empty_directory(demo_run: DemoRun) -> None:
    where = subprocess.run(
        [str(demo_run.wheel_bin / "python"), "-c", "import relance.resources as r; print(r.packaged_dbt_project())"],
        capture_output=True,
        text=True,
        check=True,
        cwd=demo_run.workdir,  # not the checkout: `python -c` imports from its working directory first
    ).stdout.strip()
    assert "site-packages" in where and where.endswith("relance/dbt_project"), where
    archived = demo_run.data / "dbt" / "runs" / demo_run.demo_result["dbt_invocation_id"] / "run_results.json"
    first = json.loads(archived.read_text())
    assert first["args"]["project_dir"] == where, "the demo built the dbt project shipped in the wheel"
    assert first["args"]["profiles_dir"] == str(demo_run.data / "dbt"), "with the profile written from settings"
    # .env is the test's own (a marked SendGrid key the demo must ignore, tests/e2e/test_secrets.py)
    assert sorted(p.name for p in demo_run.workdir.iterdir()) == [".env", "data", "demo.json"], "nothing else written"


def test_the_demo_says_where_to_look_and_leaves_it_there(demo_run: DemoRun) -> None:
    out = demo_run.demo.output
    assert "Demo done" in out
    data = demo_run.data
    assert f"finance report: {data / 'reports' / AS_OF / 'finance_report.html'}" in out.replace("\n", "")
    assert demo_run.emails_after_demo, "the demo sends emails into the outbox"
    assert (data / "prefect" / "prefect.db").exists(), "runs are kept for `relance ui`"
    assert (data / "dbt" / "target" / "index.html").exists(), "dbt docs are generated"
    assert list((data / "gx").rglob("index.html")), "GX data docs are built"


def test_every_table_is_filled_and_the_rerun_appended_nothing(demo_run: DemoRun) -> None:
    warehouse = demo_run.data / "warehouse.duckdb"
    landing = demo_run.data / "landing" / "invoices.csv"
    with landing.open(encoding="utf-8") as fh:
        n_file = sum(1 for _ in csv.DictReader(fh))
    assert _rows(warehouse, "select count(*) from raw.invoices") == [(n_file,)], "a rerun appends no file again"
    assert _rows(warehouse, "select count(distinct as_of_date) > 3, count(*) > 0 from ml.ml_invoice_features") == [
        (True, True)
    ]
    assert _rows(warehouse, "select count(*) > 0 from ops.reminders_planned") == [(True,)]


# --------------------------------------------------------------------------------------- one run at a time
def test_a_second_run_on_the_same_data_refuses_at_once_naming_the_first(demo_run: DemoRun) -> None:
    c = demo_run.concurrent
    assert c.returncode == 3, c.tail()
    text = " ".join(c.output.split())
    assert "another daily run is already running" in text and f"pid {demo_run.demo_pid}" in text, text
    assert "Traceback" not in c.output


def test_a_run_killed_with_sigkill_leaves_no_stale_lock(demo_run: DemoRun) -> None:
    bad = demo_run.bad
    assert bad.returncode != 3 and "another daily run" not in bad.output, "the killed run's lock outlived it"
    assert bad.stdout.startswith("stopped"), "the run after the kill went on to validation: " + bad.tail()


# --------------------------------------------------------------------------------------- nothing wrong goes out
def test_a_critical_contract_failure_stops_before_anything_downstream(demo_run: DemoRun) -> None:
    bad = demo_run.bad
    assert bad.returncode == 1, bad.tail()
    # the command's own output is the reason, not a traceback (Prefect's log on stderr keeps its own)
    assert bad.stdout.startswith("stopped, nothing was sent") and "invoice_id" in bad.stdout, bad.tail()
    assert "invoices [batch " in bad.stdout, "the message names the batch (printed as text, not as markup)"
    assert "Traceback" not in bad.stdout
    warehouse = demo_run.bad_data / "warehouse.duckdb"
    schemas = {r[0] for r in _rows(warehouse, "select schema_name from information_schema.schemata")}
    assert "ml" not in schemas, "dbt did not run"
    assert _rows(warehouse, "select count(*) > 0 from raw.invoices") == [(True,)], "the bad batch itself is kept"
    assert _rows(warehouse, "select count(*) from ops.predictions") == [(0,)]
    assert _rows(warehouse, "select count(*) from ops.reminders_planned") == [(0,)]
    assert _rows(warehouse, "select bool_or(not success) from ops.validation_runs") == [(True,)]
    assert not list((demo_run.bad_data / "outbox").rglob("*.json")), "nothing was sent"


def test_the_failed_batch_still_blocks_the_next_run_on_the_same_files(demo_run: DemoRun) -> None:
    """Issue 9's reproduction: the second run found the failed file `unchanged`, validated nothing, and sent."""
    again = demo_run.bad_again
    assert again.returncode == 1, again.tail()
    assert again.stdout.startswith("stopped, nothing was sent"), again.tail()
    assert "failed their data contract" in again.stdout and "relance batches quarantine" in again.stdout
    warehouse = demo_run.bad_data / "warehouse.duckdb"
    states = dict(_rows(warehouse, "select entity, validation_state from ops.ingest_batches where status = 'loaded'"))
    assert states["invoices"] == "failed"
    # the rerun read the same file again: an `unchanged` batch, and still no new validation passed it
    assert _rows(warehouse, "select count(*) > 1 from ops.ingest_batches where entity = 'invoices'") == [(True,)]
    assert _rows(warehouse, "select count(*) from ops.reminders_planned") == [(0,)]
    assert not [p for p in (demo_run.bad_data / "outbox").rglob("*") if p.is_file()], "nothing was sent"
    assert not (demo_run.bad_data / "ledger" / "sends.sqlite").exists(), "the send step never started"


# --------------------------------------------------------------------------------------- exactly once
def test_the_rerun_from_outside_the_checkout_sends_nothing_new(demo_run: DemoRun, repo_root: Path) -> None:
    assert repo_root not in demo_run.rerun_cwd.parents and demo_run.rerun_cwd != repo_root
    first, second = demo_run.demo_result, demo_run.rerun_result
    assert first["reminders_sent"] > 0
    # both asked to send despite the fixed as-of date (the demo itself, the rerun with --send-backfill), so the
    # rerun's zero comes from the send ledger, not from the freshness guard
    assert first["sending_held"] == [] and second["sending_held"] == []
    assert second["reminders_sent"] == 0 and second["reminders_failed"] == 0
    assert second["candidate_version"] == first["champion_version"], "no retraining on the same data"
    assert not second["promoted"]
    assert sorted((demo_run.data / "outbox" / "email").glob("*.json")) == demo_run.emails_after_demo
    warehouse = demo_run.data / "warehouse.duckdb"
    assert _rows(warehouse, "select reminder_key from ops.reminder_sends group by 1 having count(*) > 1") == []
    assert _rows(warehouse, "select count(*) from ops.reminder_sends where status = 'sent'") == [
        (first["reminders_sent"],)
    ]
    # the durable ledger, outside the warehouse, holds the same sends (ops.reminder_sends is its copy)
    with SendLedger(demo_run.data / "ledger" / "sends.sqlite") as ledger:
        sent = {r.reminder_key for r in ledger.records("sent")}
    assert len(sent) == first["reminders_sent"]
    assert sent == {k for (k,) in _rows(warehouse, "select reminder_key from ops.reminder_sends where status = 'sent'")}


def test_each_sent_email_is_one_ledger_row_and_goes_to_the_customers_current_address(demo_run: DemoRun) -> None:
    warehouse = demo_run.data / "warehouse.duckdb"
    current = dict(_rows(warehouse, "select customer_id, email from marts.customers"))
    customer_of = dict(_rows(warehouse, "select reminder_key, customer_id from ops.reminders_planned"))
    ledger = dict(
        _rows(
            warehouse,
            "select reminder_key, outbox_path from ops.reminder_sends where channel = 'email' and status = 'sent'",
        )
    )
    # the ledger and the outbox agree both ways: every sent row has its file, every file its sent row
    assert {Path(p) for p in ledger.values()} == set(demo_run.emails_after_demo)
    for key, path in ledger.items():
        personalization = json.loads(Path(path).read_text())["personalizations"][0]
        assert personalization["custom_args"]["reminder_key"] == key, "the key travels with the message"
        recipient = personalization["to"][0]["email"]
        assert recipient == current[customer_of[key]], f"{key}: sent to {recipient}"


# --------------------------------------------------------------------------------------- the numbers
def test_every_open_invoice_has_a_prediction_from_the_champion(demo_run: DemoRun) -> None:
    import mlflow

    tracking = f"sqlite:///{demo_run.data / 'mlflow' / 'mlflow.db'}"
    champion = mlflow.MlflowClient(tracking_uri=tracking, registry_uri=tracking).get_model_version_by_alias(
        "payment_delay", "champion"
    )
    warehouse = demo_run.data / "warehouse.duckdb"
    open_ids = {r[0] for r in _rows(warehouse, "select invoice_id from marts.invoices where is_open")}
    preds = _rows(
        warehouse,
        "select invoice_id, p_late, model_version, model_run_id, target_name from ops.predictions where as_of_date = ?",
        [AS_OF],
    )
    assert open_ids and {p[0] for p in preds} == open_ids
    assert all(0.0 <= p[1] <= 1.0 for p in preds)
    assert {(p[2], p[3]) for p in preds} == {(str(champion.version), champion.run_id)}
    assert demo_run.demo_result["scored"] == len(preds)
    # every score says which target it estimates: the champion's own, else the settings' (the demo's default)
    expected_target = champion.tags.get("relance.target_name") or Settings().target_name
    assert {p[4] for p in preds} == {expected_target}


def test_every_scored_customer_has_one_grade_and_the_worklist_explains_it(demo_run: DemoRun) -> None:
    warehouse = demo_run.data / "warehouse.duckdb"
    graded = _rows(
        warehouse,
        "select customer_id, count(*), min(risk_grade), max(risk_grade) from serving.customer_risk_grades"
        " where as_of_date = ? group by customer_id",
        [AS_OF],
    )
    scored = _rows(
        warehouse,
        "select distinct customer_id from serving.collection_worklist where p_late is not null and open_amount > 0",
    )
    assert graded and {g[0] for g in graded} == {s[0] for s in scored}
    assert all(n == 1 and lo in "ABCDE" for _, n, lo, _ in graded)
    unexplained = _rows(
        warehouse,
        "select count(*) from serving.collection_worklist where p_late is not null and open_amount > 0"
        " and (risk_grade is null or target_name is null)",
    )
    assert unexplained == [(0,)]


def test_the_aged_balance_adds_up_to_the_open_invoices(demo_run: DemoRun) -> None:
    report_dir = demo_run.data / "reports" / AS_OF
    totals: dict[str, Decimal] = defaultdict(Decimal)
    counts: dict[str, int] = defaultdict(int)
    with (report_dir / "aged_balance.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            totals[row["currency"]] += Decimal(row["open_amount"])
            counts[row["currency"]] += int(row["invoice_count"])
    warehouse = demo_run.data / "warehouse.duckdb"
    expected = _rows(
        warehouse,
        "select currency, sum(open_amount), count(*) from marts.invoices where is_open group by 1 order by 1",
    )
    assert len(expected) >= 2, "the demo ledger has several currencies"
    assert sorted((c, totals[c], counts[c]) for c in totals) == [(c, Decimal(a), n) for c, a, n in expected]
    html = (report_dir / "finance_report.html").read_text(encoding="utf-8")
    assert "DSO" in html and demo_run.demo_result["report_html"] == str(report_dir / "finance_report.html")
    # the banner is there exactly when the run could not train a model
    assert ('id="model-not-trained"' in html) == (not demo_run.demo_result.get("model_trained", True))
