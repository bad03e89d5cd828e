"""``relance lineage show KEY``: the chain behind a reminder, an invoice or a prediction, as a tree (or JSON).

A sub-app of the ``relance`` command line (``relance.cli`` adds it with ``app.add_typer(lineage_cli.app,
name="lineage")``). It reads the warehouse read-only, the send ledger, the archived dbt artefacts, the MLflow
tracking store and the embedded Prefect database; it writes nothing. ``relance.lineage_trace`` resolves the chain.

Exit codes: 0 the chain was printed (a missing link is printed in red, and listed at the end; with ``--json`` it
is a node whose ``found`` is false); 1 the key names nothing relance knows (with the nearest names); 2 there is no
warehouse to read; 3 another process holds the warehouse.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text
from rich.tree import Tree

from relance.lineage_trace import LineageNode

app = typer.Typer(
    help="Where a reminder, an invoice or a prediction comes from: message, decision, score, model, features, raw "
    "files, validation and flow runs.",
    no_args_is_help=True,
)

KEY_HELP = (
    "A reminder key (or its first 6+ characters), an invoice id, a prediction INVOICE_ID@YYYY-MM-DD, or a provider "
    "message id; prefix with reminder:, invoice:, prediction: or message: to say which."
)
#: Attributes that go in a node's headline rather than on a line of their own.
_HEADLINE = ("role",)


@app.callback()
def _lineage() -> None:
    """Where a reminder, an invoice or a prediction comes from (a group of commands, even while it has one)."""


@app.command("show")
def show(
    key: Annotated[str, typer.Argument(help=KEY_HELP)],
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the tree as JSON (each node: kind, id, found, attributes, links, children)."
        ),
    ] = False,
    verify: Annotated[
        bool, typer.Option("--verify/--no-verify", help="Recompute the sha256 of the landing files (reads them whole).")
    ] = True,
) -> None:
    """Print the lineage of KEY: from the message sent and the engine's decision, through the prediction (model
    version, MLflow run) and the features (as-of date, dbt invocation), to the raw batches (file, sha256, validation
    result) and the Prefect flow runs; each with where to open it. A missing link is printed in red."""
    import duckdb

    from relance.cli import _settings
    from relance.lineage_trace import Locations, UnknownKey, trace
    from relance.warehouse import connection

    err = Console(stderr=True)
    settings = _settings()
    if not settings.warehouse.is_file():
        err.print(
            f"[bold red]no warehouse[/] at {escape(str(settings.warehouse))}: nothing was loaded in this data "
            "directory (run `relance demo` or `relance run daily`, or set RELANCE_DATA_DIR)"
        )
        raise typer.Exit(2)
    loc = Locations.from_settings(settings, verify_files=verify)
    try:
        with connection(settings.warehouse, read_only=True) as con:
            node = trace(con, key, loc)
    except UnknownKey as exc:
        err.print(f"[bold red]no reminder, invoice or prediction named[/] {escape(exc.key)}", highlight=False)
        if exc.detail:
            err.print(f"  {escape(exc.detail)}", highlight=False)
        if exc.hints:
            err.print("  nearest: " + escape(", ".join(exc.hints)), highlight=False)
        else:
            err.print(
                "  keys are listed by `relance sends --status sent` (reminders) or in the finance report (invoices)",
                highlight=False,
            )
        raise typer.Exit(1) from None
    except duckdb.IOException as exc:
        err.print(
            f"[bold red]cannot open the warehouse[/] {escape(str(settings.warehouse))}: another process holds it "
            f"(a daily run?); try again when it ends ({escape(str(exc).splitlines()[0])})"
        )
        raise typer.Exit(3) from None
    if as_json:
        sys.stdout.write(json.dumps(node.to_dict(), indent=2, ensure_ascii=False) + "\n")
        return
    console = Console()
    console.print(render_tree(node))
    console.print(summary(node))


def _mark(found: bool | None) -> str:
    if found is True:
        return "[green]✓[/]"
    if found is False:
        return "[bold red]✗ missing[/]"
    return "[yellow]? not checked[/]"


def _value(value: Any) -> str:
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value):
            return " | ".join(", ".join(f"{k}={v}" for k, v in item.items() if v is not None) for item in value)
        return "; ".join(str(v) for v in value) if value else "none"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _label(node: LineageNode, *, repeated: bool, shown_links: set[tuple[str, str]]) -> Text:
    role = node.attributes.get("role")
    head = f"{_mark(node.found)} [bold]{escape(node.kind)}[/] {escape(node.id)}"
    if role:
        head += f" [dim]({escape(str(role))})[/]"
    if repeated:  # what differs from the first time: the rows of this invoice in a shared batch
        keys = f" keys: {escape(_value(node.attributes['keys']))}" if node.attributes.get("keys") else ""
        return Text.from_markup(head + f" [dim](as above){keys}[/]")
    lines = [head]
    for name, value in node.attributes.items():
        if name in _HEADLINE:
            continue
        text = escape(_value(value))
        if name == "missing":
            lines.append(f"  [bold red]missing: {text}[/]")
        elif name in ("not_checked", "rescored", "rebuilt", "hash_mismatch"):
            lines.append(f"  [yellow]{escape(name)}: {text}[/]")
        elif name == "sql":
            lines.append(f"  [dim]sql: {text}[/]")
        else:
            lines.append(f"  [dim]{escape(name)}:[/] {text}")
    for name, target in node.links.items():
        if (name, target) in shown_links:  # the same warehouse on every node: once, where it first appears
            continue
        shown = escape(target)
        if target.startswith(("http://", "https://")):
            shown = f"[link={target}]{shown}[/link]"
        lines.append(f"  [cyan]→ {escape(name)}: {shown}[/]")
    return Text.from_markup("\n".join(lines))


def render_tree(root: LineageNode) -> Tree:
    """The rich Tree of a chain. A node met again (the same batch behind two invoices, the daily run above every
    flow run) is printed once in full, then as a one-line reference."""
    seen: set[tuple[str, str]] = set()

    def add(parent: Tree | None, node: LineageNode, shown_links: set[tuple[str, str]]) -> Tree:
        ident = (node.kind, node.id)
        repeated = ident in seen and (bool(node.children) or len(node.attributes) > 2)
        seen.add(ident)
        label = _label(node, repeated=repeated, shown_links=shown_links)
        branch = Tree(label) if parent is None else parent.add(label)
        if not repeated:
            below = shown_links | set(node.links.items())
            for child in node.children:
                add(branch, child, below)
        return branch

    return add(None, root, set())


def summary(root: LineageNode) -> Text:
    """One line: every link found, or which are missing and which could not be checked."""
    nodes = list(root.walk())
    missing = root.missing()
    unchecked = [n for n in nodes if n.found is None]
    if not missing and not unchecked:
        return Text.from_markup(f"[green]lineage complete[/]: {len(nodes)} link(s), every one found")
    parts = []
    if missing:
        names = sorted({f"{n.kind} {n.id}" for n in missing})
        parts.append(f"[bold red]{len(missing)} missing link(s)[/]: " + escape(", ".join(names[:8])))
    if unchecked:
        parts.append(f"[yellow]{len(unchecked)} not checked[/] (open their links)")
    return Text.from_markup("; ".join(parts))
