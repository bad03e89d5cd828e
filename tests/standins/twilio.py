"""A Twilio Messages stand-in: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` on 127.0.0.1, validated
against the official spec (``shared/specs/twilio_api_v2010.json``, twilio/twilio-oai).

Why not Prism: it returns the spec's example whatever the input (the same ``to`` and SID every time), keeps no
state and cannot be told to fail. This stand-in does what our tests need and nothing more:

* HTTP Basic auth ``AccountSid:AuthToken`` (the spec's ``accountSid_authToken`` scheme) -> otherwise 401 in
  Twilio's error shape ``{"code": 20003, "message", "more_info", "status"}``; the path's ``AccountSid`` must be
  the caller's (404 otherwise, like a resource that is not yours);
* the form-encoded body is read with the types of the spec's ``CreateMessageRequest`` schema (booleans, integers,
  repeated keys for arrays), then validated with ``jsonschema`` against that schema (``To`` required, SIDs'
  patterns, enums, formats), plus the spec's ``x-twilio.conditional`` groups (``From`` or ``MessagingServiceSid``;
  ``Body``, ``MediaUrl`` or ``ContentSid``) and Twilio's 1,600-character body limit -> 400 with Twilio's error
  codes (21604 no To, 21211 invalid To, 21212 invalid From, 21603 no sender, 21602 no body, 21617 body too long,
  20001 any other bad or unknown parameter -- stricter than Twilio, which ignores unknown ones: a misspelt
  parameter must fail a test);
* success -> ``201`` with a MessageInstance shaped like the spec's response (``sid`` ``SM`` + 32 hex, ``status``
  ``queued``, ``num_segments`` counted here independently of the code under test); the message is kept in
  ``.messages``;
* ``fail_next(n, status)`` -> the next ``n`` requests answer ``status`` (429 with ``Retry-After``, 413, 500...)
  without keeping anything; ``hang_next(n)`` -> the next ``n`` requests are *accepted and kept* but answered only
  after ``seconds`` (or at ``stop()``): the client times out on a message Twilio has, the case a blind resend
  would text twice;
* ``send_status_callback(sid, status)`` posts a status callback to the message's ``StatusCallback`` URL, signed
  with ``X-Twilio-Signature`` like Twilio does (for webhook tests).

Use as a context manager (``with TwilioStandIn() as tw: tw.url``), or wrap ``running_twilio_standin()`` in a
fixture: it skips the test with a clear reason when the spec file is not checked out next to the repo.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import math
import re
import secrets
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = REPO_ROOT.parent / "shared" / "specs" / "twilio_api_v2010.json"
SPEC_URI = "urn:relance:twilio-api-v2010"
MESSAGES_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
_PATH_POINTER = "/paths/" + MESSAGES_PATH.replace("~", "~0").replace("/", "~1") + "/post"
REQUEST_SCHEMA_POINTER = _PATH_POINTER + "/requestBody/content/application~1x-www-form-urlencoded/schema"
RESPONSE_SCHEMA_POINTER = "/components/schemas/api.v2010.account.message"
_MESSAGES_ROUTE = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages\.json$")
MAX_BODY_CHARS = 1600

_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_CHANNEL_ADDRESS = re.compile(r"^[a-z]+:.+$")
_SHORT_CODE = re.compile(r"^\d{3,8}$")
_ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")


def _openapi30_to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schemas as JSON Schema: ``nullable: true`` becomes ``null`` among the allowed types."""
    if isinstance(node, list):
        return [_openapi30_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi30_to_json_schema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        if "type" in out:
            out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
        elif "$ref" in out:
            out = {"anyOf": [{"$ref": out.pop("$ref")}, {"type": "null"}], **out}
    return out


@cache
def _spec(spec_path: Path = SPEC_PATH) -> dict[str, Any]:
    return json.loads(spec_path.read_text(encoding="utf-8"))


@cache
def _json_schema_spec(spec_path: Path = SPEC_PATH) -> dict[str, Any]:
    return _openapi30_to_json_schema(_spec(spec_path))


def _is_phone_number(value: object) -> bool:
    """The spec's ``phone-number`` format: E.164, a channel address (``whatsapp:+1...``), a short code or an
    alphanumeric sender id."""
    if not isinstance(value, str):
        return True
    return any(p.fullmatch(value) for p in (_E164, _CHANNEL_ADDRESS, _SHORT_CODE, _ALPHANUMERIC_SENDER))


def _is_uri(value: object) -> bool:
    """An absolute http(s) URL whose host has no underscore (Twilio's rule for callbacks)."""
    if not isinstance(value, str):
        return True
    parts = urllib.parse.urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and "_" not in (parts.hostname or "")


def _validator(pointer: str, spec_path: Path) -> Any:
    from jsonschema import Draft202012Validator, FormatChecker
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    spec = _json_schema_spec(spec_path)
    registry = Registry().with_resource(SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT202012))
    checker = FormatChecker()
    checker.checks("phone-number")(_is_phone_number)
    checker.checks("uri")(_is_uri)
    return Draft202012Validator({"$ref": f"{SPEC_URI}#{pointer}"}, registry=registry, format_checker=checker)


@cache
def load_request_validator(spec_path: Path = SPEC_PATH) -> Any:
    """A Draft 2020-12 validator for the Messages create request (form fields as typed values)."""
    return _validator(REQUEST_SCHEMA_POINTER, spec_path)


@cache
def load_response_validator(spec_path: Path = SPEC_PATH) -> Any:
    """A Draft 2020-12 validator for a MessageInstance (the 201 body), ``nullable`` read as JSON Schema."""
    return _validator(RESPONSE_SCHEMA_POINTER, spec_path)


def response_properties(spec_path: Path = SPEC_PATH) -> set[str]:
    """The fields the spec gives a MessageInstance."""
    return set(_spec(spec_path)["components"]["schemas"]["api.v2010.account.message"]["properties"])


# --- an independent segment count (not the code under test's) ----------------------------------------------
_GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = "^{}\\[~]|€\f"


def count_segments(body: str) -> int:
    """Segments Twilio reports for ``body`` (ceil over the concatenated capacity; enough for our texts)."""
    if all(c in _GSM_BASIC or c in _GSM_EXTENDED for c in body):
        septets = len(body) + sum(c in _GSM_EXTENDED for c in body)
        return 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(body.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass
class ReceivedSms:
    """One accepted request: the typed form fields as sent, the headers, and the MessageInstance we answered."""

    sid: str
    params: dict[str, Any]
    headers: dict[str, str]
    response: dict[str, Any]

    @property
    def to(self) -> str:
        return str(self.params["To"])

    @property
    def body(self) -> str:
        return str(self.params.get("Body", ""))


def twilio_error(status: int, code: int, message: str) -> dict[str, Any]:
    """Twilio's legacy error body (what the official client parses into ``TwilioRestException``)."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


_FORCED_MESSAGES = {
    413: "Request Entity Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass
class TwilioStandIn:
    account_sid: str = field(default_factory=lambda: "AC" + secrets.token_hex(16))
    auth_token: str = field(default_factory=lambda: secrets.token_hex(16))
    spec_path: Path = SPEC_PATH
    retry_after: str = "1"
    messages: list[ReceivedSms] = field(default_factory=list)
    requests: int = 0

    def __post_init__(self) -> None:
        self._validator = load_request_validator(self.spec_path)
        request_schema = self._resolve(
            _spec(self.spec_path)["paths"][MESSAGES_PATH]["post"]["requestBody"]["content"][
                "application/x-www-form-urlencoded"
            ]["schema"]
        )
        self._properties: dict[str, dict[str, Any]] = {
            name: self._resolve(prop) for name, prop in request_schema["properties"].items()
        }
        by_snake = {_snake(name): name for name in self._properties}
        conditional = _spec(self.spec_path)["paths"][MESSAGES_PATH]["post"]["x-twilio"]["conditional"]
        self._one_of_groups = [tuple(by_snake[n] for n in group) for group in conditional]
        self._lock = threading.Lock()
        self._failures: list[int] = []
        self._hangs: list[float] = []
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        if not ref:
            return schema
        node: Any = _spec(self.spec_path)
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        return node

    # --- control -------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "stand-in not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fail_next(self, n: int, status: int = 500) -> None:
        """The next ``n`` requests (authorised or not) answer ``status`` with a Twilio error body; nothing kept."""
        with self._lock:
            self._failures.extend([status] * n)

    def hang_next(self, n: int = 1, seconds: float = 30.0) -> None:
        """The next ``n`` valid requests are accepted and kept, but answered only after ``seconds`` (or at stop)."""
        with self._lock:
            self._hangs.extend([seconds] * n)

    def message(self, sid: str) -> ReceivedSms:
        return next(m for m in self.messages if m.sid == sid)

    def send_status_callback(self, sid: str, status: str = "delivered", *, error_code: int | None = None) -> int:
        """POST Twilio's status callback for message ``sid`` to its ``StatusCallback``, signed with the auth token
        (``X-Twilio-Signature``); returns the HTTP status the receiver answered."""
        from twilio.request_validator import RequestValidator

        sms = self.message(sid)
        url = sms.params["StatusCallback"]
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "From": sms.response.get("from") or "",
            "MessageSid": sid,
            "MessageStatus": status,
            "SmsSid": sid,
            "SmsStatus": status,
            "To": sms.to,
        }
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        request = urllib.request.Request(
            url,
            data=urllib.parse.urlencode(params).encode(),
            headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def start(self) -> TwilioStandIn:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                return

            def _reply(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
                payload = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up (timeout) before the answer
                    self.close_connection = True

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, body, headers, delay = stand_in._handle(self.path, dict(self.headers.items()), raw)
                if delay:
                    stand_in._release.wait(delay)
                self._reply(status, body, headers)

            def do_GET(self) -> None:  # noqa: N802
                status = 405 if _MESSAGES_ROUTE.match(self.path.split("?")[0]) else 404
                self._reply(status, twilio_error(status, 20000 + status, "not supported by the stand-in"), {})

        self._release.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="twilio-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()  # answer hung requests so their threads end
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> TwilioStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- behaviour -----------------------------------------------------------------------------------------
    def _authorised(self, headers: dict[str, str]) -> bool:
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        scheme, _, encoded = auth.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return secrets.compare_digest(user, self.account_sid) and secrets.compare_digest(password, self.auth_token)

    def _typed(self, form: dict[str, list[str]]) -> tuple[dict[str, Any], str | None]:
        """The form fields with the spec's types, or the first field that cannot be read."""
        params: dict[str, Any] = {}
        for name, values in form.items():
            prop = self._properties.get(name)
            if prop is None:
                return params, f"Unknown parameter: {name}"
            kind = prop.get("type")
            if kind == "array":
                params[name] = values
                continue
            if len(values) > 1:
                return params, f"Parameter {name} given {len(values)} times"
            value = values[0]
            try:
                if kind == "boolean":
                    if value.lower() not in ("true", "false"):
                        raise ValueError(value)
                    params[name] = value.lower() == "true"
                elif kind == "integer":
                    params[name] = int(value)
                elif kind == "number":
                    params[name] = float(value)
                else:
                    params[name] = value
            except ValueError:
                return params, f"Invalid value for {name}: {value!r} is not a {kind}"
        return params, None

    def _invalid(self, params: dict[str, Any]) -> tuple[int, str] | None:
        """(Twilio error code, message) of the first problem with the request, or None."""
        from phonenumbers import NumberParseException, is_possible_number, parse

        errors = sorted(self._validator.iter_errors(params), key=lambda e: list(map(str, e.absolute_path)))
        for error in errors:
            where = str(error.absolute_path[0]) if error.absolute_path else ""
            if error.validator == "required" and "To" not in params:
                return 21604, "A 'To' phone number is required."
            if where == "To":
                return 21211, f"Invalid 'To' Phone Number: {params.get('To')}"
            if where == "From":
                return 21212, f"Invalid 'From' Phone Number: {params.get('From')}"
            if where == "StatusCallback":
                return 21609, f"Invalid StatusCallback url: {params.get('StatusCallback')}"
            return 20001, f"Invalid parameter {where or '(body)'}: {error.message}"
        to = str(params["To"])
        if _E164.fullmatch(to):
            try:
                possible = is_possible_number(parse(to, None))
            except NumberParseException:
                possible = False
            if not possible:
                return 21211, f"Invalid 'To' Phone Number: {to}"
        elif not _CHANNEL_ADDRESS.fullmatch(to):
            return 21211, f"Invalid 'To' Phone Number: {to}"
        senders, contents = self._one_of_groups
        if not any(params.get(name) for name in senders):
            return 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message"
        if not any(params.get(name) for name in contents):
            return 21602, "Message body is required."
        if len(str(params.get("Body", ""))) > MAX_BODY_CHARS:
            return 21617, f"The concatenated message body exceeds the {MAX_BODY_CHARS} character limit."
        return None

    def _instance(self, sid: str, params: dict[str, Any]) -> dict[str, Any]:
        now = format_datetime(datetime.now(UTC), usegmt=False).replace("-0000", "+0000")
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}"
        body = str(params.get("Body", ""))
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": params.get("From"),
            "messaging_service_sid": params.get("MessagingServiceSid"),
            "num_media": str(len(params.get("MediaUrl", []))),
            "num_segments": str(count_segments(body)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": params["To"],
            "uri": f"{uri}.json",
        }

    def _handle(
        self, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str], float]:
        def err(status: int, code: int, message: str, extra: dict[str, str] | None = None):
            return status, twilio_error(status, code, message), extra or {}, 0.0

        with self._lock:
            self.requests += 1
            forced = self._failures.pop(0) if self._failures else None
        route = _MESSAGES_ROUTE.match(path.split("?")[0])
        if route is None:
            return err(404, 20404, f"The requested resource {path} was not found")
        if forced is not None:
            extra = {"Retry-After": self.retry_after} if forced == 429 else {}
            return err(forced, 20000 + forced, _FORCED_MESSAGES.get(forced, "Error"), extra)
        if not self._authorised(headers):
            return err(401, 20003, "Authenticate")
        if route.group(1) != self.account_sid:
            return err(404, 20404, f"The requested resource {path} was not found")
        content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        if content_type.split(";")[0].strip() != "application/x-www-form-urlencoded":
            return err(400, 20001, f"Expected a form-encoded body, got {content_type!r}")
        try:
            form = urllib.parse.parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw))
        except (UnicodeDecodeError, ValueError):
            return err(400, 20001, "Malformed form body")
        params, problem = self._typed(form)
        if problem:
            return err(400, 20001, problem)
        invalid = self._invalid(params)
        if invalid:
            return err(400, *invalid)
        sid = "SM" + secrets.token_hex(16)
        instance = self._instance(sid, params)
        with self._lock:
            self.messages.append(ReceivedSms(sid=sid, params=copy.deepcopy(params), headers=headers, response=instance))
            delay = self._hangs.pop(0) if self._hangs else 0.0
        return 201, instance, {}, delay


@contextlib.contextmanager
def running_twilio_standin(**kwargs: Any) -> Iterator[TwilioStandIn]:
    """A started stand-in for a fixture; without the spec the test is skipped locally and fails in CI."""
    from tests.conftest import require

    require(SPEC_PATH.exists(), f"Twilio API v2010 spec not found at {SPEC_PATH} (expected <repo>/../shared/specs/)")
    with TwilioStandIn(**kwargs) as stand_in:
        yield stand_in
