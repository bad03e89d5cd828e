"""One daily run at a time per data directory: a second refuses with the holder's name; a killed holder frees it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from relance.runs import LOCK_NAME, RunInProgressError, daily_run_lock

HOLDER = """
import sys
from datetime import date
from pathlib import Path
from relance.runs import daily_run_lock
with daily_run_lock(Path(sys.argv[1]), as_of_date=date(2026, 10, 31), what="holder"):
    print("held", flush=True)
    sys.stdin.read()  # hold until killed or stdin closes
"""


def _hold(data: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(data)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"  # blocks until the lock is held
    return proc


def test_a_second_run_refuses_naming_the_first(tmp_path: Path) -> None:
    holder = _hold(tmp_path)
    try:
        with (
            pytest.raises(RunInProgressError, match=rf"pid {holder.pid}\b.*as_of_date 2026-10-31") as err,
            daily_run_lock(tmp_path, as_of_date=date(2026, 11, 1)),
        ):
            pytest.fail("the lock was taken twice")
        assert err.value.holder["command"] == "holder"
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_run_leaves_no_stale_lock(tmp_path: Path) -> None:
    holder = _hold(tmp_path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == holder.pid  # the text stays, the lock does not
    started = time.monotonic()
    with daily_run_lock(tmp_path, as_of_date=date(2026, 11, 1)) as path:
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert time.monotonic() - started < 5  # taken at once, no waiting for a timeout


def test_the_lock_is_reentrant_in_one_process_and_released_after(tmp_path: Path) -> None:
    with daily_run_lock(tmp_path, as_of_date=date(2026, 1, 1)):
        with daily_run_lock(tmp_path, as_of_date=date(2026, 1, 1)):  # the CLI holds it, then the flow takes it
            pass
        holder = subprocess.run(
            [sys.executable, "-c", HOLDER, str(tmp_path)], input="", capture_output=True, text=True, timeout=60
        )
        assert holder.returncode != 0 and "another daily run is already running" in holder.stderr
    holder = subprocess.run(
        [sys.executable, "-c", HOLDER, str(tmp_path)], input="", capture_output=True, text=True, timeout=60
    )
    assert holder.returncode == 0 and holder.stdout.strip() == "held"
