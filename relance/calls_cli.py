"""``relance calls``: collectors' call outcomes in (``import``) and the columns their file needs (``template``).

A sub-app of the ``relance`` command line (``relance.cli`` adds it with ``app.add_typer(calls_app, name="calls")``).
Like the rest of the CLI it builds the one ``Settings`` through ``relance.cli`` and loads the import flow's module by
import path only once the daily-run lock is held, so ``relance/`` never imports Prefect.

Exit codes of ``import``: 0 every row loaded (or was already), 1 a row was quarantined or a batch failed its data
contract, 2 a file is missing or unreadable (nothing of it loaded), 3 a daily run holds the data directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from relance.reminders.calls import CALL_FILE_SUFFIXES, call_files, template_csv
from relance.runs import RunInProgressError, daily_run_lock

calls_app = typer.Typer(
    help="Call outcomes from negotiators: import their files, print the columns a file needs.", no_args_is_help=True
)


def _files(paths: list[Path]) -> list[Path]:
    """The files to import: each path, or the call files of a directory. ``typer.Exit(2)`` for a missing one."""
    from relance.cli import input_files

    return input_files(paths, call_files, "call file", f"({', '.join(CALL_FILE_SUFFIXES)})")


@calls_app.command("import")
def calls_import(
    paths: Annotated[
        list[Path], typer.Argument(help="Call files (.csv: ';' or ',', UTF-8 or Excel's Latin-1; .xlsx), or folders.")
    ],
) -> None:
    """Load negotiators' call outcomes into raw.call_outcomes, row by row: a bad row is quarantined with its line,
    field and reason, the others load; a file imported before changes nothing. 'wrong_contact' and
    'do_not_contact' suppress the channel. Exit 1 if a row was rejected, 2 if a file is unreadable, 3 if a daily
    run is in progress."""
    from relance.cli import _flow, _settings, _today, console

    settings = _settings()
    files = _files(paths)
    try:
        with daily_run_lock(settings.data, as_of_date=_today(settings), what="relance calls import"):
            import_call_outcomes = _flow("import_call_outcomes", "import_call_outcomes")
            with console.status(f"importing {len(files)} call file(s)"):
                report = import_call_outcomes(settings, files)
    except RunInProgressError as exc:
        console.print(f"[bold red]refused:[/] {escape(str(exc))}")
        raise typer.Exit(3) from None

    summary = Table(title="call files")
    for col in ("file", "read", "loaded", "unchanged", "quarantined", "outcome"):
        summary.add_column(col, overflow="fold", justify="left" if col in ("file", "outcome") else "right")
    for item in report.files:
        if item.error:
            outcome = "[bold red]unreadable[/]"
        elif item.contract_failures:
            outcome = "[bold red]contract failed[/]"
        elif item.rejected or item.contract_warnings:
            outcome = "[yellow]rows quarantined[/]"
        else:
            outcome = {"unchanged": "[dim]already imported[/]", "empty": "[dim]no row[/]"}.get(
                item.status, "[green]loaded[/]"
            )
        summary.add_row(
            escape(item.path.name), str(item.rows_read), str(item.rows_loaded), str(item.rows_unchanged),
            str(item.rows_rejected), outcome,
        )  # fmt: skip
    console.print(summary)

    rejected = [(item, err) for item in report.files for err in item.rejected]
    if rejected:
        table = Table(title="quarantined rows (ops.quarantine): correct them and import the file again")
        for col in ("file", "line", "field", "reason"):
            table.add_column(col, overflow="fold", justify="right" if col == "line" else "left")
        for item, err in rejected:
            table.add_row(escape(item.path.name), str(err.line), escape(err.field or "-"), escape(err.message))
        console.print(table)
    for item in report.files:
        if item.error:
            console.print(f"[bold red]{escape(item.path.name)}[/]: {escape(item.error)}", highlight=False)
        for message in (*item.contract_failures, *item.contract_warnings):
            console.print(f"[bold red]{escape(item.path.name)}[/] contract: {escape(message)}", highlight=False)
    if report.suppressions_written:
        console.print(f"{report.suppressions_written} contact suppression(s) written (wrong contact / do not contact)")
    if report.unreadable:
        raise typer.Exit(2)
    if any(item.has_problems for item in report.files):
        raise typer.Exit(1)


@calls_app.command("template")
def calls_template(
    separator: Annotated[str, typer.Option("--separator", help="';' (French Excel), ',' or 'tab'.")] = ";",
    example: Annotated[bool, typer.Option("--example", help="Add two example rows.")] = False,
) -> None:
    """Print the header of a call file (columns: reminder_key and call_id optional; customer_id, called_at and
    outcome required; promised_date for a promise)."""
    sep = "\t" if separator in ("tab", "\\t") else separator
    if sep not in (";", ",", "\t"):
        raise typer.BadParameter(f"expected ';', ',' or 'tab', got {separator!r}", param_hint="--separator")
    typer.echo(template_csv(sep, example=example), nl=False)
