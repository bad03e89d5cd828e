"""``relance webhooks``: run the provider-feedback service (``serve``) and land what waits in its inbox (``drain``).

A sub-app of the ``relance`` command line (``relance.cli`` adds it with
``app.add_typer(webhooks_app, name="webhooks")``); like the rest of the CLI it builds the one ``Settings`` through
``relance.cli``.

Exit codes of ``drain``: 0 the inbox is empty (or was drained), 1 a drained batch failed its data contract,
3 the warehouse stayed busy (another process holds it): the events still wait.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

webhooks_app = typer.Typer(
    help="Provider feedback (SendGrid Event Webhook, Twilio callbacks): run the service, drain its inbox.",
    no_args_is_help=True,
)


@webhooks_app.command("serve")
def webhooks_serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on. Default: RELANCE_WEBHOOK_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Port. Default: RELANCE_WEBHOOK_PORT.")] = None,
) -> None:
    """Receive SendGrid and Twilio events on http://<host>:<port> (127.0.0.1:8787 by default; put a TLS proxy in
    front and set RELANCE_WEBHOOK_PUBLIC_URL to the URL providers call). Ctrl-C stops it."""
    import uvicorn

    from relance.cli import _settings, console
    from relance.webhooks.app import create_app
    from relance.webhooks.twilio import STATUS_PATH, public_base_url

    settings = _settings()
    try:
        app = create_app(settings)
    except ValueError as exc:
        console.print(f"[bold red]bad setting[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    bind_host = host or settings.webhook_host
    bind_port = port or settings.webhook_port
    base = public_base_url(settings.webhook_public_url, settings.webhook_host, settings.webhook_port)
    console.print(
        f"webhooks on http://{bind_host}:{bind_port} - SendGrid: {base}/webhooks/sendgrid, "
        f"Twilio status: {base}{STATUS_PATH}?reminder_key=..., inbound: {base}/webhooks/twilio/inbound",
        highlight=False,
    )
    # one worker: DuckDB lets one process write the warehouse
    # log_config=None: uvicorn's own formatters expect the raw access-log arguments, which relance's secret
    # redaction has already folded into the message; the root logger (relance's) formats its lines instead
    uvicorn.run(app, host=bind_host, port=bind_port, workers=1, log_level="info", proxy_headers=False, log_config=None)


@webhooks_app.command("drain")
def webhooks_drain(
    wait: Annotated[float, typer.Option(help="Seconds to wait for a warehouse another process holds.")] = 60.0,
) -> None:
    """Load the provider events waiting in the webhook inbox (kept while the warehouse was busy) into
    raw.message_events, validate them and apply their suppressions and send settlements. Exit 3 if the warehouse
    stayed busy."""
    from relance.cli import _settings, console
    from relance.webhooks.load import Inbox, WarehouseBusy, drain, inbox_path

    settings = _settings()
    drained = 0
    failed = False
    try:
        while True:
            report = drain(settings, wait_seconds=wait)
            if report.entries == 0:
                break
            drained += report.entries
            console.print(
                f"{report.entries} request(s): {report.events} event(s), {report.rows_loaded} appended, "
                f"{report.rows_unchanged} unchanged, {report.rows_quarantined} quarantined, "
                f"{report.suppressions} suppression(s), {len(report.settled)} send(s) settled",
                highlight=False,
            )
            for message in (*report.contract_failures, *report.contract_warnings):
                console.print(f"contract: {escape(message)}", highlight=False)
            failed = failed or bool(report.contract_failures)
    except WarehouseBusy as exc:
        waiting, _ = Inbox(inbox_path(settings)).backlog()
        console.print(f"[bold red]warehouse busy[/]: {escape(str(exc))}; {waiting} request(s) still wait")
        raise typer.Exit(3) from None
    if not drained:
        console.print("the webhook inbox is empty")
    if failed:
        raise typer.Exit(1)
