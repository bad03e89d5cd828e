"""relance.operations: resumable backfills, failure notices sent once, and the pieces of `relance status`."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from relance import operations, ops
from relance.channels import OutboxTransport
from relance.operations import BackfillProgress, FailedRun, run_backfill, send_failure_notices
from relance.send_ledger import SendLedger
from relance.settings import RecipientGroup

# --- backfill ---------------------------------------------------------------------------------------------------

D1, D2, D3 = date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3)


class Runner:
    """A stand-in for the daily pipeline: records each date it is asked to run, fails on the dates given."""

    def __init__(self, fail_on: set[date] = frozenset()) -> None:
        self.fail_on = set(fail_on)
        self.calls: list[date] = []

    def __call__(self, day: date) -> dict[str, object]:
        self.calls.append(day)
        if day in self.fail_on:
            raise RuntimeError(f"dbt build failed for {day}")
        return {"flow_run_id": f"run-{day}", "reminders_sent": 0}


def test_backfill_runs_each_date_once_in_order_and_resumes_after_a_failure(tmp_path: Path) -> None:
    path = tmp_path / "backfill.json"
    first = Runner(fail_on={D2})
    results = run_backfill(BackfillProgress(path), [D1, D2, D3], first)
    assert first.calls == [D1, D2]  # the failure stops the backfill: D3 builds on D2
    assert [(r.as_of_date, r.outcome) for r in results] == [(D1, "done"), (D2, "failed")]
    assert "dbt build failed for 2026-10-02" in results[1].details["error"]

    # the same command again, in a new process (a new progress object reading the file): D1 is not run again
    second = Runner()
    results = run_backfill(BackfillProgress(path), [D1, D2, D3], second)
    assert second.calls == [D2, D3]
    assert [(r.as_of_date, r.outcome) for r in results] == [(D1, "skipped"), (D2, "done"), (D3, "done")]
    assert results[0].details["flow_run_id"] == "run-2026-10-01"  # what the first run recorded

    # all done: nothing runs; --redo runs everything again
    third = Runner()
    assert {r.outcome for r in run_backfill(BackfillProgress(path), [D1, D2, D3], third)} == {"skipped"}
    assert third.calls == []
    run_backfill(BackfillProgress(path), [D1, D2, D3], third, redo=True)
    assert third.calls == [D1, D2, D3]
    saved = json.loads(path.read_text())["dates"]
    assert sorted(saved) == ["2026-10-01", "2026-10-02", "2026-10-03"]
    assert {e["status"] for e in saved.values()} == {"done"}


def test_an_interrupted_date_is_not_marked_done(tmp_path: Path) -> None:
    path = tmp_path / "backfill.json"

    def interrupted(day: date) -> dict[str, object]:
        if day == D2:
            raise KeyboardInterrupt
        return {}

    with pytest.raises(KeyboardInterrupt):
        run_backfill(BackfillProgress(path), [D1, D2, D3], interrupted)
    progress = BackfillProgress(path)
    assert progress.is_done(D1) and not progress.is_done(D2) and progress.entry(D2) is None


def test_backfill_dates() -> None:
    assert operations.backfill_dates(D1, D3) == [D1, D2, D3]
    # 2026-10-02 is a Friday: the weekend is left out with weekdays_only
    assert operations.backfill_dates(D2, date(2026, 10, 5), weekdays_only=True) == [D2, date(2026, 10, 5)]
    with pytest.raises(ValueError, match="before"):
        operations.backfill_dates(D3, D1)


def test_an_unreadable_progress_file_is_an_error_not_a_fresh_start(tmp_path: Path) -> None:
    path = tmp_path / "backfill.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="unreadable"):
        BackfillProgress(path)
    assert operations.backfill_summary(tmp_path)["error"]


# --- failure notices --------------------------------------------------------------------------------------------

RUN = FailedRun(
    flow_name="daily-collections",
    flow_run_id="0b9e6c1e-0000-4000-8000-000000000001",
    flow_run_name="brave-otter",
    state_name="Failed",
    message="Flow run encountered an exception: StopRun: batch b1 failed its contract",
    link="http://127.0.0.1:4200/runs/flow-run/0b9e6c1e-0000-4000-8000-000000000001",
    deployment="daily",
    started_at=datetime(2026, 11, 30, 5, 0, tzinfo=UTC),
)
GROUPS = {
    "data": RecipientGroup(emails=["data@example.com"], language="en", receives=["failures"]),
    "finance": RecipientGroup(emails=["dsi@example.fr", "daf@example.fr"], language="fr", receives=["failures"]),
}


def _notify(ledger: SendLedger, transport: object) -> list[str]:
    return send_failure_notices(
        RUN, groups=GROUPS, ledger=ledger, transport=transport, sender_email="relance@example.com",
        sender_name="relance", now=datetime(2026, 11, 30, 5, 1),
    )  # fmt: skip


def test_each_group_gets_one_notice_per_failed_run_in_its_language(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    with SendLedger(tmp_path / "notifications.sqlite") as ledger:
        keys = _notify(ledger, OutboxTransport(outbox))
        again = _notify(ledger, OutboxTransport(outbox))  # the hook called twice (a crash after a failure)
        statuses = ledger.statuses(keys)
    assert again == []
    assert keys == [f"flow-failure-{RUN.flow_run_id}-data", f"flow-failure-{RUN.flow_run_id}-finance"]
    assert {k: s for k, (s, _) in statuses.items()} == dict.fromkeys(keys, "sent")
    files = sorted((outbox / "email").glob("*.json"))
    assert [f.stem for f in files] == keys
    english, french = (json.loads(f.read_text()) for f in files)
    assert english["subject"] == "relance: scheduled run failed: daily-collections"
    assert french["subject"] == "relance : échec de l'exécution planifiée daily-collections"
    assert [t["email"] for t in french["personalizations"][0]["to"]] == ["dsi@example.fr", "daf@example.fr"]
    text = english["content"][0]["value"]
    assert RUN.link in text and "batch b1 failed its contract" in text and "Deployment: daily" in text
    assert english["personalizations"][0]["custom_args"]["flow_run_id"] == RUN.flow_run_id


class Refusing:
    def __init__(self) -> None:
        self.calls = 0

    def send(self, message: object, key: str) -> object:
        self.calls += 1
        raise ConnectionError("provider down")


def test_a_notice_that_could_not_go_out_goes_out_on_the_next_call(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    refusing = Refusing()
    with SendLedger(tmp_path / "notifications.sqlite") as ledger:
        with pytest.raises(ConnectionError):
            _notify(ledger, refusing)
        key = f"flow-failure-{RUN.flow_run_id}-data"
        assert ledger.statuses([key])[key][0] == "failed"
        assert len(_notify(ledger, OutboxTransport(outbox))) == 2
    assert refusing.calls == 1


def test_a_notice_needs_a_recipient() -> None:
    with pytest.raises(ValueError, match="recipient"):
        operations.build_failure_mail(RUN, language="en", sender_email="a@b.c", sender_name="x", recipients=[], key="k")


# --- status pieces ----------------------------------------------------------------------------------------------

NOW = datetime(2026, 11, 30, 12, 0)


def _task(key: str, customer: str, sent_at: datetime, channel: str = "call", status: str = "sent"):
    class Task:
        pass

    task = Task()
    task.reminder_key, task.customer_id, task.channel, task.status = key, customer, channel, status
    task.sent_at = task.updated_at = sent_at.isoformat(sep=" ")
    return task


def test_pending_calls_are_recent_call_tasks_no_outcome_answers() -> None:
    tasks = [
        _task("k-answered", "C1", NOW - timedelta(days=1)),  # an outcome names its key
        _task("k-called", "C2", NOW - timedelta(days=2)),  # the customer was called since, without the key
        _task("k-pending", "C3", NOW - timedelta(days=3)),
        _task("k-called-before", "C4", NOW - timedelta(days=1)),  # the only call came before the task
        _task("k-old", "C5", NOW - timedelta(days=30)),  # beyond the window
        _task("k-email", "C6", NOW - timedelta(days=1), channel="email"),
        _task("k-doubt", "C7", NOW - timedelta(days=1), status="sending"),
    ]
    outcomes = pd.DataFrame(
        {
            "reminder_key": ["k-answered", None, None],
            "customer_id": ["C1", "C2", "C4"],
            "called_at": [NOW, NOW - timedelta(days=1), NOW - timedelta(days=5)],
        }
    )
    result = operations.pending_calls(tasks, outcomes, now=NOW)
    assert [t["reminder_key"] for t in result["tasks"]] == ["k-pending", "k-called-before"]
    assert result["pending"] == 2 and result["oldest_listed_at"] == NOW - timedelta(days=3)
    assert operations.pending_calls(tasks, outcomes.iloc[0:0], now=NOW)["pending"] == 4  # the call tasks in the window


def _batch(
    con: duckdb.DuckDBPyConnection,
    batch_id: str,
    source: str,
    status: str,
    loaded_at: datetime,
    entity: str = "invoices",
) -> None:
    ops.record_batch(
        con,
        ops.BatchRecord(
            batch_id=batch_id, entity=entity, source_file=f"{batch_id}.csv", file_hash=batch_id, rows_read=1,
            rows_loaded=1 if status == "loaded" else 0, rows_unchanged=0, rows_quarantined=0, status=status,
            source_name=source, loaded_at=loaded_at,
        ),
    )  # fmt: skip


def test_source_freshness_is_the_last_new_data_of_each_source() -> None:
    with duckdb.connect() as con:
        ops.ensure_ops(con)
        _batch(con, "b1", "erp", "loaded", NOW - timedelta(hours=60))
        _batch(con, "b2", "erp", "unchanged", NOW - timedelta(hours=2))  # read again, nothing new
        _batch(con, "b3", "bank", "loaded", NOW - timedelta(hours=3))
        _batch(con, "b4", "calls", "loaded", NOW - timedelta(hours=300), entity="call_outcomes")  # not a ledger
        rows = {r["source"]: r for r in operations.source_freshness(con, now=NOW, max_age_hours=36)}
        blocking = operations.blocking_batch_rows(con)
    assert rows["erp"]["age_hours"] == 60.0 and rows["erp"]["fresh"] is False
    assert rows["erp"]["last_read_at"] == NOW - timedelta(hours=2)
    assert rows["bank"]["fresh"] is True
    assert set(rows) == {"erp", "bank"}
    # loaded batches wait for validation: both block the daily run until validated
    assert {b["batch_id"] for b in blocking} == {"b1", "b3"}


def test_status_problems_say_what_needs_a_person() -> None:
    healthy = {
        "deployments": [{"name": "daily", "last_run": {"state_type": "COMPLETED"}}],
        "warehouse": {"sources": [{"source": "erp", "fresh": True, "age_hours": 1.0}], "claims": {}},
        "sends": {"in_doubt": 0},
        "backfill": {"failed": []},
    }
    assert operations.status_problems(healthy) == []
    sick = json.loads(json.dumps(healthy))
    sick["deployments"][0]["last_run"] = {"state_type": "FAILED", "state_name": "Failed", "link": "http://x/1"}
    sick["warehouse"]["sources"][0] |= {"fresh": False, "age_hours": 80.0}
    sick["warehouse"]["claims"] = {"days_to_nearest": 3, "nearest_deadline": "2026-12-03"}
    sick["sends"]["in_doubt"] = 2
    sick["backfill"]["failed"] = ["2026-10-02"]
    sick["prefect"] = {"source": "http://prefect:4200/api", "error": "ConnectError: refused"}
    problems = operations.status_problems(sick)
    assert len(problems) == 6
    assert "the last daily run failed: http://x/1" in problems


def test_run_in_progress_reads_the_holder_without_taking_the_lock(tmp_path: Path) -> None:
    import socket

    assert operations.run_in_progress(tmp_path) is None  # no lock file
    lock = tmp_path / "daily.lock"
    lock.write_text("")
    assert operations.run_in_progress(tmp_path) is None  # released
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "as_of_date": "2026-11-30", "command": "x"}
    lock.write_text(json.dumps(holder))
    assert operations.run_in_progress(tmp_path)["command"] == "x"
    dead = holder | {"pid": 2**22 + 12345}  # above the default pid_max: no such process
    lock.write_text(json.dumps(dead))
    assert operations.run_in_progress(tmp_path) is None  # a crashed run's leftover text


def test_jsonable() -> None:
    value = {"d": date(2026, 1, 2), "t": datetime(2026, 1, 2, 3, 4), "p": Path("/x"), "n": [1, None], "run": RUN}
    out = operations.jsonable(value)
    assert out["d"] == "2026-01-02" and out["t"] == "2026-01-02T03:04:00" and out["p"] == "/x"
    assert out["run"]["flow_run_id"] == RUN.flow_run_id
    json.dumps(out)
