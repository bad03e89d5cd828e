"""A crash between the provider call and the ledger update, then a rerun: exactly once, for every channel.

Per channel, a real delivery runs in a child process against the real transport (SendGrid and Twilio through their
spec-validating stand-ins on 127.0.0.1, letters and the call list through the outboxes). Right after the transport
returned for the middle message -- the provider has it, the ledger does not know yet -- the child tells the parent
through a file and waits; the parent SIGKILLs it. A rerun in the parent then sends the rest: the provider (or the
outbox) saw every message exactly once, the killed one is left 'sending' and reported by age, never resent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from relance.channels import make_transport_for
from relance.delivery import deliver
from relance.ops import PLAN_COLUMNS
from relance.send_ledger import SendLedger
from relance.tabular_output import read_csv_records
from relance.warehouse import ensure_schemas
from tests.standins.sendgrid import SendGridStandIn, running_sendgrid_standin
from tests.standins.twilio import TwilioStandIn, running_twilio_standin

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
AS_OF = date(2026, 3, 31)
SENDER = "Service recouvrement"
SMS_FROM = "+33639980000"
VICTIM = 1  # the middle one of three: one before it is sent, one after it is not yet tried

#: The child: deliver the plan through the channel's real transport; after the transport returned for the victim,
#: say so and wait to be killed (between the provider call and ``ledger.sent``).
CHILD = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path

    import duckdb, pandas as pd

    from relance.delivery import deliver
    from relance.send_ledger import SendLedger
    from relance.warehouse import ensure_schemas
    from tests.integration.test_crash_rerun import real_transport

    args = json.loads(sys.argv[1])
    transport = real_transport(args["channel"], args["provider"], Path(args["outbox"]))
    ready = Path(args["ready"])

    class DiesAfterTheProvider:
        def send(self, message, key):
            result = transport.send(message, key)  # the provider (or the outbox) has the message now
            if key == args["victim"]:
                tmp = ready.with_suffix(".tmp")
                tmp.write_text(json.dumps({"pid": os.getpid(), "id": result.provider_message_id}))
                tmp.rename(ready)
                time.sleep(300)  # the parent kills us here, before deliver() records the outcome
            return result

    con = duckdb.connect(args["warehouse"])
    ensure_schemas(con)
    with SendLedger(args["ledger"]) as ledger:
        deliver(con, pd.read_pickle(args["plan"]), ledger=ledger, transport_for=lambda channel: DiesAfterTheProvider(),
                lineage={}, flow_run_id="killed-run", sender_email="relances@example.com", sender_name="S",
                backoff_seconds=0)
    sys.exit(3)  # never reached: the victim is in the plan
    """
)


def real_transport(channel: str, provider: dict[str, Any], outbox: Path) -> Any:
    """The transport a run uses for ``channel``; ``provider`` says where the stand-in is (email, sms)."""
    if channel == "email":
        from relance.channels import SendGridTransport

        return SendGridTransport(provider["api_key"], provider["url"], timeout=10)
    if channel == "sms":
        from relance.channels import TwilioTransport

        return TwilioTransport(
            provider["account_sid"], provider["auth_token"], from_number=SMS_FROM, host=provider["url"], timeout=10
        )
    return make_transport_for(outbox_dir=outbox, as_of_date=AS_OF, sender_name=SENDER)(channel)


def _plan(channel: str) -> pd.DataFrame:
    rows = []
    for i in range(1, 4):
        recipient = {
            "email": f"client{i}@example.org",
            "sms": f"+3363998001{i}",
            "call": f"+3319900000{i}",
            "letter": f"Client {i}",
        }[channel]
        rows.append(
            {
                "reminder_key": f"{channel}-{i}".ljust(64, "0"),
                "invoice_id": f"F-{i}",
                "customer_id": f"C-{i}",
                "as_of_date": pd.Timestamp(AS_OF),
                "step": "overdue_21",
                "channel": channel,
                "tone": "firm",
                "p_late": 0.5,
                "open_amount": 1000.0 + i,
                "currency": "EUR",
                "recipient": recipient,
                "model_version": "7",
                "model_run_id": "run-7",
                "customer_name": f"Client {i}",
                "customer_type": "B2B" if channel == "call" else "B2C",
                "phone": f"+3319900000{i}",
                "due_date": pd.Timestamp(AS_OF - timedelta(days=21)),
                "days_overdue": 21,
                "language": "fr",
            }
        )
    frame = pd.DataFrame(rows)
    assert set(PLAN_COLUMNS) <= set(frame.columns)
    return frame


# --- how many times each channel's provider (or outbox) saw each message ------------------------------------


def _seen_by_sendgrid(sg: SendGridStandIn, plan: pd.DataFrame, outbox: Path) -> list[int]:
    return [sg.received(k) for k in plan["reminder_key"]]


def _seen_by_twilio(tw: TwilioStandIn, plan: pd.DataFrame, outbox: Path) -> list[int]:
    return [sum(1 for m in tw.messages if m.to == r) for r in plan["recipient"]]


def _letters_written(_: Any, plan: pd.DataFrame, outbox: Path) -> list[int]:
    return [len(list((outbox / "letter").glob(f"{k}.*"))) for k in plan["reminder_key"]]


def _calls_listed(_: Any, plan: pd.DataFrame, outbox: Path) -> list[int]:
    paths = list((outbox / "calls").glob("*.csv"))
    keys = [r["reminder_key"] for p in paths for r in read_csv_records(p)]
    return [keys.count(k) for k in plan["reminder_key"]]


def _outbox_files(outbox: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in outbox.rglob("*") if p.is_file()}


@pytest.fixture
def sendgrid() -> Iterator[tuple[dict[str, Any], SendGridStandIn]]:
    with running_sendgrid_standin() as sg:
        yield {"api_key": sg.api_key, "url": sg.url}, sg


@pytest.fixture
def twilio() -> Iterator[tuple[dict[str, Any], TwilioStandIn]]:
    with running_twilio_standin() as tw:
        yield {"account_sid": tw.account_sid, "auth_token": tw.auth_token, "url": tw.url}, tw


@pytest.fixture
def outboxes() -> Iterator[tuple[dict[str, Any], None]]:
    yield {}, None


CHANNELS: dict[str, tuple[str, Callable[..., list[int]]]] = {
    "email": ("sendgrid", _seen_by_sendgrid),
    "sms": ("twilio", _seen_by_twilio),
    "letter": ("outboxes", _letters_written),
    "call": ("outboxes", _calls_listed),
}


def _run_child_until_killed(args: dict[str, Any], ready: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(args)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            if child.poll() is not None:
                pytest.fail(f"the child ended ({child.returncode}) before the victim's send:\n{child.stderr.read()}")
            if time.monotonic() > deadline:
                pytest.fail("the child never reached the victim's send")
            time.sleep(0.02)
        assert json.loads(ready.read_text())["pid"] == child.pid
        os.kill(child.pid, signal.SIGKILL)  # after the provider call, before the ledger update
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()


@pytest.mark.parametrize("channel", list(CHANNELS))
def test_a_crash_between_the_provider_call_and_the_ledger_then_a_rerun_sends_each_message_once(
    channel: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    fixture, seen = CHANNELS[channel]
    provider, standin = request.getfixturevalue(fixture)
    plan = _plan(channel)
    keys = plan["reminder_key"].tolist()
    victim = keys[VICTIM]
    outbox, warehouse, ledger_path, ready = (
        tmp_path / "outbox",
        tmp_path / "warehouse.duckdb",
        tmp_path / "sends.sqlite",
        tmp_path / "ready",
    )
    plan.to_pickle(tmp_path / "plan.pkl")

    _run_child_until_killed(
        {
            "channel": channel,
            "provider": provider,
            "outbox": str(outbox),
            "warehouse": str(warehouse),
            "ledger": str(ledger_path),
            "plan": str(tmp_path / "plan.pkl"),
            "victim": victim,
            "ready": str(ready),
        },
        ready,
    )

    # what the crash left: the provider has the first two, the ledger knows only the first
    assert seen(standin, plan, outbox) == [1, 1, 0]
    with SendLedger(ledger_path) as ledger:
        assert {k: s for k, (s, _) in ledger.statuses(keys).items()} == {keys[0]: "sent", victim: "sending"}
    victim_files = {p: t for p, t in _outbox_files(outbox).items() if p.name.startswith(victim)}

    # the rerun, with the same real transport: the rest goes, the killed one is not resent
    transport = real_transport(channel, provider, outbox)
    with duckdb.connect(str(warehouse)) as con, SendLedger(ledger_path) as ledger:
        ensure_schemas(con)
        report = deliver(
            con,
            plan,
            ledger=ledger,
            transport_for=lambda _channel: transport,
            lineage={},
            flow_run_id="rerun",
            sender_email="relances@example.com",
            sender_name=SENDER,
            backoff_seconds=0,
            sending_alert_after=timedelta(0),
            now=lambda: datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=45),  # the ledger's naive UTC
        )
        assert (report.sent, report.skipped_already_sent, report.stuck_sending) == (1, 1, 1)
        assert [r.reminder_key for r in report.sending_overdue] == [victim]
        assert report.sending_overdue[0].age >= timedelta(minutes=44), "reported by age"
        assert ledger.statuses(keys) == {keys[0]: ("sent", 1), victim: ("sending", 0), keys[2]: ("sent", 1)}

        # and a third run changes nothing
        again = deliver(
            con,
            plan,
            ledger=ledger,
            transport_for=lambda _channel: transport,
            lineage={},
            flow_run_id="third",
            sender_email="relances@example.com",
            sender_name=SENDER,
        )
        assert (again.sent, again.skipped_already_sent, again.stuck_sending) == (0, 2, 1)

    assert seen(standin, plan, outbox) == [1, 1, 1], "each message reached the provider exactly once"
    assert {p: t for p, t in _outbox_files(outbox).items() if p.name.startswith(victim)} == victim_files
