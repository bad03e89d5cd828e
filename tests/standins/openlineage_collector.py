"""A Marquez-compatible OpenLineage collector stand-in: ``POST /api/v1/lineage`` on 127.0.0.1, spec-validated.

Marquez itself ships only as Docker images and Maven artefacts (not installable here). This stand-in speaks the
part of its API relance uses:

* ``POST /api/v1/lineage`` with one event as JSON (``Content-Type: application/json``, optionally gzip-encoded);
* when the stand-in has an ``api_key``: ``Authorization: Bearer <api_key>`` required, else ``401``;
* the event is validated against ``../shared/specs/openlineage/OpenLineage.json`` and the facet schemas
  (``tests.lineage_spec.event_errors``) -> ``422`` with ``{"errors": [...]}`` when invalid (nothing stored);
* a valid event -> ``201 Created``, empty body, kept in ``.events`` (parsed JSON) in arrival order;
* ``GET /api/v1/namespaces/<ns>/jobs`` lists the jobs seen in a namespace (``{"jobs": [{"name": ...}]}``), a
  small part of Marquez's read API, enough to see what a collector would show.

``fail_next(n, status)`` answers ``status`` to the next ``n`` POSTs (nothing stored); ``recover()`` forgets
the ones not used yet. ``.rejected`` keeps the
errors of refused events. Use as a context manager: ``with OpenLineageCollector() as c: c.url``.
"""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.lineage_spec import SPEC_DIR, event_errors

LINEAGE_PATH = "/api/v1/lineage"


class OpenLineageCollector:
    def __init__(self, *, api_key: str | None = None, spec_dir: Path = SPEC_DIR) -> None:
        self.api_key = api_key
        self.spec_dir = spec_dir
        self.events: list[dict[str, Any]] = []
        self.rejected: list[list[str]] = []
        self.requests = 0
        self._fail: list[int] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> OpenLineageCollector:
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet: pytest shows what matters
                return

            def _answer(self, status: int, body: dict[str, Any] | None = None) -> None:
                data = b"" if body is None else json.dumps(body).encode("utf-8")
                self.send_response(status)
                if body is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, body = collector._receive(self.path, dict(self.headers.items()), raw)
                self._answer(status, body)

            def do_GET(self) -> None:  # noqa: N802
                status, body = collector._read(self.path)
                self._answer(status, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="ol-collector", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> OpenLineageCollector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "collector not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- faults ------------------------------------------------------------------------------------------------

    def fail_next(self, n: int, status: int = 503) -> None:
        with self._lock:
            self._fail += [status] * n

    def recover(self) -> None:
        """Forget the scripted failures not used yet: the next POST is handled normally."""
        with self._lock:
            self._fail.clear()

    # --- the wire ----------------------------------------------------------------------------------------------

    def _receive(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any] | None]:
        with self._lock:
            self.requests += 1
            failing = self._fail.pop(0) if self._fail else None
        if path.split("?", 1)[0] != LINEAGE_PATH:
            return 404, {"error": f"no route {path}"}
        if failing is not None:
            return failing, {"error": "scripted failure"}
        headers = {k.lower(): v for k, v in headers.items()}
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, {"error": "missing or wrong bearer token"}
        if not headers.get("content-type", "").startswith("application/json"):
            return 415, {"error": "Content-Type must be application/json"}
        if headers.get("content-encoding") == "gzip":
            raw = gzip.decompress(raw)
        try:
            event = json.loads(raw)
        except ValueError as exc:
            return 400, {"errors": [f"not JSON: {exc}"]}
        errors = event_errors(event, self.spec_dir)
        if errors:
            with self._lock:
                self.rejected.append(errors)
            return 422, {"errors": errors}
        with self._lock:
            self.events.append(event)
        return 201, None

    def _read(self, path: str) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        if len(parts) == 5 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "jobs":
            with self._lock:
                names = sorted({e["job"]["name"] for e in self.events if e.get("job", {}).get("namespace") == parts[3]})
            return 200, {"jobs": [{"name": n} for n in names]}
        return 404, {"error": f"no route {path}"}
