"""The `relance` command line.

The CLI is the entry point: it builds the one ``Settings`` object, exports the environment Prefect reads at import
(its home under the data directory; telemetry off), and only then loads ``flows/`` by import path. It imports no
Prefect itself, so ``relance/`` stays free of orchestration. It works from any directory: the files it ships (dbt
project, profiles, templates) are found through the installed package, the data under ``./data`` or
``RELANCE_DATA_DIR``.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import shutil
import sys
import time
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from relance import lineage_cli, operator_cli, servers
from relance.calls_cli import calls_app
from relance.runs import DailyResult, RunInProgressError, StopRun, daily_run_lock
from relance.settings import Settings, parse_as_of
from relance.webhooks.cli import webhooks_app

app = typer.Typer(help="relance: collect unpaid invoices with data and ML.", no_args_is_help=True)
run_app = typer.Typer(help="Run a pipeline.", no_args_is_help=True)
app.add_typer(run_app, name="run")
batches_app = typer.Typer(
    help="Load batches and their data-contract state; exclude a batch that failed.", invoke_without_command=True
)
app.add_typer(batches_app, name="batches")
sends_app = typer.Typer(
    help="The durable send ledger: what was sent, what is in doubt, and settling it.", invoke_without_command=True
)
app.add_typer(sends_app, name="sends")
model_app = typer.Typer(help="The payment-delay model in the MLflow registry.", no_args_is_help=True)
app.add_typer(model_app, name="model")
risk_app = typer.Typer(
    help="External company-risk data: BODACC, Recherche d'entreprises, Companies House.", no_args_is_help=True
)
app.add_typer(risk_app, name="risk")
app.add_typer(calls_app, name="calls")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(lineage_cli.app, name="lineage")
app.command("serve")(operator_cli.serve)
app.command("status")(operator_cli.status)
app.command("backfill")(operator_cli.backfill)
contacts_app = typer.Typer(
    help="Who must not be contacted, on which channel: set, lift and list suppressions.", no_args_is_help=True
)
app.add_typer(contacts_app, name="contacts")
policy_app = typer.Typer(help="Reminder scenarios (YAML): validate one, show the set in use.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
console = Console()


def _version(value: bool) -> None:
    if value:
        from relance.lineage import git_sha, package_version

        sha = git_sha()
        console.print(f"relance {package_version()}" + (f" (git {sha[:12]})" if sha != "unknown" else ""))
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """relance: collect unpaid invoices with data and ML."""


DEMO_END_DATE = date(2026, 10, 31)


def _settings() -> Settings:
    """The one Settings object; a bad value (``RELANCE_PG_PORT=abc``) is a message and exit code 2."""
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(f"RELANCE_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        console.print(f"[bold red]bad setting[/] {escape(problems)}")
        raise typer.Exit(2) from None
    settings.ensure_dirs()
    from relance.redaction import install_log_redaction

    install_log_redaction(settings)  # no credential reaches a log line, whichever library writes it
    for key, value in settings.tool_environment().items():
        os.environ.setdefault(key, value)
    return settings


def _flow(module: str, name: str):
    """Load a flow lazily: importing Prefect costs seconds and must follow the environment set-up above."""
    return getattr(importlib.import_module(f"flows.{module}"), name)


def _as_of(value: str | None, default: date) -> date:
    try:
        return parse_as_of(value, default)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--as-of") from None


def input_files(paths: list[Path], in_directory, kind: str, suffixes: str) -> list[Path]:
    """The files a command reads: each path given, or ``in_directory(path)`` for a directory. A missing path, or
    nothing to read at all, is ``typer.Exit(2)`` with the reason (``kind``: 'notice file', 'call file')."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += in_directory(path)
        elif path.is_file():
            files.append(path)
        else:
            console.print(f"[bold red]no such file[/] {escape(str(path))}")
            raise typer.Exit(2)
    if not files:
        console.print(f"[bold red]no {kind}[/] {suffixes} in " + escape(", ".join(map(str, paths))))
        raise typer.Exit(2)
    return files


def _today(settings: Settings) -> date:
    """Today in the configured time zone (the default as-of date, and the one the freshness guard wants)."""
    from relance.freshness import FreshnessConfigError, today_in

    try:
        return today_in(settings.timezone)
    except FreshnessConfigError as exc:
        console.print(f"[bold red]bad setting[/] {escape(str(exc))}")
        raise typer.Exit(2) from None


def _check_sources(settings: Settings) -> None:
    """Before anything starts: every configured source exists (a directory with files in it). Exit code 2."""
    missing = [
        f"{source.path} ({source.profile})"
        for source in settings.daily_sources
        if not source.path.exists() or (source.path.is_dir() and not any(source.path.iterdir()))
    ]
    if missing:
        console.print(
            f"[bold red]nothing to import, nothing was run:[/] {escape(', '.join(missing))} missing or empty; "
            "drop the exports there, set RELANCE_SOURCES, or try `relance demo`"
        )
        raise typer.Exit(2)


def _run_daily(
    settings: Settings,
    as_of: date,
    *,
    full_refresh: bool = False,
    send_backfill: bool = False,
    allow_stale_sources: bool = False,
    weekly_report: bool | None = None,
) -> DailyResult:
    """The daily flow, under the data directory's lock, taken before Prefect starts so a second run refuses at
    once (exit code 3) instead of after a server start-up."""
    from relance.ingest import IngestError
    from relance.sources.base import SourceError

    try:
        with daily_run_lock(settings.data, as_of_date=as_of):
            daily = _flow("daily_collections", "daily_collections")
            with console.status(f"[bold]daily collections as of {as_of}[/] (Prefect logs below)"):
                return daily(
                    as_of_date=as_of,
                    settings=settings,
                    full_refresh_features=full_refresh,
                    send_backfill=send_backfill,
                    allow_stale_sources=allow_stale_sources,
                    weekly_report=weekly_report,
                )
    except RunInProgressError as exc:
        console.print(f"[bold red]refused:[/] {escape(str(exc))}")
        raise typer.Exit(3) from None
    except StopRun as exc:
        console.print(f"[bold red]stopped, nothing was sent:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    except (SourceError, IngestError) as exc:
        console.print(f"[bold red]cannot read the sources, nothing was sent:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None


def _print_result(result: DailyResult, json_path: Path | None) -> None:
    table = Table(title=f"daily collections as of {result.as_of_date}", show_header=False)
    table.add_column("what", no_wrap=True)
    table.add_column("value", overflow="fold")  # ids and paths in full, folded, never cut with an ellipsis
    for key, value in result.rows():
        table.add_row(key, value)
    console.print(table)
    if not result.model_trained:
        console.print(f"[bold yellow]no model was trained[/]: {escape(result.model_note)}", highlight=False)
    if result.sending_held:
        console.print("[bold yellow]nothing was sent[/] (features, scores and the report were computed):")
        for reason in result.sending_held:
            console.print(f"  - {escape(reason)}", highlight=False)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(result.to_json(), encoding="utf-8")


JsonOption = Annotated[
    Path | None, typer.Option("--json", help="Also write the run's result (ids, counts) to this JSON file.")
]


@app.command()
def generate(
    customers: Annotated[int, typer.Option(help="Number of customers.")] = 2000,
    invoices: Annotated[int, typer.Option(help="Number of invoices.")] = 60_000,
    months: Annotated[int, typer.Option(help="Months of history.")] = 24,
    end_date: Annotated[str, typer.Option(help="Export date YYYY-MM-DD.")] = DEMO_END_DATE.isoformat(),
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same files).")] = 42,
    file_format: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
) -> None:
    """Generate seeded demo receivables into the landing directory (ground truth kept apart)."""
    from relance.demo.generate import generate_demo

    settings = _settings()
    with console.status(f"generating {invoices:,} invoices for {customers:,} customers"):
        summary = generate_demo(
            settings.landing,
            settings.ground_truth_dir,
            n_customers=customers,
            n_invoices=invoices,
            months=months,
            end_date=parse_as_of(end_date, DEMO_END_DATE),
            seed=seed,
            file_format=file_format,  # type: ignore[arg-type]
        )
    console.print(
        f"[green]generated[/] {summary.invoices:,} invoices, {summary.payments:,} payments, "
        f"{summary.reminders:,} past reminders in {summary.seconds:.1f}s -> {settings.landing}"
    )


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="File or directory to import (for --profile sql: the YAML config).")],
    profile: Annotated[str, typer.Option(help="demo, ibm_ar, fec, sql, or a profile YAML path.")] = "demo",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would load; write nothing.")] = False,
) -> None:
    """Import receivables into the raw tables and validate them; print the counts and the validation summary."""
    from relance.importer import IngestError, SourceError
    from relance.warehouse import connection

    settings = _settings()  # before any flow module: Prefect reads its home when it is imported
    import_source = _flow("import_receivables", "import_source")  # composes loading and validation
    # a dry run into a warehouse that does not exist yet works on an empty one in memory: nothing is created
    target = ":memory:" if dry_run and not settings.warehouse.exists() else settings.warehouse
    try:
        with connection(target) as con, console.status(f"importing {path} ({profile})"):
            report = import_source(
                con, path, profile=profile, gx_dir=settings.gx_dir, flow_run_id=None, dry_run=dry_run
            )
    except (SourceError, IngestError) as exc:
        console.print(f"[bold red]cannot import[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    verb = "would load" if dry_run else "loaded"
    table = Table(title=f"{report.source_name}: {verb}" + (" (dry run, nothing written)" if dry_run else ""))
    for col in ("entity", "status", "read", "loaded", "unchanged", "quarantined"):
        table.add_column(col, justify="left" if col in ("entity", "status") else "right")
    for b in report.load.batches:
        table.add_row(
            b.entity,
            b.status,
            f"{b.rows_read:,}",
            f"{b.rows_loaded:,}",
            f"{b.rows_unchanged:,}",
            f"{b.rows_quarantined:,}",
        )
    console.print(table)
    for r in report.load.rejected[:20]:
        console.print(f"  [yellow]quarantined[/] {r.entity}: {escape(r.reason)}")
    v = report.validation
    if v is not None and not v.success and not dry_run:
        console.print(
            "[bold red]the failed batch is kept and blocks every daily run[/] until a corrected file of the same "
            "source passes, or `relance batches quarantine BATCH_ID` excludes it (`relance batches` lists them)"
        )
    if v is not None:
        console.print(
            f"validation: {'[green]passed[/]' if v.success else '[bold red]FAILED[/]'}, "
            f"{v.quarantined_rows} row(s) quarantined by data contracts"
        )
        for m in v.critical_failures:
            console.print(f"  [bold red]critical[/] {escape(m)}")
        for m in v.warning_failures[:20]:
            console.print(f"  [yellow]warning[/] {escape(m)}")
        if v.data_docs_index and not dry_run:
            console.print(f"GX data docs: {v.data_docs_index}")
    if not report.success:
        raise typer.Exit(1)


@run_app.command("daily")
def run_daily(
    as_of: Annotated[str | None, typer.Option("--as-of", help="As-of date YYYY-MM-DD (default: today).")] = None,
    full_refresh: Annotated[
        bool,
        typer.Option(
            "--full-refresh",
            help="Rebuild every training snapshot of ml_invoice_features from raw (after correcting past data). "
            "By default only new snapshot dates and the run's own date are built.",
        ),
    ] = False,
    send_backfill: Annotated[
        bool,
        typer.Option(
            "--send-backfill",
            help="Send reminders although the as-of date is not today (by default a backfill computes features, "
            "scores and reports, and sends nothing).",
        ),
    ] = False,
    allow_stale_sources: Annotated[
        bool,
        typer.Option(
            "--allow-stale-sources",
            help="Send reminders although a source brought no new data within RELANCE_MAX_SOURCE_AGE_HOURS.",
        ),
    ] = False,
    weekly_report: Annotated[
        bool | None,
        typer.Option(
            "--weekly-report/--no-weekly-report",
            help="Write and email the weekly finance report too (default: on Mondays; the flash goes every day).",
            show_default=False,
        ),
    ] = None,
    json_path: JsonOption = None,
) -> None:
    """Run the daily collections pipeline once. Re-running a date sends nothing new; a second run on the same data
    directory while one is running refuses at once (exit code 3); data that fails its contract stops the run
    before anything is sent, on this run and every later one until it is fixed (exit code 1); a source that
    cannot be read, exit code 2. Reminders go out only when the as-of date is today and every source is fresh:
    otherwise the run computes everything else and says why nothing was sent."""
    settings = _settings()
    day = _as_of(as_of, _today(settings))
    _check_sources(settings)
    result = _run_daily(
        settings,
        day,
        full_refresh=full_refresh,
        send_backfill=send_backfill,
        allow_stale_sources=allow_stale_sources,
        weekly_report=weekly_report,
    )
    _print_result(result, json_path)


@run_app.command("risk")
def run_risk(
    as_of: Annotated[str | None, typer.Option("--as-of", help="As-of date YYYY-MM-DD (default: today).")] = None,
) -> None:
    """Refresh the company-risk data alone (what the daily run does before dbt): notice files in
    <landing>/risk, or the live registries with RELANCE_RISK_MODE=live. A source that fails is reported, never
    fatal: exit 0 with the errors listed; exit 3 while a daily run holds the data directory. The next daily run
    (or the check just before each send) acts on what it loaded."""
    settings = _settings()
    day = _as_of(as_of, _today(settings))
    try:
        # the data directory's lock: the warehouse has one writer at a time (a daily run holds it for its refresh)
        with daily_run_lock(settings.data, as_of_date=day, what="relance run risk"):
            refresh = _flow("refresh_company_risk", "refresh_company_risk")
            with console.status(f"[bold]company-risk data as of {day}[/] ({settings.risk_mode})"):
                result = refresh(settings, day)
    except RunInProgressError as exc:
        console.print(f"[bold red]refused:[/] {escape(str(exc))}")
        raise typer.Exit(3) from None
    console.print(escape(result.as_markdown()), highlight=False)


def _company(identifier: str) -> tuple[str, str]:
    """A SIREN (9 digits, spaces allowed) or a UK company number -> (registry, id), checked by the clients' own
    rules (Luhn for a SIREN, the 8-character form for Companies House) before any request."""
    from relance.risk.companies_house import normalise_company_number
    from relance.risk.events import REGISTRY_FR, REGISTRY_GB
    from relance.risk.recherche import validate_siren

    compact = "".join(identifier.split())
    try:
        if compact.isdigit() and len(compact) == 9:
            return REGISTRY_FR, validate_siren(compact)
        return REGISTRY_GB, normalise_company_number(compact)
    except ValueError as exc:
        raise typer.BadParameter(f"{exc}; a French company is a SIREN (9 digits)", param_hint="ID") from None


@risk_app.command("check")
def risk_check(
    identifier: Annotated[str, typer.Argument(metavar="ID", help="SIREN (9 digits) or UK company number.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the events and profiles as JSON.")] = False,
) -> None:
    """Ask the live registries about one company now and print its normalised events (needs internet; writes
    nothing). Exit 2 when every source that covers it failed."""
    import json as json_module
    from datetime import date as date_type

    from relance.risk.providers import Company, build_providers

    settings = _settings()
    registry, company_id = _company(identifier)
    company = Company(registry, company_id)
    providers = [p for p in build_providers(settings, settings.data / "risk_cache") if registry in p.registries]
    if not providers:
        console.print(f"[bold red]no configured provider covers {registry}[/] (see RELANCE_RISK_PROVIDERS)")
        raise typer.Exit(2)
    today = date_type.today()
    events, profiles, errors = [], [], {}
    for provider in providers:
        with console.status(f"asking {provider.name} about {company_id}"):
            try:
                result = provider.fetch([company], watermarks={}, previous={}, today=today)
            except Exception as exc:  # a provider's bug: shown, the others still answer
                errors[provider.name] = f"{type(exc).__name__}: {exc}"
                continue
        events += result.events
        profiles += result.profiles
        if result.errors:
            errors[provider.name] = "; ".join(result.errors.values())
    if json_out:
        payload = {
            "company": {"registry": registry, "company_id": company_id},
            "events": [e.as_row() for e in events],
            "profiles": [p.as_row() for p in profiles],
            "errors": errors,
        }
        typer.echo(json_module.dumps(payload, default=str, ensure_ascii=False, indent=2))
    else:
        for p in profiles:
            console.print(
                f"[bold]{escape(p.company_name or company_id)}[/] ({p.publisher}): status {p.status or '?'}"
                + (f", closed {p.closure_date}" if p.closure_date else "")
                + f", NAF {p.naf_code or '?'}, headcount band {p.headcount_band or '?'}"
                + (f", accounts {p.accounts_year}" if p.accounts_year else ""),
                highlight=False,
            )
        table = Table(title=f"{len(events)} event(s) for {registry} {company_id}")
        for col in ("published", "event", "subtype", "date", "detail", "source"):
            table.add_column(col, overflow="fold")
        for e in sorted(events, key=lambda e: (e.published_date, e.event_id), reverse=True):
            table.add_row(
                str(e.published_date), e.event_type, e.event_subtype or "", str(e.event_date or ""),
                escape(e.detail or ""), e.publisher,
            )  # fmt: skip
        console.print(table)
        for name, error in errors.items():
            console.print(f"[bold yellow]{name}[/]: {escape(error)}", highlight=False)
    if errors and len(errors) == len(providers):
        raise typer.Exit(2)


@risk_app.command("import")
def risk_import(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Notice files (BODACC JSON / JSON Lines, Recherche "
            "d'entreprises or Companies House payloads), or directories."
        ),
    ],
) -> None:
    """Load files of company-risk notices into raw.company_events / raw.company_profiles (validated by their data
    contract; a file loaded before is unchanged). The next daily run stops dunning and raises the alerts. Exit 2
    if a file could not be read, 1 if a batch failed its contract."""
    from relance.risk.load import notice_files
    from relance.warehouse import connection

    settings = _settings()
    files = input_files(paths, notice_files, "notice file", "(.json, .jsonl)")
    import_notice_files = _flow("refresh_company_risk", "import_notice_files")
    settings.ensure_dirs()
    try:
        with (
            daily_run_lock(settings.data, as_of_date=_today(settings), what="relance risk import"),
            connection(settings.warehouse) as con,
            console.status(f"importing {len(files)} notice file(s)"),
        ):
            imports = import_notice_files(con, files, gx_dir=settings.gx_dir, flow_run_id=None)
    except RunInProgressError as exc:
        console.print(f"[bold red]refused:[/] {escape(str(exc))}")
        raise typer.Exit(3) from None
    table = Table(title="company-risk notices")
    for col in ("file", "events", "profiles", "rows loaded", "unchanged", "outcome"):
        table.add_column(col, overflow="fold", justify="left" if col in ("file", "outcome") else "right")
    for item in imports:
        outcome = (
            "[bold red]unreadable[/]"
            if item.error
            else "[bold red]contract failed[/]"
            if item.contract_failures
            else "[green]loaded[/]"
        )
        table.add_row(
            item.path.name, str(item.events), str(item.profiles), str(item.rows_loaded), str(item.rows_unchanged),
            outcome,
        )  # fmt: skip
    console.print(table)
    for item in imports:  # the reasons in full, one per line, under the table
        if item.error:
            console.print(f"[bold red]{escape(item.path.name)}[/]: {escape(item.error)}", highlight=False)
        for failure in item.contract_failures:
            console.print(f"[bold red]{escape(item.path.name)}[/] contract: {escape(failure)}", highlight=False)
    if any(i.error for i in imports):
        raise typer.Exit(2)
    if any(i.contract_failures for i in imports):
        raise typer.Exit(1)


_STATE_STYLE = {"failed": "bold red", "pending": "yellow", "quarantined": "magenta", "superseded": "dim"}


@batches_app.callback()
def batches(
    ctx: typer.Context,
    state: Annotated[
        list[str] | None,
        typer.Option(
            "--state", help="Only batches in this state (repeatable): pending, passed, failed, superseded, quarantined."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many batches, newest first.")] = 50,
) -> None:
    """List load batches, newest first, with their data-contract state. A `failed` batch stops every daily run
    before dbt until a corrected file of the same source passes (the failed one is then `superseded`) or
    `relance batches quarantine BATCH_ID` excludes it. Exit code 1 when any batch blocks the daily run."""
    if ctx.invoked_subcommand is not None:
        return
    from relance import ops
    from relance.warehouse import connection

    settings = _settings()
    unknown = sorted(set(state or ()) - set(ops.VALIDATION_STATES))
    if unknown:
        raise typer.BadParameter(f"unknown state(s) {', '.join(unknown)}", param_hint="--state")
    if not settings.warehouse.exists():
        console.print(f"no warehouse at {settings.warehouse}: nothing was imported yet")
        return
    with connection(settings.warehouse, read_only=True) as con:
        rows = ops.list_batches(con, states=state, limit=limit)
        blocking = ops.blocking_batches(con)
    table = Table(title=f"load batches in {settings.warehouse}")
    for col in ("batch", "source/entity", "file", "loaded at (UTC)", "read", "loaded", "quarantined", "state"):
        table.add_column(
            col,
            overflow="fold",
            no_wrap=col in ("batch", "loaded at (UTC)"),  # an id to copy into `relance batches quarantine`
            justify="right" if col in ("read", "loaded", "quarantined") else "left",
        )
    for b in rows:
        style = _STATE_STYLE.get(b.state, "green")
        table.add_row(
            b.batch_id,
            f"{b.source_name or '-'}/{b.entity}",
            escape(Path(b.source_file).name if "://" not in b.source_file else b.source_file),
            f"{b.loaded_at:%Y-%m-%d %H:%M}" if b.loaded_at else "",
            f"{b.rows_read:,}",
            f"{b.rows_loaded:,}",
            f"{b.rows_quarantined + b.rows_flagged:,}",
            # the note says who superseded or quarantined it and why (not which validation run passed it)
            f"[{style}]{b.state}[/]"
            + (f"\n{escape(b.state_note)}" if b.state_note and b.state in ("superseded", "quarantined") else ""),
        )
    console.print(table)
    if blocking:
        console.print(
            f"[bold red]{len(blocking)} batch(es) block the daily run[/]: deliver a corrected file of the same "
            "source, or `relance batches quarantine BATCH_ID --reason TEXT`"
        )
        raise typer.Exit(1)


@batches_app.command("quarantine")
def batches_quarantine(
    batch_id: Annotated[str, typer.Argument(help="The batch to exclude (from `relance batches`).")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept with the batch, shown by `relance batches`).")],
) -> None:
    """Exclude a whole batch: its rows leave the current state, and a failed batch stops blocking the daily run."""
    from datetime import UTC, datetime

    from relance import ops
    from relance.warehouse import connection

    settings = _settings()
    if not reason.strip():
        raise typer.BadParameter("say why the batch is excluded", param_hint="--reason")
    try:
        with (
            daily_run_lock(settings.data, as_of_date=date.today(), what="relance batches quarantine"),
            connection(settings.warehouse) as con,
        ):
            state = ops.quarantine_batch(
                con,
                batch_id,
                note=f"quarantined by {os.environ.get('USER', 'an operator')}: {reason.strip()}",
                at=datetime.now(UTC).replace(tzinfo=None),
            )
    except RunInProgressError as exc:
        console.print(f"[bold red]refused:[/] {escape(str(exc))}")
        raise typer.Exit(3) from None
    except ValueError as exc:
        console.print(f"[bold red]cannot quarantine[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    console.print(
        f"batch {state.batch_id} ({state.source_name or '-'}/{state.entity}, {escape(state.source_file)}) is "
        f"[magenta]quarantined[/]: its {state.rows_loaded:,} row(s) are excluded from the next run"
    )


@sends_app.callback()
def sends(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option("--status", help="Only rows in this status: sending, sent or failed.")
    ] = "sending",
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 50,
) -> None:
    """List send-ledger rows (by default the ones left in `sending`: a run died or the provider did not answer,
    so the customer may have the message). Look each key up (SendGrid activity feed: it is a custom arg; the
    outbox), then settle it with `relance sends reconcile KEY --status sent|failed`. Exit 1 while any row is
    in `sending`."""
    if ctx.invoked_subcommand is not None:
        return
    from relance.send_ledger import STATUSES, SendLedger

    settings = _settings()
    if status is not None and status not in STATUSES:
        raise typer.BadParameter(f"one of {', '.join(STATUSES)}", param_hint="--status")
    if not settings.send_ledger.exists():
        console.print(f"no send ledger at {settings.send_ledger}: nothing was ever sent from this data directory")
        return
    from datetime import UTC, datetime

    from relance.send_ledger import sending_by_age

    with SendLedger(settings.send_ledger) as ledger:
        rows = ledger.records(status)  # type: ignore[arg-type]
        in_doubt = sending_by_age(ledger, datetime.now(UTC))
    stuck = len(in_doubt)
    table = Table(title=f"send ledger {settings.send_ledger}" + (f" ({status})" if status else ""))
    for col in ("reminder", "channel", "status", "invoice", "customer", "step", "attempts", "updated (UTC)", "note"):
        table.add_column(col, overflow="fold")
    for r in rows[:limit]:
        table.add_row(
            r.reminder_key, r.channel, r.status, r.invoice_id or "", r.customer_id or "", r.step or "",
            str(r.attempts), r.updated_at[:16], escape(r.last_error or r.provider_message_id or r.outbox_path or ""),
        )  # fmt: skip
    console.print(table)
    console.print(f"{len(rows):,} row(s)" + (f", {limit} shown" if len(rows) > limit else ""))
    if stuck:
        oldest = in_doubt[0]
        hours = oldest.age.total_seconds() / 3600
        console.print(
            f"[bold yellow]{stuck} reminder(s) in doubt[/] (outcome unknown; the oldest, {oldest.reminder_key[:12]}, "
            f"for {hours:.1f} h): a provider event settles them, or `relance sends reconcile KEY --status sent|failed`"
        )
        raise typer.Exit(1)


@sends_app.command("reconcile")
def sends_reconcile(
    key: Annotated[str, typer.Argument(help="The reminder_key (from `relance sends`).")],
    status: Annotated[
        str,
        typer.Option(
            "--status", help="sent: it did go out (never resent); failed: it did not (the next run sends it)."
        ),
    ],
    note: Annotated[str, typer.Option("--note", help="What you checked (kept in the ledger's events).")],
    provider_message_id: Annotated[
        str | None, typer.Option("--provider-message-id", help="The provider's id, when you found the message.")
    ] = None,
) -> None:
    """Settle a reminder left in `sending` (or a `failed` one that did go out). `sent` is final."""
    from relance.send_ledger import SendLedger

    settings = _settings()
    if status not in ("sent", "failed"):
        raise typer.BadParameter("sent or failed", param_hint="--status")
    if not note.strip():
        raise typer.BadParameter("say what you checked", param_hint="--note")
    try:
        with SendLedger(settings.send_ledger) as ledger:
            before = ledger.reconcile(
                key,
                status,  # type: ignore[arg-type]
                note=f"{os.environ.get('USER', 'an operator')}: {note.strip()}",
                provider_message_id=provider_message_id,
            )
    except (KeyError, ValueError) as exc:
        console.print(f"[bold red]cannot reconcile[/] {escape(str(exc).strip(chr(39)))}")
        raise typer.Exit(2) from None
    console.print(f"reminder {key}: {before} -> [bold]{status}[/]")


_CHANNEL_HELP = "email, sms, letter, call, or '*' for every channel (do not contact at all)."


def _suppression_channel(channel: str) -> str:
    if channel not in ("email", "sms", "letter", "call", "*"):
        console.print(f"[bold red]unknown channel[/] {escape(channel)}: {_CHANNEL_HELP}")
        raise typer.Exit(2)
    return channel


@contextlib.contextmanager
def _contacts_warehouse(what: str):
    """The warehouse, under the daily-run lock (exit 3 when a run holds it: its own suppressions are being read)."""
    from relance.warehouse import connection, ensure_schemas

    settings = _settings()
    try:
        with (
            daily_run_lock(settings.data, as_of_date=_today(settings), what=what),
            connection(settings.warehouse) as con,
        ):
            ensure_schemas(con)
            yield con
    except RunInProgressError as exc:
        console.print(f"[bold red]refused:[/] {escape(str(exc))}")
        raise typer.Exit(3) from None


@contacts_app.command("suppress")
def contacts_suppress(
    customer_id: Annotated[str, typer.Argument(help="The customer's id.")],
    reason: Annotated[str, typer.Option(help="Why (kept with the row, shown to whoever lifts it).")],
    channel: Annotated[str, typer.Option(help=_CHANNEL_HELP)] = "*",
) -> None:
    """Stop contacting a customer (on one channel, or on every channel with '*'): checked before every send."""
    from datetime import UTC, datetime

    from relance import ops

    with _contacts_warehouse("relance contacts suppress") as con:
        added = ops.add_suppression(
            con, customer_id, _suppression_channel(channel), reason=reason, source="manual",
            at=datetime.now(UTC).replace(tzinfo=None),
        )  # fmt: skip
    console.print(f"{escape(customer_id)}: {'suppressed' if added else 'already suppressed'} on {escape(channel)}")


@contacts_app.command("lift")
def contacts_lift(
    customer_id: Annotated[str, typer.Argument(help="The customer's id.")],
    channel: Annotated[str, typer.Option(help=_CHANNEL_HELP)] = "*",
) -> None:
    """Allow contact again on a channel (also overrides an earlier unsubscribe, STOP or call outcome)."""
    from datetime import UTC, datetime

    from relance import ops

    with _contacts_warehouse("relance contacts lift") as con:
        n = ops.lift_suppressions(
            con, customer_id, _suppression_channel(channel), at=datetime.now(UTC).replace(tzinfo=None)
        )
    console.print(f"{escape(customer_id)}: {n} suppression(s) lifted on {escape(channel)}")


@contacts_app.command("list")
def contacts_list(customer_id: Annotated[str | None, typer.Argument(help="One customer (default: all).")] = None):
    """Suppressions, set by hand, by call outcomes or by providers, lifted or not."""
    from relance import ops

    with _contacts_warehouse("relance contacts list") as con:
        frame = ops.read_suppressions(con, customer_id)
    table = Table("customer", "channel", "reason", "source", "since", "lifted")
    for row in frame.to_dict("records"):
        lifted = "" if row["lifted_at"] is None or str(row["lifted_at"]) == "NaT" else str(row["lifted_at"])[:16]
        table.add_row(
            escape(str(row["customer_id"])), row["channel"], escape(str(row["reason"])), row["source"],
            str(row["created_at"])[:16], lifted,
        )  # fmt: skip
    console.print(table)


@app.command()
def simulate(
    days: Annotated[int, typer.Option(help="Days to simulate (business days send).")] = 90,
    customers: Annotated[int, typer.Option(help="Simulated customers.")] = 1000,
    invoices: Annotated[int, typer.Option(help="Invoices over the warm-up year and the window.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Seed of the simulated world (same seed, same figures).")] = 42,
    json_path: JsonOption = None,
) -> None:
    """Run the daily reminder loop on a simulated ledger, once with the engine and once with a fixed 7/21/45-day
    schedule, from the same world (the demo generator's hidden response model decides who pays), and print DSO,
    cash collected, contacts, cost and rule violations for both, with the holdout's effect."""
    import dataclasses
    import json

    from relance.reminders.scenarios import ScenarioError, load_configured
    from relance.reminders.simulation import render, run_simulation

    settings = _settings()
    try:
        scenarios = load_configured(settings.scenarios_path)
    except ScenarioError as exc:
        for problem in exc.problems:
            console.print(f"[bold red]error[/] {escape(problem)}")
        raise typer.Exit(1) from None
    with console.status("simulating...") as status:

        def progress(done: int, total: int) -> None:
            status.update(f"simulating business day {done} of {total}")

        try:
            result = run_simulation(
                days=days,
                customers=customers,
                invoices=invoices,
                seed=seed,
                scenarios=scenarios,
                config=settings.engine_config(),
                rules=settings.contact_rules(),
                progress=progress,
            )
        except ValueError as exc:
            console.print(f"[bold red]cannot simulate:[/] {escape(str(exc))}")
            raise typer.Exit(2) from None
    console.print(render(result))
    if json_path is not None:
        payload = dataclasses.asdict(result) | {"dso_reduction": result.dso_reduction, "meets_goal": result.meets_goal}
        json_path.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")


@policy_app.command("check")
def policy_check(
    path: Annotated[Path, typer.Argument(help="A scenarios YAML file.", exists=False)],
) -> None:
    """Validate a scenarios file: every error names the file, the line and the field (exit 1 when invalid)."""
    from relance.reminders.scenarios import ScenarioError, load_scenarios

    try:
        scenarios = load_scenarios(path)
    except ScenarioError as exc:
        for problem in exc.problems:
            console.print(f"[bold red]error[/] {escape(problem)}")
        raise typer.Exit(1) from None
    _print_scenarios(scenarios)
    console.print(f"[bold green]valid[/]: {len(scenarios.scenarios)} scenario(s) in {escape(str(path))}")


@policy_app.command("show")
def policy_show() -> None:
    """The scenarios the engine uses with the current settings (RELANCE_SCENARIOS_PATH or the default set)."""
    from relance.reminders.scenarios import ScenarioError, load_configured

    try:
        scenarios = load_configured(_settings().scenarios_path)
    except ScenarioError as exc:
        for problem in exc.problems:
            console.print(f"[bold red]error[/] {escape(problem)}")
        raise typer.Exit(1) from None
    _print_scenarios(scenarios)
    console.print(f"from {escape(scenarios.source)}")


def _print_scenarios(scenarios) -> None:
    table = Table("scenario (first match wins)", "applies to", "steps (day: channels, tone)", "after", "holdout")
    for sc in scenarios.scenarios:
        when = sc.when.model_dump(exclude_none=True) or "everyone"
        steps = "\n".join(f"{st.day:+d}: {'/'.join(st.channels)}, {st.tone} ({st.name})" for st in sc.steps)
        rep = f"every {sc.repeat.every_days} d x{sc.repeat.max_times}" if sc.repeat else "-"
        table.add_row(sc.name, escape(str(when)), steps, rep, f"{sc.holdout_fraction:.0%}")
    console.print(table)


#: The creditor on the demo's letters (RELANCE_SENDER_ADDRESS replaces it).
DEMO_SENDER_ADDRESS = "Relance Démo SAS | 10 rue de l'Exemple | 75002 Paris"


@app.command()
def demo(
    customers: Annotated[int, typer.Option(help="Number of customers.")] = 2000,
    invoices: Annotated[int, typer.Option(help="Number of invoices.")] = 60_000,
    fresh: Annotated[
        bool, typer.Option(help="Delete what relance wrote in the data directory first (never the send ledger).")
    ] = False,
    use_provider_keys: Annotated[
        bool,
        typer.Option(
            "--use-provider-keys",
            help="Use the SendGrid/Twilio credentials of the settings. Off: the demo ignores them and every "
            "reminder goes to the local outbox, whatever .env says.",
        ),
    ] = False,
    json_path: JsonOption = None,
) -> None:
    """Generate demo data (if absent) and run the daily pipeline on it, then say where to look. Its customers have
    reserved addresses (example.com, .test) and fictional phone numbers, and it ignores provider keys."""
    from relance.demo.safety import demo_settings

    settings = demo_settings(_settings(), use_provider_keys=use_provider_keys)
    if not settings.sender_address:  # the letters' sender block: a made-up creditor for a made-up ledger
        settings = settings.model_copy(update={"sender_address": DEMO_SENDER_ADDRESS})
    if fresh:
        try:
            with daily_run_lock(settings.data, as_of_date=DEMO_END_DATE, what="relance demo --fresh"):
                for path in settings.owned_paths():  # what relance writes there, nothing else of the directory
                    if path.is_dir():
                        shutil.rmtree(path)
                    elif path.exists():
                        path.unlink()
        except RunInProgressError as exc:
            console.print(f"[bold red]refused:[/] {escape(str(exc))}")
            raise typer.Exit(3) from None
        settings.ensure_dirs()
        if settings.send_ledger.exists():
            from relance.send_ledger import SendLedger

            with SendLedger(settings.send_ledger) as ledger:
                kept = len(ledger.handled_keys())
            console.print(
                f"kept the send ledger {settings.send_ledger} ({kept:,} reminder(s) sent or in doubt): they are not "
                "sent again, so the outbox stays empty for them; delete that file too to replay the demo's sends"
            )
    if not any(settings.landing.glob("customers.*")):
        generate(
            customers=customers,
            invoices=invoices,
            months=24,
            end_date=DEMO_END_DATE.isoformat(),
            seed=42,
            file_format="csv",
        )
    t0 = time.perf_counter()
    # the demo's ledger ends on a fixed date, so its run is a backfill: it sends anyway, to the local outbox; and it
    # shows the weekly finance report (with the forecast's backtest) although its date is a Saturday
    result = _run_daily(settings, DEMO_END_DATE, send_backfill=True, weekly_report=True)
    _print_result(result, json_path)
    console.print(f"\n[bold green]Demo done[/] in {time.perf_counter() - t0:.0f}s. Where to look:")
    console.print(f"  outbox (emails as SendGrid JSON, letters, call list): {settings.outbox}")
    console.print(f"  finance report: {result.report_html}")
    day_dir = result.report_html.parent
    console.print(f"  flash and weekly report (HTML + XLSX, fr/en): {day_dir / 'flash'}, {day_dir / 'weekly'}")
    console.print(f"  emails to finance: {settings.finance_outbox / 'email'}")
    console.print("  lineage of a reminder: relance lineage show <key> (an outbox file name); status: relance status")
    console.print(f"  dbt docs: {settings.dbt_target_dir / 'index.html'}")
    console.print(f"  GX data docs: {settings.gx_dir}")
    console.print("  Prefect UI + MLflow UI: [bold]make ui[/] (or `relance ui`)")


@app.command()
def evaluate(
    path: Annotated[
        Path, typer.Argument(help="The ledger to backtest on: a file or directory an import profile reads.")
    ],
    profile: Annotated[str, typer.Option(help="demo, ibm_ar, fec, sql, or a profile YAML path.")],
    from_: Annotated[str, typer.Option("--from", help="First issue date tested, YYYY-MM-DD.")],
    to: Annotated[str, typer.Option("--to", help="Last issue date tested, YYYY-MM-DD.")],
    target: Annotated[
        str,
        typer.Option(
            help="What 'late' means: late_any (days late > 0), late_over_Nd, unpaid_Nd_after_due, "
            "unpaid_Nd_after_as_of."
        ),  # fmt: skip
    ] = "late_any",
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the results (metrics, baselines, months) to this file.")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Data directory: MLflow store, and the backtest's scratch warehouse (kept, under backtest/). "
            "Default: the settings' (RELANCE_DATA_DIR or ./data), the scratch warehouse in a temporary directory.",
        ),
    ] = None,
    train_rows: Annotated[
        str,
        typer.Option(
            "--train-rows",
            help="issue: train on each invoice's row at its issue date (the task); all: every as-of snapshot, "
            "weighted so that each invoice counts once.",
        ),
    ] = "issue",
    keep_excluded: Annotated[
        bool,
        typer.Option(
            "--keep-excluded",
            help="Test the invoices the profile's evaluation.exclude rules leave out too (they are counted).",
        ),
    ] = False,
) -> None:
    """Backtest relance's model on a ledger, rolling monthly origin: for each month from --from to --to, fit on what
    was known on its first day and predict every invoice issued in it as of its issue date, with the same dbt
    features as training and scoring. Prints relance beside the baselines (pooled over the months), logs one
    MLflow run. Exit code 2 for bad input (profile, file, dates, no invoice in the range), 1 if the file fails its
    data contracts or dbt fails."""
    import tempfile

    from relance.importer import IngestError, SourceError
    from relance.warehouse import connection

    start, end = _as_of(from_, date.today()), _as_of(to, date.today())
    if start > end:
        console.print(f"[bold red]cannot evaluate[/]: --from {start} is after --to {end}")
        raise typer.Exit(2)
    if train_rows not in ("issue", "all"):
        raise typer.BadParameter("issue or all", param_hint="--train-rows")
    if not path.exists():
        console.print(f"[bold red]cannot evaluate[/]: {escape(str(path))} does not exist")
        raise typer.Exit(2)
    if profile not in ("fec", "sql"):  # a tabular profile: checked before the seconds of imports below
        from relance.sources.tabular import load_profile

        try:
            load_profile(profile)
        except SourceError as exc:
            console.print(f"[bold red]cannot evaluate[/]: {escape(str(exc))}", highlight=False)
            raise typer.Exit(2) from None
    if data_dir is not None:
        os.environ["RELANCE_DATA_DIR"] = str(data_dir.expanduser().resolve())
    settings = _settings()  # before any flow module: Prefect reads its home when it is imported
    backtest = importlib.import_module("models.backtest")  # by import path: relance/ sits below models/

    try:
        kind, days = backtest.parse_target(target)
    except backtest.BacktestError as exc:
        raise typer.BadParameter(str(exc), param_hint="--target") from None
    import_source = _flow("import_receivables", "import_source")
    sha = backtest.source_sha256(path)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="relance-evaluate-") as tmp:
        scratch = Path(tmp)
        if data_dir is not None:  # kept for inspection, rebuilt on every run
            scratch = settings.data / "backtest" / f"{Path(profile).stem}-{sha[:12]}-{target}"
            shutil.rmtree(scratch, ignore_errors=True)
        scratch_settings = backtest.backtest_settings(settings, scratch, target_kind=kind, target_days=days)
        scratch.mkdir(parents=True, exist_ok=True)
        try:
            with connection(scratch_settings.warehouse) as con, console.status(f"importing {path} ({profile})"):
                report = import_source(con, path, profile=profile, gx_dir=None, flow_run_id=None, data_docs=False)
        except (SourceError, IngestError) as exc:
            console.print(f"[bold red]cannot import[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(2) from None
        v = report.validation
        if not report.success:
            console.print(f"[bold red]{escape(str(path))} fails its data contracts[/]: nothing was evaluated")
            for m in (v.critical_failures if v is not None else [])[:20]:
                console.print(f"  [bold red]critical[/] {escape(m)}", highlight=False)
            raise typer.Exit(1)
        import_s = time.perf_counter() - t0
        try:
            with console.status("backtesting") as status:
                result = backtest.run_backtest(
                    scratch_settings,
                    source=path,
                    profile=profile,
                    start=start,
                    end=end,
                    file_sha256=sha,
                    tracking_uri=settings.mlflow_uri,
                    artifact_root=settings.mlflow_artifacts,
                    train_rows=train_rows,  # type: ignore[arg-type]
                    apply_exclusions=not keep_excluded,
                    progress=lambda message: status.update(f"backtesting: {message}"),
                )
        except (backtest.BacktestError, SourceError) as exc:
            console.print(f"[bold red]cannot evaluate[/]: {escape(str(exc))}", highlight=False)
            raise typer.Exit(2) from None
        except StopRun as exc:
            console.print(f"[bold red]cannot evaluate[/]: {escape(str(exc))}", highlight=False)
            raise typer.Exit(1) from None
    result.timings = {"import_s": round(import_s, 2), **result.timings, "total_s": round(time.perf_counter() - t0, 2)}
    months = [m for m in result.months if not m["skipped"]]
    console.print(
        f"[bold]backtest of {escape(str(path))}[/] ({profile}), target {result.target}, rolling monthly origin "
        f"{start} .. {end}: {len(months)} month(s), {result.n_test:,} test invoice(s) at issue, training rows: "
        f"{train_rows}",
        highlight=False,
    )
    console.print(result.table(), markup=False, highlight=False, soft_wrap=True)
    console.print(result.ci_line(), highlight=False)
    d = result.dropped
    console.print(
        f"issued in range: {d['issued']:,}; not open on their issue date (settled that day): "
        f"{d['not_open_at_issue']:,}; label not observable yet: {d['label_unknown']:,}; in skipped months: "
        f"{d['in_skipped_months']:,}",
        highlight=False,
    )
    for e in result.exclusions:
        verb = "excluded" if e["applied"] else "kept (--keep-excluded)"
        console.print(
            f"{verb}: {e['test_rows']:,} test row(s): {escape(e['reason'])} ({escape(e['where'])})", highlight=False
        )
    for m in result.months:
        if m["skipped"]:
            console.print(f"  [yellow]skipped[/] {m['month']}: {escape(m['skipped'])}", highlight=False)
    console.print(
        f"MLflow run {result.mlflow_run_id} (experiment relance-backtest-{result.target}, "
        f"{settings.redacted_mlflow_uri}); {result.timings['total_s']:.0f}s",
        highlight=False,
    )
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(result.to_json(), encoding="utf-8")
        console.print(f"results: {json_path}", highlight=False)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog="Example: relance dbt build --select marts   |   relance dbt --show build",
)
def dbt(
    ctx: typer.Context,
    as_of: Annotated[str | None, typer.Option("--as-of", help="as_of_date var, YYYY-MM-DD (default: today).")] = None,
    target: Annotated[str, typer.Option(help="Profile output: duckdb (the warehouse) or postgres.")] = "duckdb",
    show: Annotated[
        bool, typer.Option("--show", help="Write the profile and print the plain dbt command instead of running it.")
    ] = False,
) -> None:
    """Run dbt on relance's project with the profile and every var derived from the settings.

    Everything after the options goes to dbt (`build --select marts`, `docs generate`, `test`). The profile is
    written to <data_dir>/dbt/profiles.yml; `--show` prints the equivalent `dbt ...` command to run by hand.
    """
    from relance import dbt as dbt_owner

    settings = _settings()
    command = list(ctx.args)
    if not command:
        console.print("[bold red]no dbt command[/]: e.g. `relance dbt build --select marts`")
        raise typer.Exit(2)
    owned = sorted({a.split("=")[0] for a in command} & set(dbt_owner.OWNED_FLAGS))
    if owned:
        console.print(
            f"[bold red]cannot run dbt[/]: {', '.join(owned)} come from the settings (relance dbt --show prints "
            "them); use --as-of, --target or the RELANCE_* settings instead"
        )
        raise typer.Exit(2)
    try:
        args = dbt_owner.dbt_args(
            settings,
            command,
            as_of_date=_as_of(as_of, date.today()),
            target=target,  # type: ignore[arg-type]
        )
    except ValueError as exc:
        console.print(f"[bold red]cannot run dbt[/]: {escape(str(exc))}")
        raise typer.Exit(2) from None
    profile_path = dbt_owner.write_profile(settings)
    if show:
        console.print(f"# profile: {profile_path}", markup=False, highlight=False)
        console.print(dbt_owner.shell_command(args), markup=False, highlight=False, soft_wrap=True)
        return
    run = dbt_owner.run_dbt(settings, args, check=False)
    console.print(f"[{'green' if run.success else 'bold red'}]{escape(run.describe())}[/]")
    if not run.success:
        raise typer.Exit(1)


@model_app.command("serve")
def model_serve(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 5055,
    alias: Annotated[str, typer.Option(help="Registry alias whose model version to serve.")] = "champion",
) -> None:
    """Serve the model that holds ALIAS (default: champion) over HTTP with MLflow's model server, on 127.0.0.1.

    The alias is resolved once: the version it names is served (restart to serve a newer champion). POST
    `/invocations` with `{"dataframe_split": {"columns": [...], "data": [[...]]}}` of feature rows (the columns of
    ml.ml_invoice_features); the answer holds the same probabilities as batch scoring. Ctrl-C (or SIGTERM) stops it.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    settings = _settings()
    try:
        version = MlflowClient(settings.mlflow_uri).get_model_version_by_alias(settings.model_name, alias)
    except MlflowException:
        console.print(
            f"[bold red]no model to serve[/]: no version of {settings.model_name!r} holds the alias {alias!r} in "
            f"{settings.redacted_mlflow_uri}; run the daily pipeline (or `relance demo`) first"
        )
        raise typer.Exit(2) from None
    env = os.environ | settings.tool_environment()
    bindir = Path(sys.executable).parent
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"  # mlflow execs uvicorn from the same environment
    uri = f"models:/{settings.model_name}/{version.version}"
    command = [str(bindir / "mlflow"), "models", "serve", "-m", uri, "--env-manager", "local"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with servers.running([command], env) as procs:
        console.print(
            f"serving {settings.model_name} v{version.version} (@{alias}, MLflow run {version.run_id}) on "
            f"http://127.0.0.1:{port}/invocations  (GET /ping for health; Ctrl-C stops)"
        )
        servers.wait_until_one_exits(procs)


def _registry():
    """models.registry, loaded by import path as flows are: relance/ sits below models/ in the layers."""
    return importlib.import_module("models.registry")


@model_app.command("rollback")
def model_rollback(
    to: Annotated[
        str | None,
        typer.Option("--to", help="Version to restore (a former champion). Default: the champion before this one."),
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept as a tag on both versions).")] = "",
) -> None:
    """Give the `champion` alias back to the version that held it before the current one (or to --to VERSION).

    Run it again to walk further back. Who, when and why are recorded as rollback.* tags on both versions. Batch
    scoring uses the restored version from its next run; restart `relance model serve` to serve it.
    """
    registry = _registry()
    settings = _settings()
    try:
        with daily_run_lock(settings.data, as_of_date=date.today(), what="relance model rollback"):
            result = registry.rollback(
                settings.mlflow_uri,
                settings.model_name,
                to_version=to,
                reason=reason,
                user=os.environ.get("USER", "unknown"),
            )
    except RunInProgressError as exc:
        console.print(f"[bold red]refused:[/] {escape(str(exc))}")
        raise typer.Exit(3) from None
    except registry.RollbackRefused as exc:
        console.print(f"[bold red]cannot roll back[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    console.print(
        f"{escape(result.model_name)} @champion: v{result.from_version} -> v{result.to_version} "
        f"(by {escape(result.user)}: {escape(result.reason)}). Batch scoring uses v{result.to_version} from its next "
        "run; restart `relance model serve` to serve it."
    )


@model_app.command("list")
def model_list() -> None:
    """Every version of the model: aliases, kind, target, test AUC, and why it is (or is not) the champion."""
    registry = _registry()
    settings = _settings()
    versions = registry.list_versions(settings.mlflow_uri, settings.model_name)
    if not versions:
        console.print(
            f"no version of {settings.model_name!r} in {escape(settings.redacted_mlflow_uri)}: run the daily pipeline "
            "(or `relance demo`) first"
        )
        return
    table = Table(title=f"{settings.model_name} in {escape(settings.redacted_mlflow_uri)}")
    for column in ("version", "aliases", "kind", "target", "test AUC", "created (UTC)"):
        table.add_column(column, no_wrap=True)
    table.add_column("promotion decision, rollback", overflow="fold", ratio=1)
    for v in versions:
        table.add_row(
            v.version,
            ", ".join(f"@{a}" for a in v.aliases) or "-",
            v.kind,
            v.target,
            "-" if v.test_auc is None else f"{v.test_auc:.4f}",
            v.created_at.strftime("%Y-%m-%d %H:%M"),
            escape("; ".join(x for x in (v.decision or "no decision recorded", v.rollback) if x)),
        )
    console.print(table)
    champion = next((v for v in versions if "champion" in v.aliases), None)
    if champion is not None:
        console.print(f"why v{champion.version} is the champion: {escape(champion.reason or 'no decision recorded')}")
        if champion.rollback:
            console.print(f"  {escape(champion.rollback)}")


@app.command()
def ui(
    prefect_port: int = 4200,
    mlflow_port: int = 5000,
    docs_port: int = 8080,
) -> None:
    """Start the Prefect UI, the MLflow UI and the dbt docs site on 127.0.0.1 (Ctrl-C stops them)."""
    settings = _settings()
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}  # serve, do not connect
    env |= settings.tool_environment()
    env.pop("PREFECT_API_BLOCKS_REGISTER_ON_START", None)  # a real server: the UI lists the block types
    bindir = Path(sys.executable).parent
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    commands = [
        [str(bindir / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(prefect_port)],
        [
            str(bindir / "mlflow"),
            "ui",
            "--backend-store-uri",
            settings.mlflow_uri,
            "--host",
            "127.0.0.1",
            "--port",
            str(mlflow_port),
            "--workers",  # one person browsing: one worker, not the four the MLflow default starts
            "1",
        ],
    ]
    if (settings.dbt_target_dir / "index.html").exists():
        commands.append(
            [
                sys.executable,
                "-m",
                "http.server",
                str(docs_port),
                "--bind",
                "127.0.0.1",
                "--directory",
                str(settings.dbt_target_dir),
            ]
        )
    with servers.running(commands, env) as procs:
        console.print(f"Prefect UI  http://127.0.0.1:{prefect_port}")
        console.print(f"MLflow UI   http://127.0.0.1:{mlflow_port}")
        if len(procs) > 2:
            console.print(f"dbt docs    http://127.0.0.1:{docs_port}")
        else:
            console.print("dbt docs    not generated yet (a daily run generates them)")
        console.print(f"GX docs     {settings.gx_dir}")
        # the scheduled deployments of infra/prefect.yaml, listed paused (`relance serve` runs them)
        operator_cli.register_deployments(f"http://127.0.0.1:{prefect_port}/api")
        servers.wait_until_one_exits(procs)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpcore", "great_expectations", "urllib3", "alembic", "mlflow.store"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        app()  # standalone: always ends in SystemExit, with typer's own messages and exit codes
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    _exit_after_prefect(code)


#: How long the command waits, once done, for Prefect to deliver its queued logs and events to its API.
PREFECT_DRAIN_SECONDS = 60.0


def _exit_after_prefect(code: int) -> None:
    """Exit with ``code``, after Prefect's queued logs and events are delivered, within a bound.

    Prefect drains its log and event queues at interpreter exit, without a time limit; a race in those queue
    services (PrefectHQ/prefect#14629) can leave that drain waiting forever once the work is done, so a scheduled
    run would hang after succeeding. Draining here with a bound, then exiting, keeps the exit code honest and
    the process finite; a drain that times out is said on stderr (the run's own outcome is already recorded).
    """
    if "prefect" in sys.modules:
        drained = _flow("_common", "drain_prefect_services")(PREFECT_DRAIN_SECONDS)
        if not drained:
            sys.stderr.write(
                f"warning: Prefect logs/events not all delivered within {PREFECT_DRAIN_SECONDS:.0f} s; exiting\n"
            )
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    main()
