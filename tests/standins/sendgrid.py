"""A SendGrid Mail Send v3 stand-in: ``POST /v3/mail/send`` on 127.0.0.1, validated against the official spec.

Why not Prism: it needs Node and a 90 MB install, returns no ``X-Message-ID``, keeps no state, ignores sandbox
mode and cannot be told to fail the next N requests. This stand-in does what our tests need and nothing more:

* ``Authorization: Bearer <api_key>`` required -> otherwise 401 ``{"errors": [{"message", "field"}]}``;
* a body over ``max_body_bytes`` (SendGrid: 30 MB) -> 413, before it is parsed;
* the JSON body is validated with ``jsonschema`` against the request schema of
  ``shared/specs/sendgrid_mail_v3.json`` (twilio/sendgrid-oai ``tsg_mail_v3.json``) -> 400 in SendGrid's error
  shape, ``field`` in SendGrid's dotted style (``personalizations.0.to``, ``custom_args``);
* success -> ``202 Accepted``, empty body, an ``X-Message-ID`` header; the message is kept in ``.messages``
  (what SendGrid would deliver);
* ``mail_settings.sandbox_mode.enable: true`` -> ``200 OK`` with no ``X-Message-ID`` (SendGrid's sandbox: the
  message is validated and delivered to nobody); kept in ``.sandboxed``, not in ``.messages``.

Faults, in the order they are scripted (each applies to one request):

* ``fail_next(n, status, retry_after=...)``: answer ``status`` (429, 400, 413, 500...) before anything else,
  with a ``Retry-After`` header when given; nothing is accepted;
* ``accept_then_fail_next(n, status=502)``: the message is accepted (kept in ``.messages``, SendGrid will
  deliver it) and the answer is a gateway error -- what a proxy in front of an accepting server can return;
* ``hang_next(n, seconds)``: the message is accepted, then the answer is held ``seconds`` (or until
  :meth:`stop`): the client times out after its request was received;
* ``refuse_connections_for(seconds)``: the port stops listening for ``seconds`` (connection refused), then
  listens again on the same port.

``.requests`` counts requests received, ``.log`` has one :class:`RequestRecord` per request (its time, its
``reminder_key`` when the body had one, what the stand-in did).

Use as a context manager (``with SendGridStandIn() as sg: sg.url``), or wrap ``running_sendgrid_standin()``
in a fixture: it skips the test with a clear reason when the spec file is not checked out next to the repo.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = REPO_ROOT.parent / "shared" / "specs" / "sendgrid_mail_v3.json"
SPEC_URI = "urn:relance:sendgrid-mail-v3"
REQUEST_SCHEMA_POINTER = "/components/requestBodies/PostMailSend/content/application~1json/schema"
#: SendGrid's limit on the total size of a message (docs: "Mail Send", limitations).
MAX_BODY_BYTES = 30 * 1024 * 1024

_MESSAGES = {
    400: "Bad Request",
    401: "The provided authorization grant is invalid, expired, or revoked",
    403: "access forbidden",
    413: "The JSON payload you have included in your request is too large.",
    429: "too many requests",
}


def load_validator(spec_path: Path = SPEC_PATH) -> Any:
    """A Draft 2020-12 validator for the Mail Send request body (OpenAPI 3.1 schemas are JSON Schema 2020-12).

    The spec is registered as one resource so its internal ``#/components/schemas/...`` refs resolve.
    """
    from jsonschema import Draft202012Validator, FormatChecker
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    registry = Registry().with_resource(SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT202012))
    schema = {"$ref": f"{SPEC_URI}#{REQUEST_SCHEMA_POINTER}"}
    return Draft202012Validator(schema, registry=registry, format_checker=FormatChecker())


def _field_of(error: Any) -> str:
    """SendGrid names the offending field with dots (``personalizations.0.to``); a missing required property
    is named itself, not its parent."""
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [r for r in error.validator_value if r not in error.instance]
        if missing:
            parts.append(str(missing[0]))
    return ".".join(parts) or "null"


@dataclass
class ReceivedMessage:
    """One accepted request: the parsed body, the headers as sent, and the id we answered with."""

    message_id: str
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def custom_args(self) -> dict[str, str]:
        return dict(self.body["personalizations"][0].get("custom_args", {}))

    @property
    def reminder_key(self) -> str | None:
        return self.custom_args.get("reminder_key")


@dataclass(frozen=True)
class RequestRecord:
    """One request as the stand-in saw it: when (``time.monotonic()``), whose, and what it did with it."""

    at: float
    reminder_key: str | None
    outcome: str  # 'accepted', 'sandbox', 'forced 429', 'accepted then 502', 'accepted then hung', 'invalid 400'...


@dataclass(frozen=True)
class _Fault:
    kind: str  # 'fail', 'accept_then_fail', 'hang'
    status: int = 500
    retry_after: str | None = None
    seconds: float = 0.0


def _reminder_key(raw: bytes) -> str | None:
    try:
        return json.loads(raw)["personalizations"][0]["custom_args"]["reminder_key"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None


@dataclass
class SendGridStandIn:
    api_key: str = field(default_factory=lambda: "SG." + secrets.token_urlsafe(16))
    spec_path: Path = SPEC_PATH
    max_body_bytes: int = MAX_BODY_BYTES
    messages: list[ReceivedMessage] = field(default_factory=list)
    sandboxed: list[ReceivedMessage] = field(default_factory=list)
    log: list[RequestRecord] = field(default_factory=list)
    requests: int = 0

    def __post_init__(self) -> None:
        self._validator = load_validator(self.spec_path)
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self._release = threading.Event()
        self._reopen: threading.Timer | None = None

    # --- control -------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._port, "stand-in not started"
        return f"http://127.0.0.1:{self._port}"

    def fail_next(self, n: int, status: int = 500, *, retry_after: float | str | None = None) -> None:
        """The next ``n`` requests (authorised or not) answer ``status`` with a SendGrid error body, and a
        ``Retry-After`` header when ``retry_after`` is given; none is accepted."""
        header = None if retry_after is None else str(retry_after)
        with self._lock:
            self._faults.extend([_Fault("fail", status, header)] * n)

    def accept_then_fail_next(self, n: int = 1, status: int = 502) -> None:
        """The next ``n`` valid requests are accepted (SendGrid delivers them) but answered ``status``."""
        with self._lock:
            self._faults.extend([_Fault("accept_then_fail", status)] * n)

    def hang_next(self, n: int = 1, seconds: float = 10.0) -> None:
        """The next ``n`` valid requests are accepted, then answered only after ``seconds`` (or at :meth:`stop`)."""
        with self._lock:
            self._faults.extend([_Fault("hang", 202, seconds=seconds)] * n)

    def refuse_connections_for(self, seconds: float) -> None:
        """Stop listening now (connections are refused) and listen again on the same port after ``seconds``."""
        self._close_server()
        self._reopen = threading.Timer(seconds, self._open_server)
        self._reopen.daemon = True
        self._reopen.start()

    def received(self, reminder_key: str) -> int:
        """How many times SendGrid accepted (and would deliver) the message of ``reminder_key``."""
        with self._lock:
            return sum(1 for m in self.messages if m.reminder_key == reminder_key)

    def start(self) -> SendGridStandIn:
        self._open_server()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._reopen is not None:
            self._reopen.cancel()
        self._close_server()

    def __enter__(self) -> SendGridStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the server ----------------------------------------------------------------------------------------
    def _open_server(self) -> None:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                return

            def _reply(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
                payload = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    if body is not None:
                        self.send_header(
                            "Content-Type", "application/json" if not isinstance(body, bytes) else "text/html"
                        )
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up waiting (hang mode): nothing to answer to
                    self.close_connection = True

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, body, headers, hold = stand_in._handle(self.path, dict(self.headers.items()), raw)
                if hold:
                    stand_in._release.wait(hold)
                self._reply(status, body, headers)

            def do_GET(self) -> None:  # noqa: N802
                status = 405 if self.path.startswith("/v3/mail/send") else 404
                self._reply(status, {"errors": [{"message": "not found", "field": None}]})

        server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        server.daemon_threads = True
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="sendgrid-standin", daemon=True)
        self._thread.start()

    def _close_server(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    # --- behaviour -----------------------------------------------------------------------------------------
    def _record(self, raw: bytes, outcome: str) -> None:
        self.log.append(RequestRecord(time.monotonic(), _reminder_key(raw), outcome))

    def _handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any, dict[str, str], float]:
        """(status, body, headers, seconds to hold the answer)."""

        def err(status: int, message: str | None = None, field_name: str | None = None, **hdrs: str):
            body = {"errors": [{"message": message or _MESSAGES.get(status, "internal error"), "field": field_name}]}
            return status, body, hdrs, 0.0

        with self._lock:
            self.requests += 1
            fault = self._faults.pop(0) if self._faults else None
            if fault is not None and fault.kind == "fail":
                self._record(raw, f"forced {fault.status}")
                extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                return err(fault.status, **extra)
        if path.split("?")[0] != "/v3/mail/send":
            return err(404, "not found")
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if auth != f"Bearer {self.api_key}":
            with self._lock:
                self._record(raw, "unauthorised 401")
            return err(401)
        if len(raw) > self.max_body_bytes:
            with self._lock:
                self._record(raw, "too large 413")
            return err(413, field_name="content")
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return err(400)
        errors = sorted(self._validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
        if errors:
            with self._lock:
                self._record(raw, "invalid 400")
            return 400, {"errors": [{"message": e.message, "field": _field_of(e)} for e in errors]}, {}, 0.0
        sandbox = (body.get("mail_settings") or {}).get("sandbox_mode", {}).get("enable") is True
        with self._lock:
            if sandbox:  # validated, delivered to nobody, no message id (SendGrid's sandbox mode)
                self.sandboxed.append(ReceivedMessage(message_id="", body=body, headers=headers))
                self._record(raw, "sandbox")
                return 200, None, {}, 0.0
            message_id = f"standin{next(self._ids):06d}{secrets.token_hex(4)}"
            self.messages.append(ReceivedMessage(message_id=message_id, body=body, headers=headers))
            if fault is not None and fault.kind == "accept_then_fail":
                self._record(raw, f"accepted then {fault.status}")
                html = f"<html><body><h1>{fault.status} Bad Gateway</h1></body></html>".encode()
                return fault.status, html, {}, 0.0
            if fault is not None and fault.kind == "hang":
                self._record(raw, "accepted then hung")
                return 202, None, {"X-Message-ID": message_id}, fault.seconds
            self._record(raw, "accepted")
        return 202, None, {"X-Message-ID": message_id}, 0.0


@contextlib.contextmanager
def running_sendgrid_standin() -> Iterator[SendGridStandIn]:
    """A started stand-in for a fixture; without the spec the test is skipped locally and fails in CI."""
    from tests.conftest import require

    require(SPEC_PATH.exists(), f"SendGrid Mail Send spec not found at {SPEC_PATH} (expected <repo>/../shared/specs/)")
    with SendGridStandIn() as stand_in:
        yield stand_in
