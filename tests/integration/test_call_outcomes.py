"""Collectors' call outcomes into a real DuckDB warehouse: read and checked row by row, loaded through the shared
loader, validated by the GX suite, suppressions written once, imported once per file, and the `relance calls`
command with its exit codes and the daily-run lock."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from expectations.runner import validate_batches
from flows.import_call_outcomes import import_call_outcomes, watched_call_files
from relance import ops
from relance.ingest import load_extracts
from relance.raw_schema import CONTACT_ENTITIES, ENTITIES
from relance.reminders.calls import SOURCE_NAME, record_call_suppressions
from relance.settings import Settings
from relance.sources.base import EntityExtract
from relance.warehouse import connection, ensure_schemas

pytestmark = pytest.mark.integration

CUSTOMERS = ("C1", "C2", "C3", "C4")
GOOD_AND_BAD = (
    "customer_id;called_at;outcome;promised_date;promised_amount;collector;note\n"
    "C1;02/11/2026 10:15;promise;20/11/2026;1 234,50;Claire;paiera le solde\n"  # 2
    "C2;2026-11-02 10:40;wrong_contact;;;Claire;standard d'un autre client\n"  # 3
    "C3;2026-11-02 11:00;do_not_contact;;;Claire;demande écrite\n"  # 4
    "C4;2026-11-02 11:30;promise;;;Claire;\n"  # 5: a promise without a date
    "C9;2026-11-02 12:00;reached;;;Claire;\n"  # 6: no such customer
)


def _load_customers(con: duckdb.DuckDBPyConnection) -> None:
    cols = list(ENTITIES["customers"])
    rows = [{"customer_id": c, "customer_name": f"Client {c}", "customer_type": "B2B"} for c in CUSTOMERS]
    table = pa.table({c: pa.array([r.get(c) for r in rows], pa.string()) for c in cols})
    load_extracts(
        con, [EntityExtract("customers", table, "customers.csv", "h-customers")], source_name="erp", flow_run_id=None
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = Settings(data_dir=tmp_path / "data")
    s.ensure_dirs()
    with connection(s.warehouse) as con:
        ensure_schemas(con)
        _load_customers(con)
    return s


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def _state(settings: Settings) -> dict[str, list[tuple]]:
    with connection(settings.warehouse) as con:
        return {
            "raw": con.execute(
                "SELECT customer_id, called_at, outcome, promised_date, promised_amount, _source_row "
                "FROM raw.call_outcomes ORDER BY _source_row, customer_id"
            ).fetchall(),
            "quarantine": con.execute(
                "SELECT row_number, stage, reason FROM ops.quarantine WHERE entity = 'call_outcomes' "
                "ORDER BY row_number"
            ).fetchall(),
            "suppressions": con.execute(
                "SELECT customer_id, channel, source, lifted_at FROM ops.contact_suppressions ORDER BY customer_id"
            ).fetchall(),
            "batches": con.execute(
                "SELECT status, validation_state FROM ops.ingest_batches WHERE entity = 'call_outcomes' "
                "ORDER BY loaded_at, batch_id"
            ).fetchall(),
        }


def test_good_rows_load_bad_rows_are_quarantined_and_a_rerun_changes_nothing(settings: Settings) -> None:
    path = _write(settings.data / "in" / "appels.csv", GOOD_AND_BAD, encoding="cp1252")  # as Excel saves it

    report = import_call_outcomes(settings, [path])

    (item,) = report.files
    assert (item.status, item.rows_read, item.rows_loaded, item.rows_rejected) == ("loaded", 5, 3, 2)
    assert item.contract_failures == () and item.contract_warnings == ()
    state = _state(settings)
    assert [(r[0], r[1].isoformat(sep=" "), r[2], r[5]) for r in state["raw"]] == [
        ("C1", "2026-11-02 09:15:00", "promise", 2),  # Europe/Paris local time, stored in UTC
        ("C2", "2026-11-02 09:40:00", "wrong_contact", 3),
        ("C3", "2026-11-02 10:00:00", "do_not_contact", 4),
    ]
    assert str(state["raw"][0][4]) == "1234.50"
    (q5, q6) = state["quarantine"]
    assert q5[:2] == (5, "load") and "appels.csv, row 5: field promised_date:" in q5[2]
    assert q6[:2] == (6, "load") and "row 6: field customer_id: 'C9' is not a customer" in q6[2]
    assert state["batches"] == [("loaded", "passed")]  # validated by the GX suite raw_call_outcomes
    assert state["suppressions"] == [("C2", "call", "call", None), ("C3", "*", "call", None)]
    assert report.suppressions_written == 2
    with connection(settings.warehouse) as con:
        assert ops.pending_batch_ids(con, contact_data=True) == []  # validated here, not left to the gate
        (suite_run,) = con.execute(
            "SELECT success FROM ops.validation_runs WHERE batch_ids = ?", [item.batch_id]
        ).fetchall()
        assert suite_run == (True,)

    again = import_call_outcomes(settings, [path])

    assert again.files[0].status == "unchanged" and again.rows_loaded == 0 and again.suppressions_written == 0
    after = _state(settings)
    assert {k: v for k, v in after.items() if k != "batches"} == {k: v for k, v in state.items() if k != "batches"}
    assert after["batches"] == [("loaded", "passed"), ("unchanged", "passed")]


def test_a_corrected_file_loads_only_what_changed_and_a_lifted_suppression_stays_lifted(settings: Settings) -> None:
    first = _write(settings.data / "in" / "calls.csv", GOOD_AND_BAD)
    import_call_outcomes(settings, [first])
    with connection(settings.warehouse) as con:
        con.execute(
            "UPDATE ops.contact_suppressions SET lifted_at = TIMESTAMP '2026-11-03 08:00' WHERE customer_id = 'C2'"
        )

    corrected = GOOD_AND_BAD.replace("C4;2026-11-02 11:30;promise;;", "C4;2026-11-02 11:30;promise;2026-11-25;")
    corrected = corrected.replace("C9;", "C4;").replace("12:00;reached", "12:00;no_answer")
    second = _write(settings.data / "in" / "calls-corrected.csv", corrected)
    report = import_call_outcomes(settings, [second])

    (item,) = report.files
    assert (item.status, item.rows_loaded, item.rows_unchanged, item.rows_rejected) == ("loaded", 2, 3, 0)
    state = _state(settings)
    assert [r[0] for r in state["raw"]] == ["C1", "C2", "C3", "C4", "C4"]
    # the wrong-contact call was lifted after it was made: the same call, delivered again, does not re-suppress
    assert state["suppressions"] == [("C2", "call", "call", state["suppressions"][0][3]), ("C3", "*", "call", None)]
    assert state["suppressions"][0][3] is not None and report.suppressions_written == 0


def test_the_contract_quarantines_what_bypasses_the_reader_and_it_suppresses_nothing(settings: Settings) -> None:
    cols = list(CONTACT_ENTITIES["call_outcomes"])
    rows = [
        {"call_id": "k1", "customer_id": "C1", "called_at": "2026-11-02 09:00:00", "outcome": "do_not_contact"},
        {"call_id": "k2", "customer_id": "C2", "called_at": "2026-11-02 09:05:00", "outcome": "hung up"},
        {"call_id": "k3", "customer_id": "C3", "called_at": "2026-11-02 09:10:00", "outcome": "promise"},
        {"call_id": "k4", "customer_id": "C9", "called_at": "2026-11-02 09:15:00", "outcome": "do_not_contact"},
        {"call_id": "k5", "customer_id": "C4", "called_at": "2026-11-02 09:20:00", "outcome": "promise",
         "promised_date": "2026-11-20", "promised_amount": "-3"},
    ]  # fmt: skip
    table = pa.table({c: pa.array([r.get(c) for r in rows], pa.string()) for c in cols})
    with connection(settings.warehouse) as con:
        load = load_extracts(
            con, [EntityExtract("call_outcomes", table, "api", "h-api")], source_name=SOURCE_NAME, flow_run_id=None
        )
        assert record_call_suppressions(con) == 0  # pending: not validated yet, nothing is trusted
        summary = validate_batches(
            con, load.loaded_batch_ids, gx_dir=settings.gx_dir, flow_run_id=None, data_docs=False
        )
        assert summary.success, summary.critical_failures  # row rules are warnings: the batch passes
        flagged = con.execute(
            "SELECT natural_key, reason FROM ops.quarantine WHERE stage = 'contract' ORDER BY natural_key"
        ).fetchall()
        assert record_call_suppressions(con) == 1
        suppressed = con.execute("SELECT customer_id, channel FROM ops.contact_suppressions").fetchall()
    assert {k for k, _ in flagged} == {"k2", "k3", "k4", "k5"}
    reasons = " | ".join(r for _, r in flagged)
    assert "outcome is one of reached" in reasons and "a promise has a promised_date" in reasons
    assert "promised_amount is > 0" in reasons and "refers to a loaded customers.customer_id" in reasons
    assert suppressed == [("C1", "*")]  # k4 (an unknown customer) was quarantined: no suppression from it


def test_the_message_events_suite_quarantines_unknown_events_and_keeps_the_rest(settings: Settings) -> None:
    cols = list(CONTACT_ENTITIES["message_events"])
    rows = [
        {"event_id": "e1", "reminder_key": "rk1", "customer_id": "C1", "provider": "sendgrid", "channel": "email",
         "event": "bounce", "occurred_at": "2026-11-02 09:00:00", "reason": "550 mailbox unavailable"},
        {"event_id": "e2", "customer_id": None, "provider": "twilio", "channel": "sms", "event": "stop",
         "occurred_at": "2026-11-02 09:01:00"},
        {"event_id": "e3", "customer_id": "C2", "provider": "sendgrid", "channel": "email", "event": "opened",
         "occurred_at": "2026-11-02 09:02:00"},
        {"event_id": "e4", "customer_id": "C9", "provider": "sendgrid", "channel": "fax", "event": "open",
         "occurred_at": None},
    ]  # fmt: skip
    table = pa.table({c: pa.array([r.get(c) for r in rows], pa.string()) for c in cols})
    with connection(settings.warehouse) as con:
        load = load_extracts(
            con,
            [EntityExtract("message_events", table, "webhook", "h-webhook")],
            source_name="sendgrid",
            flow_run_id=None,
        )
        summary = validate_batches(
            con, load.loaded_batch_ids, gx_dir=settings.gx_dir, flow_run_id=None, data_docs=False
        )
        flagged = con.execute(
            "SELECT natural_key, reason FROM ops.quarantine WHERE entity = 'message_events' ORDER BY natural_key"
        ).fetchall()
        assert ops.pending_batch_ids(con, contact_data=True) == []
    assert summary.success, summary.critical_failures
    assert {k for k, _ in flagged} == {"e3", "e4"}  # e2: no customer is allowed (a reference only when set)
    reasons = " | ".join(r for _, r in flagged)
    assert "event is one of processed, queued, sent, delivered" in reasons and "channel is one of email, sms" in reasons
    assert "occurred_at is not null" in reasons and "refers to a loaded customers.customer_id when set" in reasons


def test_the_watched_folder_moves_read_files_to_done_and_leaves_unreadable_ones(settings: Settings) -> None:
    calls = settings.landing / "calls"
    good = _write(calls / "lundi.csv", GOOD_AND_BAD)
    broken = _write(calls / "notes.csv", "client;commentaire\nC1;rappeler\n")
    _write(calls / "done" / "lundi.csv", "customer_id;called_at;outcome\nC1;2026-10-01 10:00;reached\n")
    assert watched_call_files(settings) == [good, broken]

    report = import_call_outcomes(settings, watched_call_files(settings), archive=True)

    by_name = {f.path.name: f for f in report.files}
    assert by_name["notes.csv"].status == "unreadable" and "names none of the columns" in by_name["notes.csv"].error
    assert by_name["notes.csv"].archived_to is None and broken.exists()
    moved = by_name["lundi.csv"].archived_to
    assert moved is not None and moved.parent == calls / "done" and moved.name != "lundi.csv"  # name taken
    assert not good.exists() and moved.read_text() == GOOD_AND_BAD
    assert watched_call_files(settings) == [broken]
    assert "notes.csv" in report.as_markdown() and "unreadable" in report.as_markdown()


# --- the command line --------------------------------------------------------------------------------------------

_HOLDER = """
import sys
from datetime import date
from pathlib import Path
from relance.runs import daily_run_lock
with daily_run_lock(Path(sys.argv[1]), as_of_date=date(2026, 11, 30), what="relance run daily"):
    print("held", flush=True)
    sys.stdin.read()
"""


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RELANCE_", "MLFLOW_"))}
    env |= {"RELANCE_DATA_DIR": str(settings.data), "COLUMNS": "250"}
    code = "from relance.calls_cli import calls_app; calls_app()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=settings.data.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_calls_import_prints_the_quarantined_rows_and_exits_1_then_2_for_an_unreadable_file(
    settings: Settings,
) -> None:
    path = _write(settings.data / "in" / "appels.csv", GOOD_AND_BAD)
    broken = _write(settings.data / "in" / "broken.csv", "customer_id;outcome\nC1;reached\n")

    run = _cli(settings, "import", str(path))

    assert run.returncode == 1, run.stdout + run.stderr
    out = run.stdout
    assert "appels.csv" in out and "rows quarantined" in out
    assert any("5" in line and "promised_date" in line and "needs the date" in line for line in out.splitlines())
    assert any("6" in line and "customer_id" in line and "'C9'" in line for line in out.splitlines())
    assert "2 contact suppression(s) written" in out
    assert len(_state(settings)["raw"]) == 3

    run = _cli(settings, "import", str(path), str(broken))

    assert run.returncode == 2, run.stdout + run.stderr
    assert "already imported" in run.stdout or "rows quarantined" in run.stdout
    assert "missing column(s) called_at" in run.stdout
    assert len(_state(settings)["raw"]) == 3


def test_calls_import_refuses_while_a_daily_run_holds_the_lock(settings: Settings) -> None:
    path = _write(settings.data / "in" / "appels.csv", GOOD_AND_BAD)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(settings.data)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        run = _cli(settings, "import", str(path))
    finally:
        holder.kill()
        holder.wait()
    assert run.returncode == 3, run.stdout + run.stderr
    assert "refused" in run.stdout and "relance run daily" in run.stdout
    assert _state(settings)["raw"] == []


def test_calls_template_prints_the_header(settings: Settings) -> None:
    run = _cli(settings, "template", "--separator", ",")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "reminder_key,customer_id,called_at,outcome,promised_date,promised_amount,collector,note,call_id"
    ]
