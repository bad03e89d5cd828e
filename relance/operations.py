"""Running relance unattended: the deployments and their schedules, backfills, failure notices and the operator's
status, without Prefect (``flows/_deployments.py`` and ``flows/_notify_failure.py`` do the Prefect part).

* **Deployments** live in one file, ``infra/prefect.yaml`` (what ``prefect deploy --all`` reads). A wheel carries
  it as ``relance/infra/prefect.yaml`` (``pyproject.toml`` maps it there, as it maps ``dbt_project/``), so
  ``relance serve`` and ``relance status`` read the same schedules from a checkout or an installed package.
* **Backfill** runs the daily pipeline for each date of a range once, in order; the dates done are kept in
  ``<data_dir>/backfill.json`` so an interrupted or failed backfill resumes where it stopped.
* **Failure notices**: an email per recipient group that receives ``failures``, once per failed flow run (the
  notification ledger decides, like the risk-alert digest).
* **Status**: where the data, the model and the open work stand, from the warehouse, the send ledger and MLflow.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from relance.files import write_text_atomic

log = logging.getLogger(__name__)

_PACKAGE_DIR = Path(__file__).resolve().parent
DEPLOYMENTS_FILE = Path("infra") / "prefect.yaml"

# --- deployments ------------------------------------------------------------------------------------------------


class DeploymentFileError(ValueError):
    """``infra/prefect.yaml`` is missing or does not say what a deployment needs (the message says where)."""


@dataclass(frozen=True)
class ScheduleSpec:
    cron: str
    timezone: str

    def describe(self) -> str:
        return f"{self.cron} ({self.timezone})"


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment of ``infra/prefect.yaml``: a flow, when it runs and with which parameters."""

    name: str
    entrypoint: str  # flows/<file>.py:<function>, relative to the repository root (what prefect deploy wants)
    schedules: tuple[ScheduleSpec, ...]
    parameters: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    description: str = ""
    concurrency_limit: int | None = None
    work_pool: str | None = None

    @property
    def module(self) -> str:
        """The flow's module by import path (``flows.daily_collections``): how an installed package loads it."""
        return self.entrypoint.split(":")[0].removesuffix(".py").replace("/", ".")

    @property
    def function(self) -> str:
        return self.entrypoint.split(":")[1]

    def schedule_text(self) -> str:
        return "; ".join(s.describe() for s in self.schedules)


_ENTRYPOINT = re.compile(r"^flows/[a-z][a-z0-9_]*\.py:[a-z_][a-z0-9_]*$")
_NAME = re.compile(r"^[a-z][a-z0-9-]*$")


def deployments_file() -> Path:
    """The deployments file this code was installed with: ``relance/infra/prefect.yaml`` in a wheel, the
    repository's ``infra/prefect.yaml`` in a checkout.

    Raises:
        DeploymentFileError: neither is there (a broken install).
    """
    candidates = (_PACKAGE_DIR / DEPLOYMENTS_FILE, _PACKAGE_DIR.parent / DEPLOYMENTS_FILE)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DeploymentFileError(
        "the deployments file is not installed with relance (looked for "
        + " and ".join(map(str, candidates))
        + "); reinstall the package"
    )


def _timezone(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise DeploymentFileError(f"{where}: every schedule names its time zone (timezone: Europe/Paris)")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise DeploymentFileError(f"{where}: timezone {value!r} is not an IANA time zone name") from None
    return value


def _schedule(raw: Any, where: str) -> ScheduleSpec:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("cron"), str):
        raise DeploymentFileError(f"{where}: a schedule is a mapping with a cron string")
    cron = raw["cron"].strip()
    if len(cron.split()) != 5:
        raise DeploymentFileError(f"{where}: cron {cron!r} must have 5 fields (minute hour day month weekday)")
    return ScheduleSpec(cron=cron, timezone=_timezone(raw.get("timezone"), where))


def _deployment(raw: Any, index: int, path: Path) -> DeploymentSpec:
    where = f"{path}: deployments[{index}]"
    if not isinstance(raw, Mapping):
        raise DeploymentFileError(f"{where} is not a mapping")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise DeploymentFileError(f"{where}: name {name!r} must be lower-case words joined by '-'")
    where = f"{path}: deployment {name!r}"
    entrypoint = raw.get("entrypoint")
    if not isinstance(entrypoint, str) or not _ENTRYPOINT.match(entrypoint):
        raise DeploymentFileError(f"{where}: entrypoint {entrypoint!r} must be flows/<file>.py:<function>")
    schedules = raw.get("schedules") or []
    if not isinstance(schedules, list) or not schedules:
        raise DeploymentFileError(f"{where}: no schedule (every relance deployment runs on one)")
    parameters = raw.get("parameters") or {}
    if not isinstance(parameters, Mapping):
        raise DeploymentFileError(f"{where}: parameters must be a mapping")
    try:
        json.dumps(parameters)
    except TypeError as exc:
        raise DeploymentFileError(f"{where}: parameters must be plain JSON values ({exc})") from None
    tags = raw.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise DeploymentFileError(f"{where}: tags must be a list of strings")
    limit = raw.get("concurrency_limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise DeploymentFileError(f"{where}: concurrency_limit must be a positive integer")
    pool = raw.get("work_pool") or {}
    return DeploymentSpec(
        name=name,
        entrypoint=entrypoint,
        schedules=tuple(_schedule(s, where) for s in schedules),
        parameters=dict(parameters),
        tags=tuple(tags),
        description=str(raw.get("description") or "").strip(),
        concurrency_limit=limit,
        work_pool=pool.get("name") if isinstance(pool, Mapping) else None,
    )


def load_deployments(path: Path | None = None) -> list[DeploymentSpec]:
    """Every deployment of the deployments file (default :func:`deployments_file`), checked: names unique, entry
    points under ``flows/``, at least one cron schedule each with an IANA time zone, JSON parameters."""
    path = path or deployments_file()
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DeploymentFileError(f"cannot read {path}: {exc}") from None
    raw = document.get("deployments") if isinstance(document, Mapping) else None
    if not isinstance(raw, list) or not raw:
        raise DeploymentFileError(f"{path}: no 'deployments:' list")
    specs = [_deployment(item, i, path) for i, item in enumerate(raw)]
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DeploymentFileError(f"{path}: deployment names used twice: {', '.join(duplicates)}")
    return specs


# --- backfill ---------------------------------------------------------------------------------------------------

BACKFILL_FILE = "backfill.json"
BackfillOutcome = Literal["done", "skipped", "failed"]


def backfill_path(data_dir: Path) -> Path:
    """Where a data directory's backfill progress is kept."""
    return Path(data_dir) / BACKFILL_FILE


def backfill_dates(start: date, end: date, *, weekdays_only: bool = False) -> list[date]:
    """Every date from ``start`` to ``end`` included, in order (Monday to Friday only with ``weekdays_only``,
    the daily deployment's days)."""
    if end < start:
        raise ValueError(f"--to {end} is before --from {start}")
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    return [d for d in days if d.weekday() < 5] if weekdays_only else days


class BackfillProgress:
    """The dates a backfill finished, with what each run said, in a small JSON file written atomically after each
    date: ``{"dates": {"2026-10-01": {"status": "done", "finished_at": ..., ...}}}``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._dates: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            try:
                document = json.loads(self.path.read_text(encoding="utf-8"))
                self._dates = dict(document.get("dates") or {})
            except (OSError, ValueError, AttributeError) as exc:
                raise ValueError(
                    f"backfill progress {self.path} is unreadable ({exc}); move it away to start over"
                ) from None

    def entry(self, day: date) -> dict[str, Any] | None:
        return self._dates.get(day.isoformat())

    def is_done(self, day: date) -> bool:
        entry = self.entry(day)
        return bool(entry) and entry.get("status") == "done"

    def entries(self) -> dict[str, dict[str, Any]]:
        return dict(sorted(self._dates.items()))

    def record(self, day: date, status: Literal["done", "failed"], details: Mapping[str, Any], now: datetime) -> None:
        self._dates[day.isoformat()] = {
            "status": status,
            "finished_at": now.astimezone(UTC).isoformat(timespec="seconds"),
            **{k: v for k, v in details.items() if k not in ("status", "finished_at")},
        }
        text = json.dumps({"version": 1, "dates": self.entries()}, indent=2, default=str, ensure_ascii=False)
        write_text_atomic(self.path, text + "\n")


@dataclass(frozen=True)
class BackfillDay:
    as_of_date: date
    outcome: BackfillOutcome
    details: dict[str, Any] = field(default_factory=dict)


def run_backfill(
    progress: BackfillProgress,
    dates: Sequence[date],
    run_day: Callable[[date], Mapping[str, Any]],
    *,
    redo: bool = False,
    on_day: Callable[[BackfillDay], None] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[BackfillDay]:
    """Run ``run_day(date)`` for each date in order, each once: a date the progress file says is done is skipped
    (unless ``redo``). The first failure is recorded and stops the backfill (later dates build on earlier ones);
    running the same command again resumes at that date. ``run_day`` returns what to keep about the run (flow run
    id, counts); an exception is a failure. Returns one :class:`BackfillDay` per date handled."""
    results: list[BackfillDay] = []

    def emit(day: BackfillDay) -> None:
        results.append(day)
        if on_day is not None:
            on_day(day)

    for day in dates:
        if not redo and progress.is_done(day):
            emit(BackfillDay(day, "skipped", dict(progress.entry(day) or {})))
            continue
        try:
            details = dict(run_day(day))
        except Exception as exc:
            details = {"error": f"{type(exc).__name__}: {exc}"}
            progress.record(day, "failed", details, now())
            emit(BackfillDay(day, "failed", details))
            break
        progress.record(day, "done", details, now())
        emit(BackfillDay(day, "done", details))
    return results


# --- failure notices --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailedRun:
    """What a failure notice says about the run."""

    flow_name: str
    flow_run_id: str
    flow_run_name: str
    state_name: str
    message: str
    link: str
    deployment: str | None = None
    started_at: datetime | None = None


MAX_MESSAGE_CHARS = 4000

_FAILURE_TEXT = {
    "fr": {
        "subject": "relance : échec de l'exécution planifiée {flow}",
        "intro": "L'exécution planifiée {flow} a échoué ({state}).",
        "deployment": "Déploiement",
        "run": "Exécution",
        "started": "Démarrée le",
        "message": "Message",
        "open": "Détail et journaux",
        "next": "Rien n'est renvoyé automatiquement : corriger la cause, puis relancer l'exécution depuis Prefect "
        "(ou `relance run daily --as-of DATE` pour un jour manqué).",
    },
    "en": {
        "subject": "relance: scheduled run failed: {flow}",
        "intro": "The scheduled run of {flow} failed ({state}).",
        "deployment": "Deployment",
        "run": "Run",
        "started": "Started",
        "message": "Message",
        "open": "Details and logs",
        "next": "Nothing is retried automatically: fix the cause, then rerun it from Prefect "
        "(or `relance run daily --as-of DATE` for a missed day).",
    },
}


def failure_notice_key(flow_run_id: str, group: str) -> str:
    """The notification-ledger key of one notice: one per failed flow run and recipient group, whatever retries."""
    return f"flow-failure-{flow_run_id}-{group}"


def failure_lines(run: FailedRun, language: str) -> tuple[str, list[tuple[str, str]], str]:
    """(subject, labelled lines, closing sentence) of a failure notice in ``language`` (fr or en)."""
    words = _FAILURE_TEXT.get(language, _FAILURE_TEXT["en"])
    lines = [(words["deployment"], run.deployment or "-"), (words["run"], f"{run.flow_run_name} ({run.flow_run_id})")]
    if run.started_at is not None:
        lines.append((words["started"], f"{run.started_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"))
    lines += [(words["message"], run.message[:MAX_MESSAGE_CHARS] or "-"), (words["open"], run.link)]
    return words["subject"].format(flow=run.flow_name), lines, words["next"]


def build_failure_mail(
    run: FailedRun, *, language: str, sender_email: str, sender_name: str, recipients: Sequence[str], key: str
):  # -> sendgrid Mail
    """The notice: plain text and HTML, the run's link, only opaque ids in custom args."""
    import html

    from sendgrid.helpers.mail import Category, Content, CustomArg, From, Mail, MimeType, Subject, To

    if not recipients:
        raise ValueError("a failure notice needs at least one recipient")
    subject, lines, closing = failure_lines(run, language)
    words = _FAILURE_TEXT.get(language, _FAILURE_TEXT["en"])
    intro = words["intro"].format(flow=run.flow_name, state=run.state_name)
    text = "\n".join([intro, "", *(f"{label}: {value}" for label, value in lines), "", closing])
    rows = "".join(
        f"<tr><th align='left'>{html.escape(label)}</th><td>"
        + (
            f"<a href='{html.escape(value)}'>{html.escape(value)}</a>"
            if value.startswith("http")
            else f"<pre style='white-space:pre-wrap;margin:0'>{html.escape(value)}</pre>"
        )
        + "</td></tr>"
        for label, value in lines
    )
    body = (
        f'<!doctype html><html lang="{language}"><body><p><strong>{html.escape(intro)}</strong></p>'
        f'<table border="1" cellpadding="4" cellspacing="0">{rows}</table><p>{html.escape(closing)}</p></body></html>'
    )
    mail = Mail(from_email=From(sender_email, sender_name), to_emails=[To(r) for r in recipients])
    mail.subject = Subject(subject)
    mail.content = [Content(MimeType.text, text), Content(MimeType.html, body)]
    mail.custom_arg = [CustomArg("reminder_key", key, p=0), CustomArg("flow_run_id", run.flow_run_id, p=0)]
    mail.category = [Category("relance"), Category("flow_failure")]
    return mail


def send_failure_notices(
    run: FailedRun,
    *,
    groups: Mapping[str, Any],  # group name -> RecipientGroup (emails, language)
    ledger: Any,
    transport: Any,
    sender_email: str,
    sender_name: str,
    now: datetime,
) -> list[str]:
    """Email ``run``'s failure to each group, exactly once per group and flow run (claimed in the ledger before
    the transport is called, marked sent with the provider's id or the outbox file). Returns the keys sent now;
    a notice already sent or in flight is not sent again. A transport error is recorded and raised."""
    sent: list[str] = []
    for group_name, group in sorted(groups.items()):
        key = failure_notice_key(run.flow_run_id, group_name)
        attempts = ledger.claim(
            key, "email", flow_run_id=run.flow_run_id, step="flow_failure", recipient=",".join(group.emails), at=now
        )
        if attempts is None:
            continue
        mail = build_failure_mail(
            run,
            language=group.language,
            sender_email=sender_email,
            sender_name=sender_name,
            recipients=group.emails,
            key=key,
        )
        try:
            result = transport.send(mail, key)
        except Exception as exc:
            ambiguous = bool(getattr(exc, "ambiguous", False))
            ledger.failed(
                key, "email", f"{type(exc).__name__}: {exc}", attempts + 1,
                status="sending" if ambiguous else "failed", flow_run_id=run.flow_run_id, at=now,
            )  # fmt: skip
            raise
        ledger.sent(
            key,
            provider_message_id=result.provider_message_id,
            outbox_path=str(result.outbox_path) if result.outbox_path else None,
            attempts=attempts + 1,
            at=now,
            flow_run_id=run.flow_run_id,
        )
        sent.append(key)
    return sent


# --- status -----------------------------------------------------------------------------------------------------

#: The status lists the risk alerts raised in this many days (as the finance report does).
ALERT_DAYS = 30
#: A call task is pending while no call outcome answers it; older than this, it is no longer listed.
CALL_TASK_DAYS = 14


def _naive_utc(value: Any) -> datetime | None:
    """A timestamp as naive UTC (the warehouse's and the ledger's convention), ``None`` for a missing one."""
    if value is None or value != value:  # None or NaN/NaT
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if not isinstance(value, datetime):
        return None
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _as_date(value: Any) -> date | None:
    day = value if isinstance(value, date) else _naive_utc(value)
    return day.date() if isinstance(day, datetime) else day


def _hours(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else round((now - then).total_seconds() / 3600, 1)


def run_in_progress(data_dir: Path) -> dict[str, str] | None:
    """Who holds the data directory's daily-run lock, by its holder file (``relance.runs``), without taking the
    lock: ``None`` when nobody does (an empty file, or a holder process on this host that is gone)."""
    from relance.runs import LOCK_NAME

    path = Path(data_dir) / LOCK_NAME
    try:
        holder = json.loads(path.read_text(encoding="utf-8") or "null")
    except (OSError, ValueError):
        return None
    if not isinstance(holder, dict) or not holder:
        return None
    if holder.get("host") == socket.gethostname():
        try:
            os.kill(int(holder.get("pid", -1)), 0)
        except (ProcessLookupError, ValueError):
            return None  # a crashed run's text: the kernel released its lock
        except PermissionError:
            pass
    return {k: str(v) for k, v in holder.items()}


def source_freshness(con: Any, *, now: datetime, max_age_hours: float) -> list[dict[str, Any]]:
    """Per receivables source: when it last brought new data (the rule the send guard applies), when it was last
    read at all, its watermarks (database sources), and whether it is fresh enough to send on."""
    from relance import ops
    from relance.freshness import last_new_content

    # receivables only: company-risk data has its own freshness (risk_source_status), and call outcomes and provider
    # events are answers that arrive when they arrive
    others = (*ops.RISK_DATA_ENTITIES, *ops.CONTACT_DATA_ENTITIES)
    batches = [b for b in ops.list_batches(con, limit=None) if b.entity not in others]
    names = sorted({b.source_name or "" for b in batches})
    last_new = last_new_content(con, names)
    rows = []
    for name in names:
        mine = [b for b in batches if (b.source_name or "") == name]
        last_read = max((b.loaded_at for b in mine if b.loaded_at is not None), default=None)
        new = last_new.get(name)
        age = _hours(now, new)
        rows.append(
            {
                "source": name or "(unnamed)",
                "entities": sorted({b.entity for b in mine}),
                "last_new_data_at": new,
                "last_read_at": last_read,
                "age_hours": age,
                "fresh": age is not None and age <= max_age_hours,
                "watermarks": ops.read_watermarks(con, name) if name else {},
            }
        )
    return rows


def risk_source_status(con: Any, *, now: datetime, stale_after_hours: float) -> list[dict[str, Any]]:
    """Per company-risk provider: its last good answer, last attempt, companies checked and in error."""
    from relance import ops

    by_publisher: dict[str, list[Any]] = {}
    for check in ops.risk_checks(con):
        by_publisher.setdefault(check.publisher, []).append(check)
    rows = []
    for publisher, checks in sorted(by_publisher.items()):
        success = max((c.last_success_at for c in checks if c.last_success_at), default=None)
        attempt = max((c.last_attempt_at for c in checks if c.last_attempt_at), default=None)
        errors = [c for c in checks if c.last_error]
        watermark = max((c.watermark_date for c in checks if c.watermark_date), default=None)
        age = _hours(now, success)
        rows.append(
            {
                "source": publisher,
                "last_success_at": success,
                "last_attempt_at": attempt,
                "age_hours": age,
                "fresh": age is not None and age <= stale_after_hours,
                "checks": len(checks),
                "in_error": len(errors),
                "last_error": errors[-1].last_error if errors else None,
                "watermark_date": watermark,
            }
        )
    return rows


def blocking_batch_rows(con: Any) -> list[dict[str, Any]]:
    from relance import ops

    return [
        {"batch_id": b.batch_id, "source": b.source_name, "entity": b.entity, "state": b.state, "file": b.source_file}
        for b in ops.blocking_batches(con)
    ]


def open_alerts(con: Any, *, now: datetime, days: int = ALERT_DAYS) -> dict[str, Any]:
    """Risk alerts raised in the last ``days`` days (by when they were raised), and those no email carried yet."""
    from relance import ops

    alerts = ops.read_alerts(con)
    if alerts.empty:
        return {"days": days, "recent": 0, "not_emailed": 0, "by_type": {}, "latest": []}
    import pandas as pd

    created = pd.to_datetime(alerts["created_at"])
    recent = alerts[created >= pd.Timestamp(now - timedelta(days=days))]
    return {
        "days": days,
        "recent": len(recent),
        "not_emailed": int(alerts["notified_at"].isna().sum()),
        "by_type": {str(k): int(v) for k, v in recent["alert_type"].value_counts().sort_index().items()},
        "latest": [
            {"alert_type": r["alert_type"], "title": r["title"], "raised_on": r["as_of_date"]}
            for r in recent.head(5).to_dict("records")
        ],
    }


def claim_tasks(con: Any, *, today: date) -> dict[str, Any]:
    """The claims to declare (``serving.claim_declarations``) of the latest date the daily run built."""
    from relance.warehouse import read_relation, relation_exists

    if not relation_exists(con, "serving.claim_declarations"):
        return {"as_of_date": None, "to_declare": 0, "deadline_passed": 0, "nearest_deadline": None, "claims": []}
    claims = read_relation(con, "serving.claim_declarations", order_by="as_of_date, deadline_date, claim_id")
    if claims.empty:
        return {"as_of_date": None, "to_declare": 0, "deadline_passed": 0, "nearest_deadline": None, "claims": []}
    latest = claims["as_of_date"].max()
    claims = claims[claims["as_of_date"] == latest]
    latest = _as_date(latest)
    todo = claims[claims["status"] == "to_declare"]
    deadlines = sorted(_as_date(d) for d in todo["deadline_date"] if _as_date(d) is not None)
    return {
        "as_of_date": latest,
        "to_declare": len(todo),
        "deadline_passed": int((claims["status"] == "deadline_passed").sum()),
        "nearest_deadline": deadlines[0] if deadlines else None,
        "days_to_nearest": (deadlines[0] - today).days if deadlines else None,
        "claims": [
            {
                "customer_id": r["customer_id"],
                "customer_name": r.get("customer_name"),
                "deadline_date": r["deadline_date"],
                "amount_due": r.get("amount_due"),
                "currency": r.get("currency"),
            }
            for r in todo.to_dict("records")
        ],
    }


def pending_calls(
    call_tasks: Iterable[Any], outcomes: Any, *, now: datetime, days: int = CALL_TASK_DAYS
) -> dict[str, Any]:
    """Call tasks put on a call list (send-ledger rows of channel ``call`` marked sent) in the last ``days`` days
    that no call outcome answers yet: none with the task's reminder key, nor a call to the customer since.

    ``outcomes``: the call outcomes (``staging.stg_call_outcomes``: reminder_key, customer_id, called_at)."""
    since = now - timedelta(days=days)
    by_key = set(outcomes["reminder_key"].dropna().astype(str)) if len(outcomes) else set()
    last_call: dict[str, datetime] = {}
    for r in outcomes.to_dict("records") if len(outcomes) else []:
        at = _naive_utc(r.get("called_at"))
        customer = r.get("customer_id")
        if at is not None and customer is not None:
            last_call[str(customer)] = max(at, last_call.get(str(customer), at))
    pending = []
    for task in call_tasks:
        if task.channel != "call" or task.status != "sent":
            continue
        listed = _naive_utc(task.sent_at or task.updated_at)
        if listed is None or listed < since or task.reminder_key in by_key:
            continue
        called = last_call.get(str(task.customer_id)) if task.customer_id else None
        if called is not None and called >= listed:
            continue
        pending.append({"reminder_key": task.reminder_key, "customer_id": task.customer_id, "listed_at": listed})
    pending.sort(key=lambda p: p["listed_at"])
    return {
        "days": days,
        "pending": len(pending),
        "oldest_listed_at": pending[0]["listed_at"] if pending else None,
        "tasks": pending[:20],
    }


def champion_status(tracking_uri: str, model_name: str, *, now: datetime, ui_url: str) -> dict[str, Any]:
    """The model version that holds ``@champion`` and how old it is (since it was registered), or why none."""
    # sqlite:////abs/mlflow.db?password=...: the file, without the query string (SQLite ignores it, the path does not)
    if (
        tracking_uri.startswith("sqlite:///")
        and not Path(tracking_uri.removeprefix("sqlite:///").split("?", 1)[0]).exists()
    ):
        return {"model_name": model_name, "version": None, "note": "no model registry yet (no daily run)"}
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)  # never a registry set elsewhere
        version = client.get_model_version_by_alias(model_name, "champion")
    except MlflowException as exc:
        return {"model_name": model_name, "version": None, "note": f"no champion: {str(exc).splitlines()[0]}"}
    created = datetime.fromtimestamp(int(version.creation_timestamp) / 1000, UTC).replace(tzinfo=None)
    return {
        "model_name": model_name,
        "version": str(version.version),
        "run_id": version.run_id,
        "registered_at": created,
        "age_days": round((now - created).total_seconds() / 86400, 1),
        "kind": (version.tags or {}).get("relance.kind") or "-",
        "link": f"{ui_url.rstrip('/')}/#/models/{model_name}/versions/{version.version}",
    }


def ledger_in_doubt(send_ledger: Path, *, now: datetime) -> dict[str, Any]:
    """Sends whose outcome is unknown (left ``sending``): ``relance sends`` settles them."""
    from relance.send_ledger import SendLedger, sending_by_age

    if not Path(send_ledger).exists():
        return {"in_doubt": 0, "oldest_hours": None}
    with SendLedger(send_ledger) as ledger:
        rows = sending_by_age(ledger, now)
    return {
        "in_doubt": len(rows),
        "oldest_hours": round(rows[0].age.total_seconds() / 3600, 1) if rows else None,
    }


def status_problems(status: Mapping[str, Any]) -> list[str]:
    """What in a status needs a person, in words (empty when all is well): the exit code of ``relance status``."""
    problems = []
    prefect = status.get("prefect") or {}
    if prefect.get("error"):
        problems.append(f"the Prefect API ({prefect.get('source')}) cannot be read: {prefect['error']}")
    for row in status.get("deployments", []):
        last = row.get("last_run") or {}
        if last.get("state_type") in ("FAILED", "CRASHED"):
            problems.append(f"the last {row['name']} run {last.get('state_name', '').lower()}: {last.get('link')}")
    warehouse = status.get("warehouse") or {}
    for b in warehouse.get("blocking_batches", []):
        problems.append(f"batch {b['batch_id']} ({b['source']}/{b['entity']}) is {b['state']}: it blocks daily runs")
    for s in warehouse.get("sources", []):
        if not s["fresh"]:
            problems.append(f"source {s['source']} brought no new data for {s['age_hours']} h")
    for s in warehouse.get("risk_sources", []):
        if not s["fresh"]:
            problems.append(f"risk source {s['source']} has no good answer for {s['age_hours']} h")
    if (status.get("sends") or {}).get("in_doubt"):
        problems.append(f"{status['sends']['in_doubt']} send(s) in doubt: relance sends")
    claims = warehouse.get("claims") or {}
    if claims.get("days_to_nearest") is not None and claims["days_to_nearest"] <= 7:
        problems.append(f"a claim must be declared by {claims['nearest_deadline']}")
    backfill = status.get("backfill") or {}
    if backfill.get("failed"):
        problems.append(f"backfill stopped on {backfill['failed'][-1]}: relance backfill resumes there")
    return problems


def backfill_summary(data_dir: Path) -> dict[str, Any]:
    path = backfill_path(data_dir)
    if not path.exists():
        return {"path": str(path), "done": 0, "failed": []}
    try:
        entries = BackfillProgress(path).entries()
    except ValueError as exc:
        return {"path": str(path), "done": 0, "failed": [], "error": str(exc)}
    done = [d for d, e in entries.items() if e.get("status") == "done"]
    return {
        "path": str(path),
        "done": len(done),
        "first": done[0] if done else None,
        "last": done[-1] if done else None,
        "failed": [d for d, e in entries.items() if e.get("status") == "failed"],
    }


def jsonable(value: Any) -> Any:
    """``value`` with dates, datetimes, Decimals and dataclasses as JSON values (for ``--json``)."""
    if hasattr(value, "__dataclass_fields__"):
        value = asdict(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)
