"""The durable send ledger (relance.send_ledger): a real SQLite file beside a real DuckDB warehouse.

Each test starts from a way a send could be forgotten or doubled: the warehouse deleted by ``relance demo --fresh``
or restored from an older copy, an upgrade from a version whose ledger was ``ops.reminder_sends``, two processes
claiming the same reminder, a run killed between the claim and the outcome, an operator settling a stuck row.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from relance.channels import SendResult, make_transport_for
from relance.delivery import handled_reminder_keys, record_planned
from relance.reminders.policy import plan_reminders
from relance.send_ledger import SCHEMA_VERSION, LedgerError, SendLedger, import_warehouse_sends
from relance.settings import Settings
from relance.warehouse import ensure_schemas
from tests.integration.test_email_delivery import AS_OF, LINEAGE, _deliver, _sends
from tests.integration.test_email_delivery import _worklist as email_worklist

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


def _worklist() -> pd.DataFrame:
    """The delivery tests' six reminders, with mixed-case addresses: the ledger hashes a recipient lower-cased."""
    worklist = email_worklist()
    worklist["email"] = worklist["customer_id"].str.replace("C-", "Client") + "@Example.com"
    return worklist


@pytest.fixture
def planned() -> pd.DataFrame:
    plan = plan_reminders(_worklist(), as_of_date=AS_OF, max_reminders=100)
    assert len(plan) == 6
    return plan


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = Settings(data_dir=tmp_path / "data")
    s.ensure_dirs()
    return s


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SendLedger]:
    with SendLedger(tmp_path / "ledger" / "sends.sqlite") as led:
        yield led


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect()
    ensure_schemas(c)
    yield c
    c.close()


class Recording:
    """A transport that records what it was asked to send (a stand-in for a provider, not for our code)."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, message, key: str) -> SendResult:
        self.sent.append(key)
        return SendResult(provider_message_id=f"msg-{key[:8]}", outbox_path=None)


def _outbox_router(settings: Settings):
    return make_transport_for(outbox_dir=settings.outbox, as_of_date=AS_OF, sender_name="Service recouvrement")


def _delete_owned_paths(settings: Settings) -> None:
    """What ``relance demo --fresh`` does to the data directory."""
    for path in settings.owned_paths():
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _legacy_sends(con, rows: list[tuple]) -> None:
    """A warehouse written by an earlier relance, whose send ledger was ops.reminder_sends. Inserted with SQL on
    purpose: it stands for a file an older version wrote, not for anything this version does."""
    con.executemany(
        "INSERT INTO ops.reminder_sends (reminder_key, channel, status, provider_message_id, outbox_path, attempts, "
        "last_error, sent_at, flow_run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


# --------------------------------------------------------------------------------------- the reproduction


@pytest.mark.parametrize("loss", ["demo --fresh deletes owned_paths()", "an older warehouse is restored"])
def test_losing_the_warehouse_does_not_send_again(settings: Settings, planned: pd.DataFrame, loss: str) -> None:
    keys = set(planned["reminder_key"])
    before_delivery = settings.warehouse.with_name("before.duckdb.bak")
    with duckdb.connect(str(settings.warehouse)) as con:
        ensure_schemas(con)
    shutil.copy2(settings.warehouse, before_delivery)  # a backup taken before anything was sent

    with duckdb.connect(str(settings.warehouse)) as con, SendLedger(settings.send_ledger) as ledger:
        first = _deliver(con, ledger, planned, _outbox_router(settings))
    assert (first.sent, first.failed) == (6, 0)
    assert len(list(settings.outbox.rglob("*.json"))) == 3

    if loss.startswith("demo"):
        _delete_owned_paths(settings)
        assert not settings.warehouse.exists() and not settings.outbox.exists()
        settings.ensure_dirs()
    else:
        shutil.copy2(before_delivery, settings.warehouse)
    assert not any(settings.send_ledger.is_relative_to(p) for p in settings.owned_paths())
    assert settings.send_ledger.exists(), "the ledger survives what happened to the warehouse"
    outbox_before = {p: p.stat().st_mtime_ns for p in settings.outbox.rglob("*") if p.is_file()}

    with duckdb.connect(str(settings.warehouse)) as con, SendLedger(settings.send_ledger) as ledger:
        ensure_schemas(con)
        assert con.sql("SELECT count(*) FROM ops.reminder_sends").fetchone()[0] == 0, "the warehouse forgot"
        # the planner leaves them out (they take no place under the cap) ...
        assert handled_reminder_keys(ledger) == keys
        replanned = plan_reminders(_worklist(), as_of_date=AS_OF, max_reminders=100, exclude_keys=keys)
        assert replanned.empty
        # ... and the same plan delivered again sends nothing
        again = _deliver(con, ledger, planned, _outbox_router(settings))
        assert (again.sent, again.skipped_already_sent, again.failed) == (0, 6, 0)
        # the warehouse copy is back, for SQL readers
        sends = _sends(con)
        assert set(sends.index) == keys and (sends["status"] == "sent").all()
        # and the ledger alone says what went to whom
        record = ledger.get(planned["reminder_key"].iloc[0])
        row = planned.iloc[0]
        assert (record.invoice_id, record.customer_id, record.step) == (
            row["invoice_id"],
            row["customer_id"],
            row["step"],
        )
        assert record.recipient_sha256 == hashlib.sha256(row["recipient"].strip().lower().encode()).hexdigest()
        assert record.status == "sent" and record.flow_run_id == "flow-1" and record.sent_at
    assert {p: p.stat().st_mtime_ns for p in settings.outbox.rglob("*") if p.is_file()} == outbox_before, (
        "no email, letter or call-list row was written again"
    )


def test_the_ledger_file_is_versioned_wal_and_refuses_what_it_does_not_know(tmp_path: Path) -> None:
    path = tmp_path / "sends.sqlite"
    with SendLedger(path) as ledger:
        assert ledger.schema_version == SCHEMA_VERSION
        assert ledger._con.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(LedgerError, match="newer than this relance"):
        SendLedger(path)

    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as c:
        c.execute("CREATE TABLE t (x)")
    with pytest.raises(LedgerError, match="not a relance send ledger"):
        SendLedger(other)


# --------------------------------------------------------------------------------------- upgrading


def test_an_earlier_versions_sends_are_imported_and_not_sent_again(con, ledger, planned) -> None:
    k = planned["reminder_key"].tolist()
    record_planned(con, planned, lineage=LINEAGE, flow_run_id="old-run")
    _legacy_sends(
        con,
        [
            (k[0], "email", "sent", "sg-1", None, 1, None, "2026-03-30 09:00:00", "old-run"),
            (k[1], "email", "sending", None, None, 0, None, None, "old-run"),
            (k[2], "email", "failed", None, None, 1, "HTTP 500", None, "old-run"),
        ],
    )
    assert handled_reminder_keys(ledger) == set()
    assert import_warehouse_sends(ledger, con) == 3
    assert handled_reminder_keys(ledger) == {k[0], k[1]}
    assert import_warehouse_sends(ledger, con) == 0, "idempotent"

    imported = ledger.get(k[0])
    assert (imported.status, imported.provider_message_id, imported.origin) == ("sent", "sg-1", "warehouse")
    assert imported.sent_at.startswith("2026-03-30 09:00:00")
    assert imported.invoice_id == planned["invoice_id"].iloc[0], "lineage taken from ops.reminders_planned"
    assert [e["action"] for e in ledger.events(k[0])] == ["import"]

    transport = Recording()
    report = _deliver(con, ledger, planned, lambda _channel: transport)
    assert (report.sent, report.skipped_already_sent, report.stuck_sending) == (4, 1, 1)
    assert sorted(transport.sent) == sorted([k[2], *k[3:]])
    assert ledger.get(k[2]).attempts == 2


def test_the_ledger_wins_over_the_warehouse_but_sent_is_final(con, ledger, planned) -> None:
    k = planned["reminder_key"].tolist()
    ledger.claim(k[0], "email")
    ledger.failed(k[0], "email", "HTTP 500", 1)  # a ledger restored from a backup older than this send ...
    ledger.claim(k[1], "email")
    ledger.sent(k[1], provider_message_id="sg-new", outbox_path=None, attempts=1, at=pd.Timestamp("2026-03-31"))
    ledger.claim(k[2], "email")
    ledger.reconcile(k[2], "failed", note="not in the SendGrid feed")
    _legacy_sends(
        con,
        [
            (k[0], "email", "sent", "sg-old", None, 2, None, "2026-03-30 09:00:00", "r"),  # ... the warehouse saw it go
            (k[1], "email", "failed", None, None, 1, "HTTP 500", None, "r"),
            (k[2], "email", "sending", None, None, 0, None, None, "r"),  # a copy older than the reconciliation
        ],
    )
    assert import_warehouse_sends(ledger, con) == 1
    assert ledger.statuses(k[:3]) == {k[0]: ("sent", 2), k[1]: ("sent", 1), k[2]: ("failed", 0)}
    assert ledger.get(k[0]).provider_message_id == "sg-old"
    assert ledger.get(k[1]).provider_message_id == "sg-new"


# --------------------------------------------------------------------------------------- concurrency


def test_two_connections_never_both_claim_one_key(tmp_path: Path) -> None:
    path = tmp_path / "sends.sqlite"
    with SendLedger(path) as a, SendLedger(path) as b:
        assert a.claim("k1", "email", flow_run_id="run-a") == 0
        assert b.claim("k1", "email", flow_run_id="run-b") is None
        assert b.statuses(["k1"]) == {"k1": ("sending", 0)}
        assert b.get("k1").flow_run_id == "run-a"

        # while another process holds the write lock, a claim waits for it and then gives up: it never writes
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        with SendLedger(path, timeout=0.05) as impatient, pytest.raises(sqlite3.OperationalError, match="locked"):
            impatient.claim("k2", "email")
        blocker.execute("ROLLBACK")
        blocker.close()
        assert a.statuses(["k2"]) == {}
        assert b.claim("k2", "email") == 0
        assert a.claim("k2", "email") is None


def _claim_all(path: str, keys: list[str], barrier, out: str) -> None:
    with SendLedger(path) as ledger:
        barrier.wait()
        claimed = [k for k in keys if ledger.claim(k, "email") is not None]
    Path(out).write_text(json.dumps(claimed))


def test_two_processes_racing_for_the_same_keys_claim_each_once(tmp_path: Path) -> None:
    path = tmp_path / "sends.sqlite"
    SendLedger(path).close()
    keys = [f"key-{i:03d}" for i in range(40)]
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [
        ctx.Process(target=_claim_all, args=(str(path), order, barrier, str(tmp_path / f"{n}.json")))
        for n, order in enumerate([keys, keys[::-1]])
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    first, second = (set(json.loads((tmp_path / f"{n}.json").read_text())) for n in range(2))
    assert first.isdisjoint(second)
    assert first | second == set(keys)
    with SendLedger(path) as ledger:
        assert len(ledger.records("sending")) == len(keys)


# --------------------------------------------------------------------------------------- crashes


KILLED_RUN = textwrap.dedent(
    """
    import os, signal, sys
    import duckdb, pandas as pd
    from relance.channels import SendResult
    from relance.delivery import deliver
    from relance.send_ledger import SendLedger
    from relance.warehouse import ensure_schemas

    warehouse, ledger_path, plan_path, victim = sys.argv[1:]

    class DiesOnTheVictim:
        def send(self, message, key):
            if key == victim:  # the provider has the message; the process dies before the outcome is written
                os.kill(os.getpid(), signal.SIGKILL)
            return SendResult(provider_message_id="msg-" + key[:8], outbox_path=None)

    con = duckdb.connect(warehouse)
    ensure_schemas(con)
    with SendLedger(ledger_path) as ledger:
        deliver(con, pd.read_pickle(plan_path), ledger=ledger, transport_for=lambda channel: DiesOnTheVictim(),
                lineage={}, flow_run_id="killed", sender_email="r@example.com", sender_name="S", backoff_seconds=0)
    """
)


def test_a_run_killed_between_claim_and_outcome_leaves_sending_and_is_not_resent(tmp_path, planned) -> None:
    warehouse, ledger_path, plan_path = tmp_path / "w.duckdb", tmp_path / "sends.sqlite", tmp_path / "plan.pkl"
    planned.to_pickle(plan_path)
    keys = planned["reminder_key"].tolist()
    victim = keys[2]
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(warehouse), str(ledger_path), str(plan_path), victim],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -9, proc.stderr[-3000:]

    with duckdb.connect(str(warehouse)) as con, SendLedger(ledger_path) as ledger:
        statuses = ledger.statuses(keys)
        assert statuses == {keys[0]: ("sent", 1), keys[1]: ("sent", 1), victim: ("sending", 0)}
        transport = Recording()
        report = _deliver(con, ledger, planned, lambda _channel: transport)
        assert (report.sent, report.skipped_already_sent, report.stuck_sending) == (3, 2, 1)
        assert victim not in transport.sent and sorted(transport.sent) == sorted(keys[3:])
        assert [r.reminder_key for r in ledger.records("sending")] == [victim]
        assert _sends(con).loc[victim, "status"] == "sending"


def test_a_transport_that_raises_a_base_exception_leaves_a_durable_sending_row(tmp_path, con, planned) -> None:
    class Interrupted(BaseException):
        pass

    class Raises:
        def send(self, message, key):
            raise Interrupted

    path = tmp_path / "sends.sqlite"
    with SendLedger(path) as ledger, pytest.raises(Interrupted):
        _deliver(con, ledger, planned.head(1), lambda _channel: Raises())
    with SendLedger(path) as reopened:  # a new connection: the claim was committed before the transport ran
        assert reopened.statuses(planned["reminder_key"].head(1).tolist()) == {
            planned["reminder_key"].iloc[0]: ("sending", 0)
        }


# --------------------------------------------------------------------------------------- reconciliation


def test_reconcile_settles_stuck_rows_and_keeps_the_trail(con, ledger, planned) -> None:
    k = planned["reminder_key"].tolist()
    went_out, did_not, sent = k[0], k[1], k[2]
    for key in (went_out, did_not):
        assert ledger.claim(key, "email", flow_run_id="crashed") == 0
    ledger.claim(sent, "email")
    ledger.sent(sent, provider_message_id="sg-3", outbox_path=None, attempts=1, at=pd.Timestamp("2026-03-31"))

    assert ledger.reconcile(went_out, "sent", note="seen in the SendGrid activity feed", provider_message_id="sg-1")
    assert ledger.reconcile(did_not, "failed", note="not in the feed") == "sending"
    with pytest.raises(ValueError, match="final"):
        ledger.reconcile(sent, "failed")
    with pytest.raises(KeyError):
        ledger.reconcile("no-such-key", "sent")
    with pytest.raises(ValueError):
        ledger.reconcile(did_not, "sending")  # type: ignore[arg-type]

    assert ledger.get(went_out).provider_message_id == "sg-1" and ledger.get(went_out).sent_at
    assert "not in the feed" in ledger.get(did_not).last_error
    assert [(e["action"], e["from_status"], e["to_status"]) for e in ledger.events(did_not)] == [
        ("reconcile", "sending", "failed")
    ]

    transport = Recording()
    report = _deliver(con, ledger, planned, lambda _channel: transport)
    assert did_not in transport.sent and went_out not in transport.sent and sent not in transport.sent
    assert (report.sent, report.skipped_already_sent, report.stuck_sending) == (4, 2, 0)
    assert ledger.get(did_not).status == "sent"
    with pytest.raises(ValueError, match="final"):
        ledger.reconcile(did_not, "failed")


# --------------------------------------------------------------------------------------- unknown outcomes, refusals


def test_a_version_1_ledger_is_migrated_with_its_rows_and_learns_abandoned(tmp_path: Path) -> None:
    from relance.send_ledger import MIGRATIONS

    path = tmp_path / "v1.sqlite"
    raw = sqlite3.connect(path, isolation_level=None)
    for statement in MIGRATIONS[0]:
        raw.execute(statement)
    raw.execute("PRAGMA user_version = 1")
    raw.execute(
        "INSERT INTO reminder_sends (reminder_key, channel, status, attempts, claimed_at, updated_at) "
        "VALUES ('old-sending', 'email', 'sending', 0, '2026-03-30 08:00:00', '2026-03-30 08:00:00'), "
        "('old-sent', 'email', 'sent', 1, NULL, '2026-03-30 08:00:00')"
    )
    with pytest.raises(sqlite3.IntegrityError):
        raw.execute("UPDATE reminder_sends SET status = 'abandoned' WHERE reminder_key = 'old-sent'")
    raw.close()

    with SendLedger(path) as ledger:
        assert ledger.schema_version == SCHEMA_VERSION == 2
        assert ledger.statuses(["old-sending", "old-sent"]) == {"old-sending": ("sending", 0), "old-sent": ("sent", 1)}
        assert ledger.get("old-sending").rejections == 0
        ledger.claim("new", "email")
        assert ledger.rejected("new", "email", "HTTP 400", 1, give_up_after=1) == "abandoned"
        assert ledger.handled_keys() == {"old-sending", "old-sent", "new"}
        with pytest.raises(sqlite3.IntegrityError):  # the CHECK constraint still guards the statuses
            ledger._con.execute("UPDATE reminder_sends SET status = 'lost' WHERE reminder_key = 'new'")


def test_refusals_count_across_runs_and_a_sent_row_is_never_downgraded(ledger: SendLedger) -> None:
    ledger.claim("k", "email")
    assert ledger.rejected("k", "email", "HTTP 413", 1, give_up_after=2) == "failed"
    assert ledger.claim("k", "email") == 1, "a refused message is tried again by the next run"
    assert ledger.rejected("k", "email", "HTTP 413", 2, give_up_after=2) == "abandoned"
    assert ledger.claim("k", "email") is None, "an abandoned message is not claimed"
    assert ledger.get("k").rejections == 2 and "413" in ledger.get("k").last_error

    ledger.claim("s", "email")
    ledger.sent("s", provider_message_id="sg-1", outbox_path=None, attempts=1, at=pd.Timestamp("2026-03-31"))
    assert ledger.rejected("s", "email", "HTTP 400", 2, give_up_after=1) == "sent"
    ledger.in_doubt("s", "email", "HTTP 502", 2)
    assert ledger.get("s").status == "sent" and ledger.get("s").last_error is None

    with pytest.raises(ValueError):
        ledger.rejected("k", "email", "x", 1, give_up_after=0)


def test_a_provider_event_settles_whatever_was_not_sent(ledger: SendLedger) -> None:
    at = pd.Timestamp("2026-03-31 10:00").to_pydatetime()
    ledger.claim("doubt", "email", at=at)
    ledger.in_doubt("doubt", "email", "HTTP 504", 1, at=at)
    ledger.claim("failed", "sms", at=at)
    ledger.failed("failed", "sms", "connection refused", 3, at=at)
    ledger.claim("sent", "email", at=at)
    ledger.sent("sent", provider_message_id=None, outbox_path=None, attempts=1, at=at)

    assert ledger.settle_from_provider("doubt", provider="sendgrid", event="delivered", provider_message_id="m1") == (
        "sending"
    )
    assert ledger.settle_from_provider("failed", provider="twilio", event="delivered", provider_message_id="SM1") == (
        "failed"
    )
    assert ledger.settle_from_provider("sent", provider="sendgrid", event="processed", provider_message_id="m3") is None
    assert ledger.settle_from_provider("unknown-key", provider="sendgrid", event="processed") is None
    assert ledger.statuses(["doubt", "failed", "sent"]) == {
        "doubt": ("sent", 1),
        "failed": ("sent", 3),
        "sent": ("sent", 1),
    }
    doubt = ledger.get("doubt")
    assert (doubt.provider_message_id, doubt.last_error, doubt.sent_at) == ("m1", None, "2026-03-31 10:00:00.000000")
    assert ledger.get("sent").provider_message_id == "m3", "an id learnt later fills an empty one"
    assert ledger.events("doubt")[0]["note"] == "sendgrid delivered m1"


def test_sending_by_age_lists_what_is_waiting_oldest_first(ledger: SendLedger) -> None:
    from datetime import datetime, timedelta

    from relance.send_ledger import sending_by_age

    t0 = datetime(2026, 3, 31, 8, 0)
    ledger.claim("crashed", "letter", customer_id="C-1", invoice_id="F-1", at=t0)
    ledger.claim("doubt", "email", at=t0 + timedelta(minutes=50))
    ledger.in_doubt("doubt", "email", "HTTP 502", 1, at=t0 + timedelta(minutes=51))
    ledger.claim("young", "sms", at=t0 + timedelta(minutes=85))
    ledger.claim("done", "email", at=t0)
    ledger.sent("done", provider_message_id="x", outbox_path=None, attempts=1, at=t0)

    now = t0 + timedelta(minutes=90)
    every = sending_by_age(ledger, now)
    assert [(r.reminder_key, int(r.age.total_seconds() // 60)) for r in every] == [
        ("crashed", 90),
        ("doubt", 40),
        ("young", 5),
    ]
    overdue = sending_by_age(ledger, now, timedelta(minutes=30))
    assert [r.reminder_key for r in overdue] == ["crashed", "doubt"]
    assert overdue[0].as_row()["last_error"] == "run died before recording the outcome"
    assert "HTTP 502" in overdue[1].as_row()["last_error"] and overdue[1].as_row()["age_minutes"] == 40
    assert (overdue[0].customer_id, overdue[0].invoice_id, overdue[0].channel) == ("C-1", "F-1", "letter")
    assert sending_by_age(ledger, now.replace(tzinfo=UTC), timedelta(minutes=30)) == overdue
