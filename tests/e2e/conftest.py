"""The one end-to-end run of the README demo, shared by every end-to-end test of the session.

As a newcomer would: the wheel is built from this checkout and installed into a new virtual environment (runtime
dependencies only, pinned by requirements.lock), and ``relance demo`` runs from an empty directory, its data under
that directory's ``./data``. Around it, what users do to a running installation:

* while the demo runs, a second ``relance run daily`` on the same data directory must refuse at once (exit 3);
* meanwhile, on a small corrupted ledger: a run killed with SIGKILL must leave no stale lock (the next run is not
  refused), and that next run must stop on the critical contract failure before anything downstream (exit 1);
* after it, ``relance run daily`` for the same date from a directory outside the checkout (the editable install
  of this checkout) must send nothing new.

Smaller than ``make demo`` (200 customers, 5,000 invoices, a 4-weekly training grid) so the suite stays short; the
grid itself is tested in tests/integration/test_dbt_project.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from relance.runs import LOCK_NAME

AS_OF = "2026-10-31"
DEMO_ARGS = ["demo", "--customers", "200", "--invoices", "5000"]
TIMEOUT = 900


@dataclass(frozen=True)
class Completed:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def tail(self) -> str:
        return (
            f"$ relance {' '.join(self.args)} -> exit {self.returncode}\n{self.stdout[-3000:]}\n{self.stderr[-5000:]}"
        )


@dataclass(frozen=True)
class DemoRun:
    """Everything the end-to-end tests read: directories, environments and what each command did."""

    workdir: Path  # where `relance demo` ran (empty before)
    data: Path  # workdir / data
    wheel_bin: Path  # bin/ of the fresh virtual environment the wheel is installed in
    env: dict[str, str]  # environment of the runs on `data` (editable install), RELANCE_DATA_DIR set
    demo: Completed
    demo_result: dict
    concurrent: Completed  # the second run while the demo ran
    demo_pid: int
    emails_after_demo: list[Path]
    rerun: Completed
    rerun_result: dict
    rerun_cwd: Path
    killed_pid: int
    bad_data: Path
    bad: Completed  # the run after the SIGKILL, on the corrupted ledger


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RELANCE_", "MLFLOW_", "DBT_"))}
    return env | {"COLUMNS": "200"} | extra


def _run(exe: Path, args: list[str], env: dict[str, str], cwd: Path) -> Completed:
    proc = subprocess.run(
        [str(exe), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    return Completed(args, proc.returncode, proc.stdout, proc.stderr)


def _start(exe: Path, args: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[str]:
    out = log.open("w")
    return subprocess.Popen(
        [str(exe), *args], env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )


def _wait_for_lock_holder(data: Path, proc: subprocess.Popen[str], timeout: float = 300) -> None:
    """Until ``proc`` holds the data directory's daily-run lock (its pid is in the lock file).

    Polls a condition with a deadline (readiness, like a health check), never a fixed sleep.
    """
    deadline = time.monotonic() + timeout
    lock = data / LOCK_NAME
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended (exit {proc.returncode}) before it was seen holding {lock}")
        try:
            if json.loads(lock.read_text()).get("pid") == proc.pid:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"no lock holder in {lock} after {timeout:.0f} s")


def _install_wheel(repo_root: Path, tmp: Path) -> Path:
    """Build the wheel of this checkout and install it with its runtime dependencies into a new venv."""
    uv = Path(sys.executable).with_name("uv")
    dist = tmp / "dist"
    subprocess.run([str(uv), "build", "--quiet", "--wheel", "--out-dir", str(dist), str(repo_root)], check=True)
    (wheel,) = dist.glob("relance-*.whl")
    venv = tmp / "venv"
    subprocess.run([str(uv), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    subprocess.run(
        [str(uv), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), "-c",
         str(repo_root / "requirements.lock"), str(wheel)],
        check=True,
    )  # fmt: skip
    return venv / "bin"


def _corrupted_ledger(data: Path) -> None:
    """A small landing directory whose invoices break a critical contract: one invoice id appears twice."""
    from relance.demo.generate import generate_demo
    from relance.settings import Settings

    settings = Settings(data_dir=data)
    settings.ensure_dirs()
    end = date.fromisoformat(AS_OF)
    generate_demo(settings.landing, settings.ground_truth_dir, n_customers=60, n_invoices=800, months=12, end_date=end)
    path = settings.landing / "invoices.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join([*lines, lines[1]]))


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> DemoRun:
    tmp = tmp_path_factory.mktemp("e2e")
    wheel_bin = _install_wheel(repo_root, tmp)
    editable = Path(sys.executable).with_name("relance")

    workdir = tmp / "empty"
    workdir.mkdir()
    data = workdir / "data"
    # a 4-weekly training grid instead of the weekly default keeps the run short
    demo_env = _clean_env({"RELANCE_SNAPSHOT_INTERVAL_DAYS": "28"})
    env = demo_env | {"RELANCE_DATA_DIR": str(data)}
    elsewhere = tmp / "scheduler-cwd"
    elsewhere.mkdir()

    demo = _start(wheel_bin / "relance", [*DEMO_ARGS, "--json", "demo.json"], demo_env, workdir, tmp / "demo.log")
    try:
        _wait_for_lock_holder(data, demo)
        concurrent = _run(editable, ["run", "daily", "--as-of", AS_OF], env, elsewhere)

        # meanwhile, on a corrupted ledger of its own: SIGKILL a run holding the lock, then run again
        bad_data = tmp / "bad" / "data"
        _corrupted_ledger(bad_data)
        bad_env = _clean_env({"RELANCE_DATA_DIR": str(bad_data)})
        killed = _start(editable, ["run", "daily", "--as-of", AS_OF], bad_env, elsewhere, tmp / "killed.log")
        _wait_for_lock_holder(bad_data, killed)
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait(timeout=60)
        bad = _run(editable, ["run", "daily", "--as-of", AS_OF], bad_env, elsewhere)

        demo.wait(timeout=TIMEOUT)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    demo_done = Completed(DEMO_ARGS, demo.returncode, (tmp / "demo.log").read_text(), "")
    assert demo_done.returncode == 0, demo_done.tail()
    demo_result = json.loads((workdir / "demo.json").read_text())
    emails = sorted((data / "outbox" / "email").glob("*.json"))

    rerun = _run(editable, ["run", "daily", "--as-of", AS_OF, "--json", str(tmp / "rerun.json")], env, elsewhere)
    assert rerun.returncode == 0, rerun.tail()
    return DemoRun(
        workdir=workdir,
        data=data,
        wheel_bin=wheel_bin,
        env=env,
        demo=demo_done,
        demo_result=demo_result,
        concurrent=concurrent,
        demo_pid=demo.pid,
        emails_after_demo=emails,
        rerun=rerun,
        rerun_result=json.loads((tmp / "rerun.json").read_text()),
        rerun_cwd=elsewhere,
        killed_pid=killed.pid,
        bad_data=bad_data,
        bad=bad,
    )
