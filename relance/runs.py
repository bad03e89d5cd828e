"""Pipeline runs: one daily run at a time per data directory, and what a daily run returns.

The lock is an advisory ``flock`` on ``<data_dir>/daily.lock``. The kernel drops it when the holding process
ends, however it ends (SIGKILL and power loss included), so a crashed run can never leave it stuck; the file
itself only says who holds it (pid, host, as-of date, start time) for the message a second run prints. Within
one process the lock is re-entrant, so the CLI can take it before starting Prefect and the flow take it again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime
from pathlib import Path

LOCK_NAME = "daily.lock"

_held: dict[Path, int] = {}  # lock path -> depth, for re-entrance within this process
_guard = threading.Lock()


class StopRun(RuntimeError):
    """The pipeline stopped on purpose before anything downstream could run (data that failed its contract, a
    dbt build that failed). The message says what and where to look; the CLI prints it without a traceback."""


class RunInProgressError(RuntimeError):
    """Another daily run holds the data directory."""

    def __init__(self, lock_path: Path, holder: dict[str, str]) -> None:
        self.lock_path = lock_path
        self.holder = holder
        who = ", ".join(f"{k} {v}" for k, v in holder.items()) if holder else "holder unknown"
        super().__init__(
            f"another daily run is already running on {lock_path.parent} ({who}); "
            "wait for it to finish, this run did nothing"
        )


def _read_holder(path: Path) -> dict[str, str]:
    try:
        return {k: str(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}
    except (OSError, ValueError, AttributeError):
        return {}


@contextlib.contextmanager
def daily_run_lock(data_dir: Path, *, as_of_date: date, what: str = "relance run daily") -> Iterator[Path]:
    """Hold the data directory's daily-run lock for the block, or raise :class:`RunInProgressError` at once."""
    path = (Path(data_dir) / LOCK_NAME).resolve()
    with _guard:
        if path in _held:
            _held[path] += 1
            reentrant = True
        else:
            reentrant = False
    if reentrant:
        try:
            yield path
        finally:
            with _guard:
                _held[path] -= 1
        return

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunInProgressError(path, _read_holder(path)) from None
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "as_of_date": as_of_date.isoformat(),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": what,
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode("utf-8"), 0)
        with _guard:
            _held[path] = 1
        try:
            yield path
        finally:
            with _guard:
                del _held[path]
            os.ftruncate(fd, 0)  # the next holder writes its own; a stale text never names a dead run
    finally:
        os.close(fd)  # releases the flock


def _shown(value: object) -> str:
    """A result value as a person reads it: a tuple of reasons one per line, an empty one as 'no'."""
    if isinstance(value, tuple):
        return "\n".join(map(str, value)) or "no"
    return str(value)


@dataclass(frozen=True)
class DailyResult:
    """What one daily run did, with the ids that trace it (Prefect flow run, dbt invocation, model version)."""

    as_of_date: date
    flow_run_id: str | None
    batches_loaded: int
    rows_quarantined: int
    dbt_invocation_id: str
    candidate_version: str | None
    promoted: bool
    champion_version: str
    scored: int
    reminders_sent: int
    reminders_already_sent: int
    reminders_failed: int
    report_html: Path
    #: why nothing was sent (the freshness guard, ``relance.freshness``); empty when the run could send
    sending_held: tuple[str, ...] = ()
    #: False when the data could not train a model (one class, too few rows, too little history): the champion
    #: was kept, or the best baseline became champion; ``model_note`` says which and why
    model_trained: bool = True
    model_note: str = ""
    #: company-risk data: events read this run, sources with no good answer lately, reminders stopped just before
    #: their send (insolvency), alerts raised for the first time, claims to declare
    risk_events_read: int = 0
    risk_stale_sources: tuple[str, ...] = ()
    reminders_blocked: int = 0
    alerts_new: int = 0
    claims_to_declare: int = 0
    #: the weekly report's cash-in forecast against what was paid, past 13 weeks (blank when no weekly report)
    forecast_wape: str = ""

    def rows(self) -> list[tuple[str, str]]:
        """(name, value) pairs in field order, for a table on screen or a Prefect artifact."""
        return [(f.name, _shown(getattr(self, f.name))) for f in fields(self)]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def to_json(self) -> str:
        """The result as JSON (dates ISO, paths as text), for schedulers and scripts (``--json PATH``)."""
        return json.dumps(self.as_dict(), default=str, indent=2, sort_keys=False) + "\n"
