"""The one end-to-end run of the README demo, shared by every end-to-end test of the session.

As a newcomer would: the wheel is built from this checkout and installed into a new virtual environment (runtime
dependencies only, pinned by requirements.lock), and ``relance demo`` runs from an empty directory, its data under
that directory's ``./data``. Around it, what users do to a running installation:

* while the demo runs, a second ``relance run daily`` on the same data directory must refuse at once (exit 3);
* meanwhile, on a small corrupted ledger: a run killed with SIGKILL must leave no stale lock (the next run is not
  refused), and that next run must stop on the critical contract failure before anything downstream (exit 1);
* after it, ``relance ui`` serves the demo's Prefect runs, MLflow registry and dbt docs (tests/e2e/test_ui.py), and
  ``relance run daily`` for the same date from a directory outside the checkout (the editable install of this
  checkout, reporting to that Prefect server) must send nothing new;
* then ``relance model serve`` serves the champion over HTTP (tests/e2e/test_model_serve.py).

Every run carries marked test secrets (:class:`MarkedSecrets`), which tests/e2e/test_secrets.py then searches for in
every output: a SendGrid key in the ``.env`` of the demo's directory (the demo must drop it) and in the rerun's
environment (a real run uses it: it must still appear nowhere), a password in the MLflow tracking URI (SQLite
ignores the ``?password=`` query argument, so the demo's MLflow works with it) and a PostgreSQL password.

The sequence is subprocesses from start to end, so it runs in a background thread from the moment the session has
collected an end-to-end test (``tests/conftest.py`` starts it, and orders the end-to-end tests last): the unit and
integration tests use the other core meanwhile. The ``demo_run`` fixture waits for it and hands over the result.

Smaller than ``make demo`` (200 customers, 5,000 invoices, a 4-weekly training grid) so the suite stays short; the
grid itself is tested in tests/integration/test_dbt_project.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
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
        head = f"$ relance {' '.join(self.args)} -> exit {self.returncode}"
        return f"{head}\n{self.stdout[-3000:]}\n{self.stderr[-5000:]}"


@dataclass(frozen=True)
class MarkedSecrets:
    """Secrets no output may contain, unique per session so that no file could hold them by chance."""

    sendgrid_key: str
    mlflow_password: str
    pg_password: str

    @classmethod
    def new(cls) -> MarkedSecrets:
        def mark(kind: str) -> str:
            return f"marked-{kind}-{uuid.uuid4().hex}"

        return cls(f"SG.{mark('sgid')}.{mark('sgkey')}", mark("mlflowpw"), mark("pgpw"))

    def values(self) -> dict[str, str]:
        """What to search for: each secret, and the secret half of the SendGrid key on its own."""
        return {
            "sendgrid key": self.sendgrid_key,
            "sendgrid key secret": self.sendgrid_key.rsplit(".", 1)[1],
            "mlflow password": self.mlflow_password,
            "pg password": self.pg_password,
        }


#: Where a SendGrid key of the runs would send: a closed loopback port, so that a run that wrongly used the key
#: could reach no one.
NOWHERE = "http://127.0.0.1:9"


@dataclass
class Ui:
    """`relance ui` on the demo's data: its process, the three servers' URLs, the processes it started."""

    proc: subprocess.Popen[str]
    prefect: str
    mlflow: str
    docs: str
    servers: set[int] = field(default_factory=set)
    log: Path | None = None
    cmdlines: dict[int, str] = field(default_factory=dict)  # what `ps` showed of each server process


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
    bad_again: Completed  # one more run on the same corrupted ledger, asking to send
    model_server: str  # `relance model serve` of the demo's champion (it may still be starting)
    ui: Ui
    secrets: MarkedSecrets
    tmp: Path  # everything the sequence wrote: logs, the demo's directory, the corrupted ledger's


# --------------------------------------------------------------------------------------------- processes
class _Processes:
    """Every process the sequence starts, so that an interrupted session leaves none behind."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[str]] = []
        self._lock = threading.Lock()
        self.ui: Ui | None = None

    def start(self, args: list[str], env: dict[str, str], cwd: Path, log: Path | None) -> subprocess.Popen[str]:
        out = log.open("w") if log else subprocess.PIPE
        proc = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT if log else subprocess.PIPE, text=True,
            start_new_session=True,
        )  # fmt: skip
        with self._lock:
            self._procs.append(proc)
        return proc

    def run(self, exe: Path, args: list[str], env: dict[str, str], cwd: Path) -> Completed:
        proc = self.start([str(exe), *args], env, cwd, None)
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
        return Completed(args, proc.returncode, stdout, stderr)

    def kill_all(self) -> None:
        if self.ui is not None and self.ui.proc.poll() is None:  # stops its servers as Ctrl-C does
            self.ui.proc.send_signal(signal.SIGINT)
            try:
                self.ui.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.ui.proc.kill()
                self.ui.proc.wait()
        with self._lock:
            for proc in self._procs:
                if proc.poll() is None:
                    _kill_group(proc.pid, signal.SIGKILL)
                    proc.wait()


def _kill_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RELANCE_", "MLFLOW_", "DBT_"))}
    return env | {"COLUMNS": "200"} | extra


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


def _wait_for_http(url: str, timeout: float = 180) -> None:
    """Until the server answers (start-up readiness with a deadline, not synchronisation by sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (Linux /proc), whatever session or group it moved to."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------- the sequence
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


def _start_ui(procs: _Processes, env: dict[str, str], cwd: Path, log: Path) -> Ui:
    ports = {"prefect": _free_port(), "mlflow": _free_port(), "docs": _free_port()}
    exe = Path(sys.executable).parent / "relance"
    args = [str(exe), "ui"] + [a for name, port in ports.items() for a in (f"--{name}-port", str(port))]
    # a process of its own, not a new session: test_ui sends SIGTERM to it alone, as `kill` would
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=log.open("w"), stderr=subprocess.STDOUT, text=True)
    ui = Ui(
        proc,
        f"http://127.0.0.1:{ports['prefect']}/api",
        f"http://127.0.0.1:{ports['mlflow']}",
        f"http://127.0.0.1:{ports['docs']}",
        log=log,
    )
    procs.ui = ui
    _wait_for_http(f"{ui.prefect}/health")
    _wait_for_http(f"{ui.mlflow}/health")
    _wait_for_http(f"{ui.docs}/index.html")
    ui.servers = _descendants(proc.pid)
    for pid in {proc.pid, *ui.servers}:
        with contextlib.suppress(OSError):
            ui.cmdlines[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ui


def _demo_sequence(repo_root: Path, tmp: Path, procs: _Processes) -> DemoRun:
    wheel_bin = _install_wheel(repo_root, tmp)
    editable = Path(sys.executable).with_name("relance")

    workdir = tmp / "empty"
    workdir.mkdir()
    data = workdir / "data"
    secrets = MarkedSecrets.new()
    # a provider key in the .env of the demo's directory, as a user who configured relance there would have
    (workdir / ".env").write_text(f"RELANCE_SENDGRID_API_KEY={secrets.sendgrid_key}\nRELANCE_SENDGRID_HOST={NOWHERE}\n")
    # the default MLflow database, with a credential in its URI (SQLite ignores the query argument)
    mlflow_uri = f"sqlite:///{data / 'mlflow' / 'mlflow.db'}?password={secrets.mlflow_password}"
    # a 4-weekly training grid instead of the weekly default keeps the run short
    demo_env = _clean_env(
        {
            "RELANCE_SNAPSHOT_INTERVAL_DAYS": "28",
            "RELANCE_MLFLOW_TRACKING_URI": mlflow_uri,
            "RELANCE_PG_PASSWORD": secrets.pg_password,
        }
    )
    env = demo_env | {"RELANCE_DATA_DIR": str(data)}
    elsewhere = tmp / "scheduler-cwd"
    elsewhere.mkdir()

    demo = procs.start(
        [str(wheel_bin / "relance"), *DEMO_ARGS, "--json", "demo.json"], demo_env, workdir, tmp / "demo.log"
    )
    _wait_for_lock_holder(data, demo)
    concurrent = procs.run(editable, ["run", "daily", "--as-of", AS_OF], env, elsewhere)

    # meanwhile, on a corrupted ledger of its own: SIGKILL a run holding the lock, then run again
    bad_data = tmp / "bad" / "data"
    _corrupted_ledger(bad_data)
    bad_env = _clean_env({"RELANCE_DATA_DIR": str(bad_data)})
    killed = procs.start([str(editable), "run", "daily", "--as-of", AS_OF], bad_env, elsewhere, tmp / "killed.log")
    _wait_for_lock_holder(bad_data, killed)
    _kill_group(killed.pid, signal.SIGKILL)
    killed.wait(timeout=60)
    bad = procs.run(editable, ["run", "daily", "--as-of", AS_OF], bad_env, elsewhere)
    # the next run on the same, unchanged files: the failed batch still blocks it (it used to send)
    bad_again = procs.run(editable, ["run", "daily", "--as-of", AS_OF, "--send-backfill"], bad_env, elsewhere)

    demo.wait(timeout=TIMEOUT)
    demo_done = Completed(DEMO_ARGS, demo.returncode, (tmp / "demo.log").read_text(), "")
    assert demo_done.returncode == 0, demo_done.tail()
    demo_result = json.loads((workdir / "demo.json").read_text())
    emails = sorted((data / "outbox" / "email").glob("*.json"))

    # the rerun has a SendGrid key (it is no demo: it uses it), pointing nowhere: it must send nothing new anyway
    # and it reports to the Prefect server `relance ui` started on the demo's database, as a scheduled run on a
    # server would (and no temporary server of its own: one start-up less in the suite)
    ui = _start_ui(procs, env, elsewhere, tmp / "ui.log")
    rerun_env = env | {
        "RELANCE_SENDGRID_API_KEY": secrets.sendgrid_key,
        "RELANCE_SENDGRID_HOST": NOWHERE,
        "PREFECT_API_URL": ui.prefect,
    }
    # --send-backfill: the as-of date is not today, and this rerun must go as far as the send ledger
    rerun_args = ["run", "daily", "--as-of", AS_OF, "--send-backfill", "--json", str(tmp / "rerun.json")]
    rerun = procs.run(editable, rerun_args, rerun_env, elsewhere)
    assert rerun.returncode == 0, rerun.tail()
    # the champion over HTTP (`relance model serve`); started here so its start-up overlaps the other tests
    serve_port = _free_port()
    procs.start([str(editable), "model", "serve", "--port", str(serve_port)], env, elsewhere, tmp / "model-serve.log")
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
        bad_again=bad_again,
        model_server=f"http://127.0.0.1:{serve_port}",
        ui=ui,
        secrets=secrets,
        tmp=tmp,
    )


class DemoInBackground:
    """The sequence in a thread; :meth:`result` waits for it. :meth:`stop` ends whatever is still running."""

    def __init__(self, repo_root: Path, tmp: Path) -> None:
        self.tmp = tmp
        self._procs = _Processes()
        self._result: DemoRun | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(repo_root, tmp), name="e2e-demo", daemon=True)
        self._thread.start()

    def _run(self, repo_root: Path, tmp: Path) -> None:
        try:
            self._result = _demo_sequence(repo_root, tmp, self._procs)
        except BaseException as exc:  # handed to the test that asks for the result
            self._error = exc

    def result(self) -> DemoRun:
        self._thread.join(timeout=2 * TIMEOUT)
        if self._thread.is_alive():
            raise TimeoutError(f"the end-to-end demo sequence did not finish in {2 * TIMEOUT} s (logs in {self.tmp})")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def stop(self) -> None:
        self._procs.kill_all()


DEMO_KEY = pytest.StashKey[DemoInBackground]()


def start_demo_in_background(config: pytest.Config, repo_root: Path, tmp: Path) -> None:
    if DEMO_KEY not in config.stash:
        config.stash[DEMO_KEY] = DemoInBackground(repo_root, tmp)


@pytest.fixture(scope="session")
def demo_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> DemoRun:
    start_demo_in_background(request.config, repo_root, tmp_path_factory.mktemp("e2e"))  # if collection did not
    return request.config.stash[DEMO_KEY].result()


@pytest.fixture(scope="session")
def ui(demo_run: DemoRun) -> Ui:
    return demo_run.ui
