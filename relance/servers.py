"""Local servers started together and stopped together: what ``relance ui`` runs.

Each server gets a process group of its own, so stopping it reaches whatever it started (uvicorn workers, say).
They stop on Ctrl-C, SIGTERM (a service manager, ``kill``) or SIGHUP (a closed terminal), or when one of them
exits; a second signal during the stop is ignored so the clean-up always finishes. On Linux each server also gets
SIGTERM if ``relance ui`` itself dies without cleaning up (SIGKILL, out of memory).

No secret on a command line: any user of the machine reads every process's argv (``ps``), but only its owner reads
its environment. An ``mlflow`` command's store URIs (which may carry a password: ``postgresql://u:pw@host/db``)
are therefore moved from its argv to the environment variables MLflow's CLI reads instead
(``MLFLOW_BACKEND_STORE_URI``, ...) before it starts: :func:`without_secret_arguments`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
GRACE_SECONDS = 20


#: ``mlflow server``/``mlflow ui`` options whose value may hold a credential, and the variable MLflow's CLI reads
#: for each when the option is absent (``envvar=`` of its click options, mlflow 3.17).
MLFLOW_OPTION_ENV = {
    "--backend-store-uri": "MLFLOW_BACKEND_STORE_URI",
    "--registry-store-uri": "MLFLOW_REGISTRY_STORE_URI",
    "--read-replica-backend-store-uri": "MLFLOW_READ_REPLICA_BACKEND_STORE_URI",
    "--default-artifact-root": "MLFLOW_DEFAULT_ARTIFACT_ROOT",
    "--artifacts-destination": "MLFLOW_ARTIFACTS_DESTINATION",
}


def without_secret_arguments(command: list[str], env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """``command`` and ``env`` with an ``mlflow`` command's store URIs moved from argv to the environment.

    ``[..., "mlflow", "ui", "--backend-store-uri", uri, ...]`` becomes ``[..., "mlflow", "ui", ...]`` with
    ``MLFLOW_BACKEND_STORE_URI=uri``; ``--option=value`` too. Other commands are returned unchanged.
    """
    if not command or os.path.basename(command[0]) != "mlflow":
        return command, env
    argv: list[str] = []
    moved: dict[str, str] = {}
    args = iter(command)
    for arg in args:
        name, eq, value = arg.partition("=")
        if name in MLFLOW_OPTION_ENV:
            moved[MLFLOW_OPTION_ENV[name]] = value if eq else next(args, "")
        else:
            argv.append(arg)
    return argv, (env | moved) if moved else env


def mlflow_ui_command(
    mlflow: str, tracking_uri: str, port: int, *, workers: int = 1
) -> tuple[list[str], dict[str, str]]:
    """The ``mlflow ui`` command on 127.0.0.1 and the environment that carries its store URI (never argv).

    One worker: one person browsing, not the four the MLflow default starts."""
    argv = [mlflow, "ui", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    return argv, {"MLFLOW_BACKEND_STORE_URI": tracking_uri}


class Stop(Exception):
    """SIGTERM or SIGHUP arrived: stop the servers as Ctrl-C does."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGTERM when its parent dies (PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def _raise_stop(signum: int, _frame: object) -> None:
    raise Stop(signal.Signals(signum).name)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGINT to every server's process group, SIGKILL to what is still there after the grace period; Ctrl-C and
    the stop signals are ignored meanwhile."""
    ignored = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, *STOP_SIGNALS)}
    try:
        for p in procs:
            _signal_group(p, signal.SIGINT)
        deadline = time.monotonic() + GRACE_SECONDS
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(p, signal.SIGKILL)
                p.wait()
        for p in procs:  # what the servers started and left behind
            _signal_group(p, signal.SIGKILL)
    finally:
        for sig, handler in ignored.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def running(commands: list[list[str]], env: dict[str, str]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start ``commands``; however the block ends (a signal included), stop them all.

    Credential-carrying MLflow options are passed through the environment (:func:`without_secret_arguments`)."""
    previous = {sig: signal.signal(sig, _raise_stop) for sig in STOP_SIGNALS}
    procs: list[subprocess.Popen[bytes]] = []
    preexec: Callable[[], None] | None = _die_with_parent if sys.platform.startswith("linux") else None
    try:
        for cmd in commands:
            argv, cmd_env = without_secret_arguments(cmd, env)
            procs.append(subprocess.Popen(argv, env=cmd_env, start_new_session=True, preexec_fn=preexec))
        yield procs
    except (KeyboardInterrupt, Stop) as exc:
        log.info("stopping the servers (%s)", type(exc).__name__)
    finally:
        _stop(procs)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def wait_until_one_exits(procs: list[subprocess.Popen[bytes]]) -> None:
    """Block until a server exits (or a signal ends the ``running`` block around this)."""
    while all(p.poll() is None for p in procs):
        time.sleep(1)
    log.warning("a server exited; stopping the others")
