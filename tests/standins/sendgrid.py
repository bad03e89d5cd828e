"""A SendGrid Mail Send v3 stand-in: ``POST /v3/mail/send`` on 127.0.0.1, validated against the official spec.

Why not Prism: it needs Node and a 90 MB install, returns no ``X-Message-ID``, keeps no state and cannot be
told to fail the next N requests. This stand-in does what our tests need and nothing more:

* ``Authorization: Bearer <api_key>`` required -> otherwise 401 ``{"errors": [{"message", "field"}]}``;
* the JSON body is validated with ``jsonschema`` against the request schema of
  ``shared/specs/sendgrid_mail_v3.json`` (twilio/sendgrid-oai ``tsg_mail_v3.json``) -> 400 in SendGrid's error
  shape, ``field`` in SendGrid's dotted style (``personalizations.0.to``, ``custom_args``);
* success -> ``202 Accepted``, empty body, an ``X-Message-ID`` header; the message is kept in ``.messages``;
* ``fail_next(n, status)`` makes the next ``n`` requests answer ``status`` (429 / 500) before validation.

Use as a context manager (``with SendGridStandIn() as sg: sg.url``), or wrap ``running_sendgrid_standin()``
in a fixture: it skips the test with a clear reason when the spec file is not checked out next to the repo.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = REPO_ROOT.parent / "shared" / "specs" / "sendgrid_mail_v3.json"
SPEC_URI = "urn:relance:sendgrid-mail-v3"
REQUEST_SCHEMA_POINTER = "/components/requestBodies/PostMailSend/content/application~1json/schema"


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


@dataclass
class SendGridStandIn:
    api_key: str = field(default_factory=lambda: "SG." + secrets.token_urlsafe(16))
    spec_path: Path = SPEC_PATH
    messages: list[ReceivedMessage] = field(default_factory=list)
    requests: int = 0

    def __post_init__(self) -> None:
        self._validator = load_validator(self.spec_path)
        self._lock = threading.Lock()
        self._failures: list[int] = []
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- control -------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "stand-in not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fail_next(self, n: int, status: int = 500) -> None:
        """The next ``n`` requests (authorised or not) answer ``status`` with a SendGrid error body."""
        with self._lock:
            self._failures.extend([status] * n)

    def start(self) -> SendGridStandIn:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                return

            def _reply(self, status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None):
                payload = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                if body is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _error(self, status: int, message: str, field_name: str | None = None) -> None:
                self._reply(status, {"errors": [{"message": message, "field": field_name}]})

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, body, headers = stand_in._handle(self.path, dict(self.headers.items()), raw)
                self._reply(status, body, headers)

            def do_GET(self) -> None:  # noqa: N802
                self._error(405 if self.path.startswith("/v3/mail/send") else 404, "not found")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="sendgrid-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SendGridStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- behaviour -----------------------------------------------------------------------------------------
    def _handle(
        self, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, Any] | None, dict[str, str]]:
        def err(status: int, message: str, field_name: str | None = None):
            return status, {"errors": [{"message": message, "field": field_name}]}, {}

        with self._lock:
            self.requests += 1
            forced = self._failures.pop(0) if self._failures else None
        if path.split("?")[0] != "/v3/mail/send":
            return err(404, "not found")
        if forced is not None:
            return err(forced, "too many requests" if forced == 429 else "internal error")
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if auth != f"Bearer {self.api_key}":
            return err(401, "The provided authorization grant is invalid, expired, or revoked")
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return err(400, "Bad Request")
        errors = sorted(self._validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
        if errors:
            return (
                400,
                {"errors": [{"message": e.message, "field": _field_of(e)} for e in errors]},
                {},
            )
        with self._lock:
            message_id = f"standin{next(self._ids):06d}{secrets.token_hex(4)}"
            self.messages.append(ReceivedMessage(message_id=message_id, body=body, headers=headers))
        return 202, None, {"X-Message-ID": message_id}


@contextlib.contextmanager
def running_sendgrid_standin() -> Iterator[SendGridStandIn]:
    """A started stand-in for a fixture; without the spec the test is skipped locally and fails in CI."""
    from tests.conftest import require

    require(SPEC_PATH.exists(), f"SendGrid Mail Send spec not found at {SPEC_PATH} (expected <repo>/../shared/specs/)")
    with SendGridStandIn() as stand_in:
        yield stand_in
