"""Operator commands: ``relance serve``, ``relance status`` and ``relance backfill``.

Plain typer command functions that ``relance.cli`` registers (``app.command("serve")(operator_cli.serve)``). Like
the rest of the CLI they build the one ``Settings`` through ``relance.cli`` and load anything Prefect by import path
(``flows._deployments``, the daily flow) only once the environment is set, so ``relance/`` never imports Prefect.

Exit codes: ``status`` 0 when nothing needs a person, 1 when something does (a failed last run, a blocking batch,
stale data, sends in doubt, a claim deadline within a week, a stopped backfill: each said in words), 2 a bad
setting or deployments file. ``backfill`` 0 every date done (or already done), 1 a date failed (the next call
resumes there), 2 bad dates or no sources, 3 another run holds the data directory. ``serve`` runs until Ctrl-C.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.markup import escape
from rich.table import Table

from relance import operations
from relance.runs import RunInProgressError, daily_run_lock
from relance.settings import Settings, parse_as_of

PREFECT_DB = "prefect.db"


def _specs() -> list[operations.DeploymentSpec]:
    from relance.cli import console

    try:
        return operations.load_deployments()
    except operations.DeploymentFileError as exc:
        console.print(f"[bold red]bad deployments file[/] {escape(str(exc))}")
        raise typer.Exit(2) from None


def _local(value: Any, timezone: str) -> str:
    """A timestamp (naive UTC or aware) as the operator reads it: in the configured time zone, to the minute."""
    if value is None:
        return "-"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return f"{aware.astimezone(ZoneInfo(timezone)):%Y-%m-%d %H:%M}"
    return str(value)


# --- serve ------------------------------------------------------------------------------------------------------


def _api_answers(api_url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{api_url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def serve(
    port: Annotated[
        int, typer.Option(help="Port of the local Prefect server on 127.0.0.1 (API and UI), started if none answers.")
    ] = 4200,
    limit: Annotated[int | None, typer.Option(help="At most this many flow runs at the same time.")] = None,
) -> None:
    """Run every deployment of infra/prefect.yaml on its schedule, from this machine, until Ctrl-C.

    The schedules (daily run weekdays 06:00, weekly finance report, weekly retraining, hourly risk watch; Europe/
    Paris) need a Prefect server whose scheduler runs: with PREFECT_API_URL set, that server; otherwise the one
    answering on 127.0.0.1:PORT (`relance ui` starts one), or a server this command starts there, on the
    database under <data_dir>/prefect. Each run is a subprocess with this data directory; its UI is at
    http://127.0.0.1:PORT. On exit the schedules are paused: nothing piles up while nobody serves them.
    """
    from relance import servers
    from relance.cli import _flow, _settings, console

    settings = _settings()
    specs = _specs()
    # each run is a subprocess that builds its own Settings: same data directory whatever its working directory
    os.environ["RELANCE_DATA_DIR"] = str(settings.data)
    api_url = os.environ.get("PREFECT_API_URL")
    commands: list[list[str]] = []
    if not api_url:
        api_url = f"http://127.0.0.1:{port}/api"
        if not _api_answers(api_url):
            bindir = Path(sys.executable).parent
            commands.append([str(bindir / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)])
    env = os.environ | settings.tool_environment()
    env.pop("PREFECT_API_URL", None)  # the server serves; it does not connect anywhere
    env.pop("PREFECT_API_BLOCKS_REGISTER_ON_START", None)
    table = Table(title=f"deployments served from {operations.deployments_file()}")
    for column in ("deployment", "flow", "schedule", "parameters"):
        table.add_column(column, overflow="fold")
    for spec in specs:
        table.add_row(spec.name, spec.entrypoint, spec.schedule_text(), json.dumps(spec.parameters) or "{}")
    try:  # every flow imports before any server starts: a broken deployment is said at once
        deployments = _flow("_deployments", "runner_deployments")(specs, paused=False)
    except (ImportError, AttributeError, TypeError) as exc:
        console.print(f"[bold red]cannot load the deployments[/] {escape(f'{type(exc).__name__}: {exc}')}")
        raise typer.Exit(2) from None
    with servers.running(commands, env) as procs:
        wait_for_api = _flow("_deployments", "wait_for_api")
        try:
            wait_for_api(api_url, 180.0)
        except TimeoutError as exc:
            exited = [p for p in procs if p.poll() is not None]
            console.print(
                f"[bold red]no Prefect server[/]: {escape(str(exc))}"
                + (f" (the server exited with {exited[0].returncode}: is port {port} taken?)" if exited else "")
            )
            raise typer.Exit(2) from None
        os.environ["PREFECT_API_URL"] = api_url  # the runs' subprocesses report to the same server
        console.print(table)
        console.print(
            f"Prefect API {api_url} (UI {api_url.removesuffix('/api')}); data in {settings.data}. "
            "Ctrl-C stops serving and pauses the schedules.",
            highlight=False,
        )
        _flow("_deployments", "serve_all")(api_url=api_url, limit=limit, deployments=deployments)


def register_deployments(api_url: str) -> None:
    """Register the deployments, paused when new, with the Prefect server at ``api_url`` so its UI lists them with
    their schedules (what ``relance ui`` calls once its server is up). Never fatal: a failure is printed."""
    from relance.cli import _flow, console

    try:
        names = _flow("_deployments", "apply_all")(api_url)
    except Exception as exc:  # the UI is still useful without them
        console.print(f"[yellow]deployments not registered[/]: {escape(f'{type(exc).__name__}: {exc}')}")
        return
    console.print(f"deployments {', '.join(names)} registered (paused unless `relance serve` runs them)")


# --- status -----------------------------------------------------------------------------------------------------


def _prefect_status(settings: Settings, specs: list[operations.DeploymentSpec], limit: int) -> dict[str, Any]:
    from relance.cli import _flow

    api_url = os.environ.get("PREFECT_API_URL") or None
    database = settings.prefect_dir / PREFECT_DB
    if api_url is None and not database.exists() and not os.environ.get("PREFECT_API_DATABASE_CONNECTION_URL"):
        return {
            "source": None,
            "note": f"no Prefect run recorded yet ({database} does not exist)",
            "deployments": [
                {"name": s.name, "schedule": s.schedule_text(), "registered": False, "last_run": None} for s in specs
            ],
            "runs": [],
        }
    source = api_url or f"the database under {settings.prefect_dir} (in process)"
    try:
        overview = _flow("_deployments", "run_overview")(
            specs, api_url=api_url, ui_url=settings.prefect_ui_url, limit=limit
        )
    except Exception as exc:
        return {
            "source": source,
            "error": f"{type(exc).__name__}: {exc}",
            "deployments": [
                {"name": s.name, "schedule": s.schedule_text(), "registered": None, "last_run": None} for s in specs
            ],
            "runs": [],
        }
    return {"source": source, **overview}


def _section(what: str, read: Any) -> Any:
    """One part of the status; a warehouse built by an earlier version may lack its table: said, not fatal."""
    import duckdb

    try:
        return read()
    except duckdb.Error as exc:
        return {"error": f"{what}: {str(exc).splitlines()[0]}"}


def _warehouse_status(settings: Settings, now: datetime, today: date) -> dict[str, Any]:
    import duckdb
    import pandas as pd

    from relance.send_ledger import SendLedger
    from relance.warehouse import connect, read_relation, relation_exists

    if not settings.warehouse.exists():
        return {"path": str(settings.warehouse), "note": "no warehouse yet (no import, no daily run)"}
    try:
        con = connect(settings.warehouse, read_only=True)
    except duckdb.Error as exc:  # a run holds it read-write
        return {"path": str(settings.warehouse), "note": f"busy: {str(exc).splitlines()[0]}"}
    try:
        status: dict[str, Any] = {"path": str(settings.warehouse)}
        status["sources"] = _section(
            "sources",
            lambda: operations.source_freshness(con, now=now, max_age_hours=settings.max_source_age_hours),
        )
        status["blocking_batches"] = _section("batches", lambda: operations.blocking_batch_rows(con))
        status["risk_sources"] = _section(
            "risk sources",
            lambda: operations.risk_source_status(con, now=now, stale_after_hours=settings.risk_stale_after_hours),
        )
        status["alerts"] = _section("alerts", lambda: operations.open_alerts(con, now=now))
        status["claims"] = _section("claims", lambda: operations.claim_tasks(con, today=today))

        def calls() -> dict[str, Any]:
            outcomes = (
                read_relation(con, "staging.stg_call_outcomes", columns="reminder_key, customer_id, called_at")
                if relation_exists(con, "staging.stg_call_outcomes")
                else pd.DataFrame(columns=["reminder_key", "customer_id", "called_at"])
            )
            tasks = []
            if settings.send_ledger.exists():
                with SendLedger(settings.send_ledger) as ledger:
                    tasks = ledger.records("sent")
            return operations.pending_calls(tasks, outcomes, now=now)

        status["calls"] = _section("calls", calls)
    finally:
        con.close()
    for key in ("sources", "blocking_batches", "risk_sources"):  # a section that failed reads as empty below
        if isinstance(status.get(key), dict):
            status.setdefault("errors", []).append(status.pop(key)["error"])
    return status


def collect_status(settings: Settings, *, runs: int = 10) -> dict[str, Any]:
    """Everything ``relance status`` shows, as plain values (``--json`` prints it)."""
    from relance.freshness import today_in

    specs = _specs()
    now = datetime.now(UTC).replace(tzinfo=None)
    today = today_in(settings.timezone)
    prefect = _prefect_status(settings, specs, runs)
    status: dict[str, Any] = {
        "generated_at": now.replace(tzinfo=UTC),
        "data_dir": str(settings.data),
        "timezone": settings.timezone,
        "run_in_progress": operations.run_in_progress(settings.data),
        "prefect": {k: v for k, v in prefect.items() if k not in ("deployments", "runs")},
        "deployments": prefect["deployments"],
        "runs": prefect["runs"],
        "warehouse": _warehouse_status(settings, now, today),
        "model": operations.champion_status(
            settings.mlflow_uri, settings.model_name, now=now, ui_url=settings.mlflow_ui_url
        ),
        "sends": operations.ledger_in_doubt(settings.send_ledger, now=now),
        "backfill": operations.backfill_summary(settings.data),
    }
    status["problems"] = operations.status_problems(status)
    return status


def _age(row: Mapping[str, Any]) -> str:
    return "-" if row.get("age_hours") is None else str(row["age_hours"])


def _state(row: Mapping[str, Any] | None) -> str:
    if not row:
        return "-"
    style = {"COMPLETED": "green", "FAILED": "bold red", "CRASHED": "bold red", "RUNNING": "cyan"}.get(
        str(row.get("state_type")), "yellow"
    )
    return f"[{style}]{escape(str(row.get('state_name') or row.get('state_type')))}[/]"


def _print_status(status: dict[str, Any], tz: str) -> None:
    from relance.cli import console

    holder = status["run_in_progress"]
    console.print(
        f"[bold]relance status[/] {_local(status['generated_at'], tz)} ({tz}), data in {escape(status['data_dir'])}"
        + (
            f"\n[cyan]running now[/]: {escape(holder.get('command', '?'))} as of {holder.get('as_of_date')} "
            f"(pid {holder.get('pid')}, since {holder.get('started_at')})"
            if holder
            else ""
        ),
        highlight=False,
    )
    prefect = status["prefect"]
    table = Table(title=f"deployments (infra/prefect.yaml); runs from {escape(str(prefect.get('source') or '-'))}")
    for column in ("deployment", "schedule", "next run", "served", "last run", "state"):
        table.add_column(column, overflow="fold")
    for d in status["deployments"]:
        last = d.get("last_run")
        served = "-" if d.get("registered") in (None, False) else ("paused" if d.get("paused") else "active")
        table.add_row(
            d["name"], d["schedule"], _local(d.get("next_at"), tz), served,
            _local(last.get("started_at"), tz) if last else "never", _state(last),
        )  # fmt: skip
    console.print(table)
    for key in ("note", "error"):
        if prefect.get(key):
            console.print(f"  [yellow]Prefect[/]: {escape(str(prefect[key]))}", highlight=False)
    if status["runs"]:
        runs = Table(title="last flow runs (top level, newest first)")
        for column in ("started", "flow", "deployment", "state", "duration", "run id"):
            runs.add_column(column, overflow="fold")
        for r in status["runs"]:
            runs.add_row(
                _local(r["started_at"], tz), r["flow"], r["deployment"] or "by hand", _state(r),
                "-" if r["duration_s"] is None else f"{r['duration_s']:.0f} s", r["flow_run_id"],
            )  # fmt: skip
        console.print(runs)

    warehouse = status["warehouse"]
    if warehouse.get("note"):
        console.print(f"[yellow]warehouse[/] {escape(warehouse['path'])}: {escape(warehouse['note'])}")
    else:
        sources = Table(title="data freshness per source")
        for column in ("source", "kind", "last new data", "age (h)", "last read / attempt", "fresh", "detail"):
            sources.add_column(column, overflow="fold")
        for s in warehouse.get("sources", []):
            marks = ", ".join(f"{k}={v}" for k, v in (s.get("watermarks") or {}).items())
            sources.add_row(
                s["source"], "receivables", _local(s["last_new_data_at"], tz), _age(s),
                _local(s["last_read_at"], tz), "[green]yes[/]" if s["fresh"] else "[bold red]no[/]",
                escape(", ".join(s["entities"]) + (f"; watermarks {marks}" if marks else "")),
            )  # fmt: skip
        for s in warehouse.get("risk_sources", []):
            sources.add_row(
                s["source"], "company risk", _local(s["last_success_at"], tz), _age(s),
                _local(s["last_attempt_at"], tz), "[green]yes[/]" if s["fresh"] else "[bold red]no[/]",
                escape(f"{s['checks']} check(s), {s['in_error']} in error" + (
                    f": {s['last_error']}" if s["last_error"] else "")),
            )  # fmt: skip
        console.print(sources)
        for b in warehouse.get("blocking_batches", []):
            console.print(
                f"[bold red]blocking batch[/] {b['batch_id']} ({escape(str(b['source']))}/{b['entity']}, {b['state']}):"
                " `relance batches`",
                highlight=False,
            )
        calls, claims, alerts = warehouse.get("calls", {}), warehouse.get("claims", {}), warehouse.get("alerts", {})
        work = Table(title="open work", show_header=False)
        work.add_column("what", no_wrap=True)
        work.add_column("state", overflow="fold")
        if "error" in calls:
            work.add_row("pending calls", escape(calls["error"]))
        else:
            work.add_row(
                "pending calls",
                f"{calls['pending']} call task(s) of the last {calls['days']} days without an outcome"
                + (f", the oldest listed {_local(calls['oldest_listed_at'], tz)}" if calls["pending"] else "")
                + " (outbox/calls; `relance calls import` records outcomes)",
            )
        if "error" in claims:
            work.add_row("claim tasks", escape(claims["error"]))
        else:
            work.add_row(
                "claim tasks",
                f"{claims['to_declare']} claim(s) to declare"
                + (
                    f", nearest deadline {claims['nearest_deadline']} ({claims['days_to_nearest']} day(s))"
                    if claims["to_declare"]
                    else ""
                )
                + f"; {claims['deadline_passed']} past their deadline"
                + (f" (as of {claims['as_of_date']})" if claims.get("as_of_date") else ""),
            )
        if "error" in alerts:
            work.add_row("open alerts", escape(alerts["error"]))
        else:
            kinds = ", ".join(f"{k} {v}" for k, v in alerts["by_type"].items())
            work.add_row(
                "open alerts",
                f"{alerts['recent']} risk alert(s) raised in the last {alerts['days']} days"
                + (f" ({kinds})" if kinds else "")
                + f"; {alerts['not_emailed']} not emailed yet",
            )
        sends = status["sends"]
        work.add_row(
            "sends in doubt",
            f"{sends['in_doubt']}"
            + (f", the oldest for {sends['oldest_hours']} h: `relance sends`" if sends["in_doubt"] else ""),
        )
        console.print(work)
        for error in warehouse.get("errors", []):
            console.print(f"  [yellow]warehouse[/]: {escape(error)}", highlight=False)

    model = status["model"]
    if model.get("version"):
        console.print(
            f"champion: {model['model_name']} v{model['version']} ({model.get('kind') or '-'}), registered "
            f"{_local(model['registered_at'], tz)}, {model['age_days']} day(s) old: {model['link']}",
            highlight=False,
        )
    else:
        console.print(f"champion: [yellow]none[/] ({escape(str(model.get('note')))})", highlight=False)
    backfill = status["backfill"]
    if backfill.get("done") or backfill.get("failed"):
        console.print(
            f"backfill: {backfill['done']} date(s) done ({backfill.get('first')} .. {backfill.get('last')})"
            + (f", stopped on {backfill['failed'][-1]}" if backfill["failed"] else ""),
            highlight=False,
        )
    if status["problems"]:
        console.print("[bold red]needs attention[/]:")
        for problem in status["problems"]:
            console.print(f"  - {escape(problem)}", highlight=False)
    else:
        console.print("[green]nothing needs attention[/]")


def status(
    json_out: Annotated[bool, typer.Option("--json", help="Print the status as JSON (for monitoring).")] = False,
    runs: Annotated[int, typer.Option(help="How many recent flow runs to list.")] = 10,
) -> None:
    """Where relance stands: each deployment's schedule, next and last run; the last flow runs and their states;
    data freshness per source (receivables and company risk); the champion model and its age; pending call tasks,
    claims to declare, open risk alerts and sends in doubt. Exit code 1 when something needs a person (listed at
    the end), else 0. Reads runs from PREFECT_API_URL when set, else from the Prefect database under the data
    directory, in process (a few seconds, no server)."""
    from relance.cli import _settings

    settings = _settings()
    payload = collect_status(settings, runs=runs)
    if json_out:
        typer.echo(json.dumps(operations.jsonable(payload), indent=2, ensure_ascii=False))
    else:
        _print_status(payload, settings.timezone)
    if payload["problems"]:
        raise typer.Exit(1)


# --- backfill ---------------------------------------------------------------------------------------------------


def _date_option(value: str, hint: str) -> date:
    try:
        return parse_as_of(value, date.today())
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=hint) from None


def daily_summary(result: Any) -> dict[str, Any]:
    """What the progress file keeps about one day's run (``relance.runs.DailyResult``)."""
    return {
        "flow_run_id": result.flow_run_id,
        "dbt_invocation_id": result.dbt_invocation_id,
        "champion_version": result.champion_version,
        "scored": result.scored,
        "reminders_sent": result.reminders_sent,
        "sending_held": list(result.sending_held),
    }


def backfill(
    from_: Annotated[str, typer.Option("--from", help="First as-of date, YYYY-MM-DD.")],
    to: Annotated[str, typer.Option("--to", help="Last as-of date, YYYY-MM-DD (included).")],
    send: Annotated[
        bool,
        typer.Option("--send", help="Send the reminders of past dates too (by default a past date sends nothing)."),
    ] = False,
    allow_stale_sources: Annotated[
        bool, typer.Option("--allow-stale-sources", help="Send although a source brought no new data lately.")
    ] = False,
    weekdays_only: Annotated[
        bool, typer.Option("--weekdays-only", help="Monday to Friday only, the daily deployment's days.")
    ] = False,
    redo: Annotated[bool, typer.Option("--redo", help="Run again the dates already done.")] = False,
) -> None:
    """Run the daily pipeline for each date from --from to --to, in order, each once.

    The dates done are kept in <data_dir>/backfill.json: a date already done is skipped, so the same command after
    a failure or Ctrl-C resumes where it stopped. The first date that fails stops the backfill (later dates build
    on it). Sends follow the daily rule: a past date sends nothing unless --send; today sends when every source
    is fresh. The data directory's lock is held throughout: no other daily run interleaves.
    """
    from relance.cli import _check_sources, _flow, _settings, console

    settings = _settings()
    start, end = _date_option(from_, "--from"), _date_option(to, "--to")
    try:
        dates = operations.backfill_dates(start, end, weekdays_only=weekdays_only)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--to") from None
    if not dates:
        console.print("no date to run in that range")
        return
    _check_sources(settings)
    try:
        progress = operations.BackfillProgress(operations.backfill_path(settings.data))
    except ValueError as exc:
        console.print(f"[bold red]cannot resume[/] {escape(str(exc))}")
        raise typer.Exit(2) from None

    def show(day: operations.BackfillDay) -> None:
        d = day.details
        if day.outcome == "skipped":
            console.print(f"{day.as_of_date} [dim]already done[/] ({d.get('finished_at')}, run {d.get('flow_run_id')})")
        elif day.outcome == "done":
            held = "; nothing sent: " + "; ".join(d["sending_held"]) if d.get("sending_held") else ""
            console.print(
                f"{day.as_of_date} [green]done[/]: run {d.get('flow_run_id')}, {d.get('scored')} scored, "
                f"{d.get('reminders_sent')} sent{escape(held)}",
                highlight=False,
            )
        else:
            console.print(f"{day.as_of_date} [bold red]failed[/]: {escape(str(d.get('error')))}", highlight=False)

    console.print(
        f"backfill {dates[0]} .. {dates[-1]}: {len(dates)} date(s), "
        f"{sum(progress.is_done(d) for d in dates) if not redo else 0} already done; progress in {progress.path}"
    )
    try:
        with daily_run_lock(settings.data, as_of_date=dates[0], what="relance backfill"):

            def run_day(day: date) -> dict[str, Any]:
                daily = _flow("daily_collections", "daily_collections")  # loaded once a date is to run
                with console.status(f"[bold]daily collections as of {day}[/] (Prefect logs below)"):
                    result = daily(
                        as_of_date=day, settings=settings, send_backfill=send, allow_stale_sources=allow_stale_sources
                    )
                return daily_summary(result) | {"send": send}

            results = operations.run_backfill(progress, dates, run_day, redo=redo, on_day=show)
    except RunInProgressError as exc:
        console.print(f"[bold red]refused:[/] {escape(str(exc))}")
        raise typer.Exit(3) from None
    done = sum(r.outcome == "done" for r in results)
    skipped = sum(r.outcome == "skipped" for r in results)
    failed = [r for r in results if r.outcome == "failed"]
    console.print(
        f"backfill: {done} date(s) run, {skipped} already done"
        + (f"; stopped on {failed[0].as_of_date}, {len(dates) - len(results)} left" if failed else "")
    )
    if failed:
        console.print("fix the cause, then run the same command again: it resumes on that date")
        raise typer.Exit(1)
