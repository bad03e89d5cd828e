"""The webhook service (FastAPI): what SendGrid and Twilio report comes back into the warehouse.

=====================================  ==========================================================================
``POST /webhooks/sendgrid``            a signed Event Webhook batch (JSON array); 403 when the key is missing, the
                                       signature does not match the raw body and timestamp, or the timestamp is
                                       further than ``webhook_max_age_seconds`` from now; 400 when it is not an
                                       array of objects; 413 above :data:`MAX_BODY_BYTES`
``POST /webhooks/twilio/status``       a status callback (form), ``X-Twilio-Signature`` checked against the
                                       public URL; the reminder in the query (``?reminder_key=...``)
``POST /webhooks/twilio/inbound``      an inbound SMS (form), signed the same way: an opt-out (``STOP``) is
                                       recorded, the answer is empty TwiML
``GET /healthz``                       liveness, which verification keys are configured, the inbox backlog
=====================================  ==========================================================================

Answers to a verified request: **200** once its events are committed in the warehouse (loaded, validated, their
consequences applied: :mod:`relance.webhooks.load`), **202** once they are committed in the durable inbox while the
warehouse is busy (a daily run holds it) or loading failed: they are loaded by a later request, the periodic
drain (every ``drain_interval_seconds``) or ``relance webhooks drain``, so the provider need not retry. **500**
only when not even the inbox could keep them: SendGrid then retries; Twilio does not retry by default.

One process (uvicorn, one worker): DuckDB lets one process write the warehouse, and the warehouse is opened per
drain, never held, so daily runs can take it between requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from relance.webhooks import sendgrid, twilio
from relance.webhooks.load import (
    Inbox,
    MessageEvent,
    Refused,
    Validator,
    WarehouseBusy,
    contract_validator,
    drain,
    inbox_path,
)

if TYPE_CHECKING:
    from relance.settings import Settings

log = logging.getLogger(__name__)

SENDGRID_PATH = "/webhooks/sendgrid"
#: Larger bodies are refused (413) before they are read whole. SendGrid batches are far smaller.
MAX_BODY_BYTES = 32 * 1024**2
#: How long a request waits for a warehouse another process holds before its events wait in the inbox (202).
WAREHOUSE_WAIT_SECONDS = 3.0
#: How often the service drains what waits in the inbox (0: only when a request comes).
DRAIN_INTERVAL_SECONDS = 30.0
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def create_app(
    settings: Settings,
    *,
    validate: Validator | None = None,
    warehouse_wait_seconds: float = WAREHOUSE_WAIT_SECONDS,
    drain_interval_seconds: float = DRAIN_INTERVAL_SECONDS,
) -> FastAPI:
    """The webhook application for ``settings``.

    Args:
        validate: the data contract run on each loaded batch (default: the GX suites, ``expectations.runner``).
        warehouse_wait_seconds: how long a request waits for the warehouse before answering 202.
        drain_interval_seconds: the periodic drain of the inbox while the app runs (0: none).

    Raises:
        ValueError: ``sendgrid_webhook_public_key`` is set but is not a base64 DER P-256 public key.
    """
    verifier = sendgrid.SendGridVerifier(
        settings.sendgrid_webhook_public_key, max_age_seconds=settings.webhook_max_age_seconds
    )
    auth_token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else None
    base_url = twilio.public_base_url(settings.webhook_public_url, settings.webhook_host, settings.webhook_port)
    inbox = Inbox(inbox_path(settings))
    validator = validate or contract_validator(settings)
    if not verifier.configured:
        log.warning("no SendGrid verification key (sendgrid_webhook_public_key): SendGrid events are refused")
    if not auth_token:
        log.warning("no Twilio auth token (twilio_auth_token): Twilio callbacks are refused")

    def drain_now(wait_seconds: float) -> Any:
        return drain(settings, validate=validator, wait_seconds=wait_seconds)

    async def periodic_drain() -> None:
        while True:
            waiting = 0
            try:
                waiting, _ = await run_in_threadpool(inbox.backlog)
                if waiting:
                    await run_in_threadpool(drain_now, 0.0)
            except WarehouseBusy:
                log.info("webhook inbox: the warehouse is busy, %d request(s) wait", waiting)
            except Exception:
                log.exception("webhook inbox: the periodic drain failed; the events stay in the inbox")
            await asyncio.sleep(drain_interval_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(periodic_drain()) if drain_interval_seconds > 0 else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(title="relance webhooks", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> JSONResponse:
        log.warning("%s %s refused (%d): %s", request.method, request.url.path, exc.status, exc.reason)
        return JSONResponse({"error": exc.reason}, status_code=exc.status)

    def accept(provider: str, events: Sequence[MessageEvent], digest: str) -> tuple[int, dict[str, Any]]:
        """Keep the events in the inbox, then try to land them: (HTTP status, answer)."""
        if not events:
            return 200, {"received": 0, "status": "nothing to record"}
        try:
            entry_id = inbox.put(provider, events, digest=digest, received_at=datetime.now(UTC))
        except (sqlite3.Error, OSError):
            log.exception("%s: %d event(s) could not be kept in the inbox", provider, len(events))
            return 500, {"error": "the events could not be stored; send them again"}
        answer: dict[str, Any] = {"received": len(events)}
        try:
            report = drain_now(warehouse_wait_seconds)
        except WarehouseBusy:
            return 202, {**answer, "status": "queued", "why": "the warehouse is busy (a daily run): kept in the inbox"}
        except Exception:
            log.exception("%s: loading the inbox failed; the events stay in it", provider)
            return 202, {**answer, "status": "queued", "why": "loading failed: kept in the inbox, tried again"}
        if any(e.entry_id == entry_id for e in inbox.entries()):
            return 202, {**answer, "status": "queued", "why": "behind earlier requests in the inbox"}
        return 200, {**answer, "status": "loaded", **report.as_dict()}

    @app.post(SENDGRID_PATH)
    async def sendgrid_events(request: Request) -> JSONResponse:
        body = await _body(request)
        verifier.verify(
            body,
            request.headers.get(sendgrid.SIGNATURE_HEADER),
            request.headers.get(sendgrid.TIMESTAMP_HEADER),
            now=time.time(),
        )
        batch = sendgrid.parse_batch(body)
        status, answer = await run_in_threadpool(accept, sendgrid.PROVIDER, batch.events, batch.digest)
        return JSONResponse(answer, status_code=status)

    async def twilio_params(request: Request, path: str) -> twilio.FormParams:
        body = await _body(request)
        params = twilio.parse_form(body)
        query = request.scope.get("query_string", b"").decode("latin-1")
        url = base_url + path + (f"?{query}" if query else "")
        twilio.verify(
            auth_token,
            url,
            params,
            request.headers.get(twilio.SIGNATURE_HEADER),
            request.headers.get(twilio.SETTINGS_HEADER),
        )
        return params

    @app.post(twilio.STATUS_PATH)
    async def twilio_status(request: Request) -> JSONResponse:
        params = await twilio_params(request, twilio.STATUS_PATH)
        reminder_key = request.query_params.get(twilio.REMINDER_KEY_PARAM)
        event = twilio.status_event(params, reminder_key, datetime.now(UTC).replace(tzinfo=None))
        status, answer = await run_in_threadpool(
            accept, twilio.PROVIDER, [event], _form_digest(twilio.STATUS_PATH, request, params)
        )
        return JSONResponse(answer, status_code=status)

    @app.post(twilio.INBOUND_PATH)
    async def twilio_inbound(request: Request) -> Response:
        params = await twilio_params(request, twilio.INBOUND_PATH)
        events = twilio.inbound_events(params, datetime.now(UTC).replace(tzinfo=None), settings.sms_default_region)
        status, _ = await run_in_threadpool(
            accept, twilio.PROVIDER, events, _form_digest(twilio.INBOUND_PATH, request, params)
        )
        if status >= 500:
            return JSONResponse({"error": "the message could not be stored"}, status_code=status)
        return Response(EMPTY_TWIML, media_type="text/xml")

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        waiting, oldest = await run_in_threadpool(inbox.backlog)
        age = None if oldest is None else max((datetime.now(UTC).replace(tzinfo=None) - oldest).total_seconds(), 0.0)
        return {
            "status": "ok",
            "sendgrid_verification": verifier.configured,
            "twilio_verification": auth_token is not None,
            "inbox_waiting": waiting,
            "oldest_waiting_seconds": None if age is None else round(age, 1),
        }

    return app


async def _body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The raw body, refused (413) above ``limit`` bytes without reading it whole."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Refused(413, f"body of {declared} bytes, more than the {limit} accepted")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"body larger than the {limit} bytes accepted")
        chunks.append(chunk)
    return b"".join(chunks)


def _form_digest(path: str, request: Request, params: twilio.FormParams) -> str:
    """What identifies a Twilio callback: the path, the query and the sorted parameters (a retry is the same)."""
    query = request.scope.get("query_string", b"").decode("latin-1")
    text = path + "?" + query + "&".join(f"{k}={v}" for k in sorted(params) for v in params.getlist(k))
    return hashlib.sha256(text.encode()).hexdigest()
