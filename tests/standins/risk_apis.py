"""Local HTTP stand-ins for the three company-risk registries, on 127.0.0.1, speaking their wire format.

* :class:`BodaccStandIn` - Opendatasoft Explore v2.1 records of ``annonces-commerciales`` (:data:`RECORDS_PATH`):
  the ODSQL subset our client sends (``registre="…"``, ``registre in (…)``, ``familleavis …``, date comparisons
  ``dateparution>=date'…'``, the keyset ``(dateparution > date'…' OR (dateparution = date'…' AND id > "…"))``,
  AND/OR/NOT, parentheses) parsed by a small recursive-descent parser; ``refine``, ``order_by``, ``limit`` (400
  above 100) and ``offset`` (400 when offset + limit > 10,000, like the platform); ``{"total_count", "results"}``;
  a 400 ``{"error_code": "ODSQLError", "message"}`` for anything it does not parse. Serves the real v2.1 records of
  ``shared/data/risk_samples`` plus any generated ones (:func:`generate_notices`).
* :class:`RechercheStandIn` - ``GET /search``: a nine-digit ``q`` is a direct lookup; ``per_page`` 1..25 and the
  API's real 400 bodies (``{"erreur": …}``); optionally 429 beyond 7 requests in a sliding second, like the API.
  Serves the real DANONE (q=552032534) and CARREFOUR (CTIM) results.
* :class:`CompaniesHouseStandIn` - Basic auth with the key as username (401 otherwise), ``/company/{n}`` (the real
  00006402 profile and profiles derived from it), ``/company/{n}/insolvency`` (the real streaming-API cases; 404
  for a solvent company), ``/company/{n}/officers`` paged by ``items_per_page`` / ``start_index``.

Every stand-in records each request (:class:`RecordedRequest`: method, path, params, headers, arrival time on the
monotonic clock, status answered) and takes injected faults for the next requests (:meth:`_StandIn.enqueue`,
:meth:`_StandIn.fail_next`, :meth:`_StandIn.delay_next`, :meth:`_StandIn.fail_always`): any status, headers such as
``Retry-After``, raw body bytes (malformed JSON, Latin-1), and a delay that outlasts a client's timeout.

Use as context managers: ``with BodaccStandIn() as bodacc: BodaccClient(bodacc.url, ...)``.
Error bodies: the Recherche ones come from the API's own code/tests (``recherche_entreprises_error_payloads.json``
and search-api ``search_params_model.py``); the Opendatasoft and Companies House ones follow the platforms' documented
shapes ``{"error_code", "message"}`` / ``{"errors": [{"error", "type"}]}``, their exact wording is not verified.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SAMPLES = SHARED / "data" / "risk_samples"

RECORDS_PATH = "/api/explore/v2.1/catalog/datasets/annonces-commerciales/records"
MAX_LIMIT = 100
RESULT_WINDOW = 10_000

#: Truncated JSON: what a proxy cutting a response short delivers.
MALFORMED_JSON = b'{"total_count": 3, "results": [{"id": "A202002333642", "dateparution": "2020-'


def load_sample(name: str) -> Any:
    """A real payload from ``shared/data/risk_samples`` (read-only)."""
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def samples_available() -> bool:
    return SAMPLES.is_dir()


def json_bytes(payload: Any) -> bytes:
    """UTF-8 JSON with the accents as bytes, the way the registries send it."""
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def latin1_bytes(payload: Any) -> bytes:
    """The same JSON encoded as Latin-1: ``é`` becomes the lone byte 0xE9, which is not UTF-8."""
    return json.dumps(payload, ensure_ascii=False).encode("latin-1")


@dataclass
class CannedResponse:
    """An injected answer. ``status=None``: wait ``delay`` seconds, then answer normally (to trip a timeout)."""

    status: int | None = 500
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def canned_json(status: int, payload: Any, headers: dict[str, str] | None = None) -> CannedResponse:
    return CannedResponse(status, json_bytes(payload), {"Content-Type": "application/json", **(headers or {})})


@dataclass
class RecordedRequest:
    """One request as it arrived: ``at`` is ``time.monotonic()`` at arrival, ``status`` what was answered."""

    method: str
    path: str
    params: dict[str, list[str]]
    headers: dict[str, str]
    at: float
    status: int | None = None

    def param(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[0] if values else None


Reply = tuple[int, dict[str, str], bytes]


def _json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    return status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, json_bytes(payload)


class _StandIn:
    """A ThreadingHTTPServer on 127.0.0.1:0 in a daemon thread, with a request log and a fault queue."""

    name = "stand-in"

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._faults: deque[CannedResponse] = deque()
        self._always: CannedResponse | None = None
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- control -----------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, f"{self.name} stand-in not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def enqueue(self, *responses: CannedResponse) -> None:
        """The next ``len(responses)`` requests get these answers, in order, whatever they ask."""
        with self._lock:
            self._faults.extend(responses)

    def fail_next(
        self, n: int, status: int = 500, *, headers: dict[str, str] | None = None, body: bytes | None = None
    ) -> None:
        default = json_bytes({"error": f"injected {status}"})
        self.enqueue(
            *[CannedResponse(status, default if body is None else body, dict(headers or {})) for _ in range(n)]
        )

    def delay_next(self, n: int, seconds: float) -> None:
        """The next ``n`` requests are answered normally, but only after ``seconds``."""
        self.enqueue(*[CannedResponse(None, delay=seconds) for _ in range(n)])

    def fail_always(
        self, status: int = 500, *, headers: dict[str, str] | None = None, body: bytes | None = None
    ) -> None:
        """Every request from now on (after the queued ones) answers ``status``, until :meth:`clear_faults`."""
        with self._lock:
            self._always = CannedResponse(
                status, json_bytes({"error": "injected"}) if body is None else body, headers or {}
            )

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._always = None

    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    # --- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> _StandIn:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                return

            def do_GET(self) -> None:  # noqa: N802 (http.server naming)
                status, headers, body = stand_in._handle("GET", self.path, dict(self.headers.items()))
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout): nothing to do
                    self.close_connection = True

        self._stopping.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # a short poll interval: shutdown() waits for the loop to notice, 0.5 s per test by default
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name=f"{self.name}-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases delayed handlers at once
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self):  # noqa: ANN204 (each subclass returns itself)
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- dispatch ----------------------------------------------------------------------------------------
    def _handle(self, method: str, raw_path: str, headers: dict[str, str]) -> Reply:
        parts = urlsplit(raw_path)
        params = parse_qs(parts.query, keep_blank_values=True)
        record = RecordedRequest(method, parts.path, params, headers, time.monotonic())
        with self._lock:
            self.requests.append(record)
            fault = self._faults.popleft() if self._faults else self._always
        reply: Reply
        if fault is not None and fault.delay > 0:
            self._stopping.wait(fault.delay)
        if fault is not None and fault.status is not None:
            reply = (fault.status, dict(fault.headers), fault.body)
        else:
            try:
                reply = self.route(method, parts.path, params, headers)
            except Exception as exc:  # a stand-in bug must show as a 500 with its reason, not a hung test
                reply = _json_reply(500, {"error": f"stand-in error: {type(exc).__name__}: {exc}"})
        record.status = reply[0]
        return reply

    def route(self, method: str, path: str, params: dict[str, list[str]], headers: dict[str, str]) -> Reply:
        raise NotImplementedError


# =====================================================================================================================
# BODACC (Opendatasoft Explore v2.1)
# =====================================================================================================================


class ODSQLError(ValueError):
    """A ``where`` / ``order_by`` / ``refine`` the stand-in does not understand: 400 ODSQLError."""


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<date>date\s*'(?P<dval>[^']*)')
      | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<num>-?\d+(?:\.\d+)?)
      | (?P<op>>=|<=|!=|=|>|<)
      | (?P<lp>\()
      | (?P<rp>\))
      | (?P<comma>,)
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE | re.IGNORECASE,
)
_KEYWORDS = {"AND", "OR", "NOT", "IN"}


@dataclass(frozen=True)
class _Tok:
    kind: str  # date | str | num | op | lp | rp | comma | word | kw | end
    value: Any
    pos: int


def _unescape(quoted: str) -> str:
    return re.sub(r"\\(.)", r"\1", quoted[1:-1])


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ODSQLError(f"unexpected character {text[pos:].lstrip()[:1]!r} at position {pos}")
        kind = m.lastgroup if m.lastgroup != "dval" else "date"
        if m.group("date") is not None:
            try:
                tokens.append(_Tok("date", date.fromisoformat(m.group("dval")).isoformat(), m.start()))
            except ValueError:
                raise ODSQLError(f"invalid date literal {m.group('date')!r}") from None
        elif kind == "str":
            tokens.append(_Tok("str", _unescape(m.group("str")), m.start()))
        elif kind == "num":
            num = m.group("num")
            tokens.append(_Tok("num", float(num) if "." in num else int(num), m.start()))
        elif kind == "word" and m.group("word").upper() in _KEYWORDS:
            tokens.append(_Tok("kw", m.group("word").upper(), m.start()))
        else:
            tokens.append(_Tok(str(kind), m.group(str(kind)), m.start()))
        pos = m.end()
    tokens.append(_Tok("end", None, len(text)))
    return tokens


Predicate = Callable[[dict[str, Any]], bool]

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def _field_test(name: str, test: Callable[[Any], bool]) -> Predicate:
    """A multivalued field (``registre``) matches when any of its values does; null never matches."""

    def predicate(record: dict[str, Any]) -> bool:
        value = record.get(name)
        values = value if isinstance(value, list) else [value]
        for v in values:
            if v is None:
                continue
            try:
                if test(v):
                    return True
            except TypeError:  # comparing a number with a string: no match, like a typed engine
                continue
        return False

    return predicate


class _Parser:
    """where := or ; or := and ('OR' and)* ; and := unary ('AND' unary)* ; unary := 'NOT' unary | primary ;
    primary := '(' or ')' | field op literal | field 'IN' '(' literal (',' literal)* ')'"""

    def __init__(self, text: str, fields: frozenset[str]) -> None:
        self.tokens = _tokenize(text)
        self.i = 0
        self.fields = fields

    def parse(self) -> Predicate:
        predicate = self._or()
        tok = self.tokens[self.i]
        if tok.kind != "end":
            raise ODSQLError(f"unexpected {tok.value!r} at position {tok.pos}")
        return predicate

    def _peek(self) -> _Tok:
        return self.tokens[self.i]

    def _take(self, kind: str, value: str | None = None) -> _Tok:
        tok = self.tokens[self.i]
        if tok.kind != kind or (value is not None and tok.value != value):
            want = value or kind
            got = "end of query" if tok.kind == "end" else repr(tok.value)
            raise ODSQLError(f"expected {want} at position {tok.pos}, found {got}")
        self.i += 1
        return tok

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._peek().kind == "kw" and self._peek().value == "OR":
            self.i += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda r: any(p(r) for p in parts))

    def _and(self) -> Predicate:
        parts = [self._unary()]
        while self._peek().kind == "kw" and self._peek().value == "AND":
            self.i += 1
            parts.append(self._unary())
        return parts[0] if len(parts) == 1 else (lambda r: all(p(r) for p in parts))

    def _unary(self) -> Predicate:
        if self._peek().kind == "kw" and self._peek().value == "NOT":
            self.i += 1
            inner = self._unary()
            return lambda r: not inner(r)
        return self._primary()

    def _literal(self) -> Any:
        tok = self._peek()
        if tok.kind in ("str", "num", "date"):
            self.i += 1
            return tok.value
        got = "end of query" if tok.kind == "end" else repr(tok.value)
        raise ODSQLError(f"expected a literal at position {tok.pos}, found {got}")

    def _primary(self) -> Predicate:
        if self._peek().kind == "lp":
            self.i += 1
            inner = self._or()
            self._take("rp")
            return inner
        name_tok = self._take("word")
        name = name_tok.value
        if name not in self.fields:
            raise ODSQLError(f"Unknown field: {name}")
        tok = self._peek()
        if tok.kind == "kw" and tok.value == "IN":
            self.i += 1
            self._take("lp")
            values = [self._literal()]
            while self._peek().kind == "comma":
                self.i += 1
                values.append(self._literal())
            self._take("rp")
            wanted = set(values)
            return _field_test(name, lambda v: v in wanted)
        if tok.kind != "op":
            got = "end of query" if tok.kind == "end" else repr(tok.value)
            raise ODSQLError(f"expected an operator after {name} at position {tok.pos}, found {got}")
        self.i += 1
        literal = self._literal()
        compare = _COMPARE[tok.value]
        return _field_test(name, lambda v: compare(v, literal))


def parse_where(text: str, fields: Iterable[str]) -> Predicate:
    return _Parser(text, frozenset(fields)).parse()


def parse_order_by(text: str, fields: Iterable[str]) -> list[tuple[str, bool]]:
    """``"dateparution asc, id asc"`` -> [("dateparution", False), ("id", False)] (True = descending)."""
    known = frozenset(fields)
    keys: list[tuple[str, bool]] = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise ODSQLError(f"invalid order_by expression {part.strip()!r}")
        if words[0] not in known:
            raise ODSQLError(f"Unknown field: {words[0]}")
        keys.append((words[0], len(words) == 2 and words[1].lower() == "desc"))
    return keys


_REFINE = re.compile(r'^(?P<field>[A-Za-z_][A-Za-z0-9_]*):(?:"(?P<q>(?:[^"\\]|\\.)*)"|(?P<bare>.+))$')

#: Every field of the dataset (reference §1.3): a where on another name is an ODSQL error, as on the platform.
BODACC_FIELDS: frozenset[str] = frozenset(
    {
        "id",
        "publicationavis",
        "publicationavis_facette",
        "parution",
        "dateparution",
        "numeroannonce",
        "typeavis",
        "typeavis_lib",
        "familleavis",
        "familleavis_lib",
        "numerodepartement",
        "departement_nom_officiel",
        "region_code",
        "region_nom_officiel",
        "tribunal",
        "commercant",
        "ville",
        "registre",
        "cp",
        "pdf_parution_subfolder",
        "ispdf_unitaire",
        "listepersonnes",
        "listeetablissements",
        "jugement",
        "acte",
        "modificationsgenerales",
        "radiationaurcs",
        "depot",
        "listeprecedentexploitant",
        "listeprecedentproprietaire",
        "divers",
        "parutionavisprecedent",
        "url_complete",
    }
)

_FAMILY_LABELS = {
    "collective": ("A", "Procédures collectives"),
    "conciliation": ("A", "Procédures de conciliation"),
    "retablissement_professionnel": ("A", "Procédures de rétablissement professionnel"),
    "vente": ("A", "Ventes et cessions"),
    "immatriculation": ("A", "Immatriculations"),
    "creation": ("A", "Créations"),
    "modification": ("B", "Modifications diverses"),
    "radiation": ("B", "Radiations"),
    "dpc": ("C", "Dépôts des comptes"),
    "divers": ("A", "Avis divers"),
}


def _spaced(siren: str) -> str:
    return f"{siren[:3]} {siren[3:6]} {siren[6:]}"


def generate_notices(
    siren: str,
    count: int,
    *,
    start: date = date(2015, 1, 5),
    per_day: int = 37,
    families: Sequence[str] = ("dpc", "modification", "collective"),
    name: str = "SOCIÉTÉ GÉNÉRÉE",
) -> list[dict[str, Any]]:
    """``count`` v2.1 records naming ``siren``, ``per_day`` per publication date from ``start``.

    Same field set and shapes as the real records (nested blocks as JSON strings, ``registre`` holding the SIREN
    twice in varying order). Ids are letter + parution + numéro with numéros of varying length, so their string
    order within a day differs from their numeric order: the keyset must follow the server's string order.
    """
    records: list[dict[str, Any]] = []
    for i in range(count):
        day = start + timedelta(days=i // per_day)
        family = families[i % len(families)]
        letter, label = _FAMILY_LABELS[family]
        parution = f"{day.year}{(day.timetuple().tm_yday % 250) + 1:04d}"
        numero = 7 + (i % per_day) * 97  # 7, 104, 201, ... varying length
        notice_id = f"{letter}{parution}{numero}{i // per_day % 10}"
        registre = [siren, _spaced(siren)] if i % 2 else [_spaced(siren), siren]
        jugement = depot = modifs = None
        if family == "collective":
            jugement = json.dumps(
                {
                    "type": "initial",
                    "famille": "Jugement d'ouverture",
                    "nature": "Jugement d'ouverture d'une procédure de redressement judiciaire",
                    "date": (day - timedelta(days=10)).isoformat(),
                },
                ensure_ascii=False,
            )
        elif family == "dpc":
            depot = json.dumps({"dateCloture": f"{day.year - 1}-12-31", "typeDepot": "Comptes annuels"})
        elif family == "modification":
            modifs = json.dumps({"descriptif": "Modification survenue sur l'administration."}, ensure_ascii=False)
        records.append(
            {
                "id": notice_id,
                "publicationavis": letter,
                "publicationavis_facette": f"Bodacc {letter}",
                "parution": parution,
                "dateparution": day.isoformat(),
                "numeroannonce": numero,
                "typeavis": "annonce",
                "typeavis_lib": "Avis initial",
                "familleavis": family,
                "familleavis_lib": label,
                "numerodepartement": "75",
                "departement_nom_officiel": "Paris",
                "region_code": 11,
                "region_nom_officiel": "Île-de-France",
                "tribunal": "Greffe du Tribunal de Commerce de Paris",
                "commercant": name,
                "ville": "Paris",
                "registre": registre,
                "cp": "75009",
                "pdf_parution_subfolder": 1,
                "ispdf_unitaire": "oui",
                "listepersonnes": json.dumps(
                    {"personne": {"typePersonne": "pm", "denomination": name}}, ensure_ascii=False
                ),
                "listeetablissements": None,
                "jugement": jugement,
                "acte": None,
                "modificationsgenerales": modifs,
                "radiationaurcs": None,
                "depot": depot,
                "listeprecedentexploitant": None,
                "listeprecedentproprietaire": None,
                "divers": None,
                "parutionavisprecedent": None,
                "url_complete": f"https://www.bodacc.fr/pages/annonces-commerciales-detail/?q.id=id:{notice_id}",
            }
        )
    return records


def _sort_key(keys: list[tuple[str, bool]]) -> Callable[[dict[str, Any]], Any]:
    return lambda r: tuple(_Desc(r.get(k)) if desc else _Asc(r.get(k)) for k, desc in keys)


class _Asc:
    """Orders values of one field; null first (ascending), mixed types by type name."""

    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def _k(self) -> tuple[int, str, Any]:
        return (0, "", 0) if self.v is None else (1, type(self.v).__name__, self.v)

    def __lt__(self, other: _Asc) -> bool:
        return self._k() < other._k()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Asc) and self._k() == other._k()


class _Desc(_Asc):
    def __lt__(self, other: _Asc) -> bool:
        return other._k() < self._k()


class BodaccStandIn(_StandIn):
    """The records endpoint of ``annonces-commerciales``. ``records`` defaults to the real v2.1 samples."""

    name = "bodacc"

    def __init__(self, records: Sequence[dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.records: list[dict[str, Any]] = (
            list(load_sample("bodacc_v21_records_examples.json")["results"]) if records is None else list(records)
        )
        self._memo: dict[tuple[Any, ...], list[dict[str, Any]]] = {}

    def add_records(self, records: Iterable[dict[str, Any]]) -> None:
        with self._lock:
            self.records.extend(records)
            self._memo.clear()

    @staticmethod
    def _error(error_code: str, message: str) -> Reply:
        return _json_reply(400, {"error_code": error_code, "message": message})

    def route(self, method: str, path: str, params: dict[str, list[str]], headers: dict[str, str]) -> Reply:
        if path != RECORDS_PATH:
            return _json_reply(404, {"error_code": "NotFound", "message": f"Unknown path {path}"})

        def single(name: str) -> str | None:
            values = params.get(name)
            return values[-1] if values else None

        try:
            limit = int(single("limit") or 10)
            offset = int(single("offset") or 0)
        except ValueError:
            return self._error("InvalidRESTParameterError", "Invalid value for limit or offset API parameter")
        if not -1 <= limit <= MAX_LIMIT:
            return self._error(
                "InvalidRESTParameterError",
                f"Invalid value for limit API parameter: {limit} was found but -1 <= limit <= {MAX_LIMIT} is expected.",
            )
        if offset < 0:
            return self._error("InvalidRESTParameterError", f"Invalid value for offset API parameter: {offset}.")
        if offset + max(limit, 0) > RESULT_WINDOW:
            return self._error(
                "InvalidRESTParameterError",
                f"Invalid value for offset+limit API parameter: {offset + limit} was found but "
                f"offset+limit <= {RESULT_WINDOW} is expected.",
            )
        where = single("where") or ""
        order_by = single("order_by") or ""
        refines = tuple(params.get("refine", []))
        try:
            rows = self._select(where, order_by, refines)
        except ODSQLError as exc:
            return self._error("ODSQLError", f"ODSQL query is malformed: {exc}")
        page = rows[offset:] if limit == -1 else rows[offset : offset + limit]
        return _json_reply(200, {"total_count": len(rows), "results": page})

    def _select(self, where: str, order_by: str, refines: tuple[str, ...]) -> list[dict[str, Any]]:
        key = (where, order_by, refines)
        with self._lock:
            cached = self._memo.get(key)
            records = list(self.records)
        if cached is not None:
            return cached
        tests: list[Predicate] = []
        if where.strip():
            try:
                tests.append(parse_where(where, BODACC_FIELDS))
            except ODSQLError as exc:
                raise ODSQLError(f"{exc} Clause(s) containing the error(s): where.") from None
        for refine in refines:
            m = _REFINE.match(refine)
            if m is None or m.group("field") not in BODACC_FIELDS:
                raise ODSQLError(f"invalid refine {refine!r}")
            value = _unescape(f'"{m.group("q")}"') if m.group("q") is not None else m.group("bare")
            tests.append(_field_test(m.group("field"), lambda v, value=value: str(v) == value))
        rows = [r for r in records if all(t(r) for t in tests)]
        if order_by.strip():
            rows.sort(key=_sort_key(parse_order_by(order_by, BODACC_FIELDS)))
        with self._lock:
            self._memo[key] = rows
        return rows


# =====================================================================================================================
# API Recherche d'entreprises
# =====================================================================================================================

PER_PAGE_ERROR = "Veuillez indiquer un paramètre `per_page` entre `1` et `25`, par défaut `10`."
PAGE_DEPTH_ERROR = (
    "Le nombre total de résultats est restreint à 10 000. Pour garantir cela, le produit du numéro de page "
    "(par défaut, page = 1) et du nombre de résultats par page (par défaut, per_page = 10), c'est-à-dire "
    "`page * per_page`, ne doit pas excéder 10 000."
)


class RechercheStandIn(_StandIn):
    """``GET /search`` of the API Recherche d'entreprises, with the real DANONE and CARREFOUR (CTIM) results.

    ``max_per_second``: answer 429 (``Retry-After: 1``) to a request that would be the 8th in a sliding second,
    as the API does per IP; None to turn that off.
    """

    name = "recherche"

    def __init__(self, companies: Sequence[dict[str, Any]] | None = None, max_per_second: int | None = 7) -> None:
        super().__init__()
        if companies is None:
            companies = [
                load_sample("recherche_entreprises_search_q_552032534.json")["results"][0],
                load_sample("recherche_entreprises_search_q_carrefour_per_page_1.json")["results"][0],
            ]
        self.companies: dict[str, dict[str, Any]] = {c["siren"]: c for c in companies}
        self.errors: dict[str, dict[str, str]] = load_sample("recherche_entreprises_error_payloads.json")
        self.max_per_second = max_per_second
        self._served: deque[float] = deque()

    def _over_rate(self) -> bool:
        if self.max_per_second is None:
            return False
        now = time.monotonic()
        with self._lock:
            while self._served and now - self._served[0] >= 1.0:
                self._served.popleft()
            if len(self._served) >= self.max_per_second:
                return True
            self._served.append(now)
        return False

    def route(self, method: str, path: str, params: dict[str, list[str]], headers: dict[str, str]) -> Reply:
        if path != "/search":
            return _json_reply(404, {"erreur": "Not Found"})
        if self._over_rate():
            return 429, {"Content-Type": "text/plain; charset=utf-8", "Retry-After": "1"}, b"Too Many Requests"

        def single(name: str) -> str | None:
            values = params.get(name)
            return values[-1] if values else None

        for name in ("page", "per_page"):
            value = single(name)
            if value is not None and not re.fullmatch(r"-?\d+", value):
                return _json_reply(400, {"erreur": f"Veuillez indiquer un paramètre `{name}` entier."})
        page = int(single("page") or 1)
        per_page = int(single("per_page") or 10)
        if not 1 <= per_page <= 25:
            return _json_reply(400, {"erreur": PER_PAGE_ERROR})
        if page < 1:
            return _json_reply(400, {"erreur": "Veuillez indiquer un paramètre `page` entre `1` et `1000`."})
        if page * per_page > 10_000:
            return _json_reply(400, {"erreur": PAGE_DEPTH_ERROR})
        for name in ("date_naissance_personne_min", "date_naissance_personne_max"):
            value = single(name)
            if value is not None:
                try:
                    date.fromisoformat(value)
                except ValueError:
                    return _json_reply(400, self.errors["400_bad_date"])
        q = (single("q") or "").strip()
        filters = set(params) - {"q", "page", "per_page", "minimal", "include", "limite_matching_etablissements"}
        if not q and not filters:
            return _json_reply(400, self.errors["400_no_param"])
        if q and len(q) < 3 and not filters:
            return _json_reply(400, self.errors["400_query_too_short"])
        compact = q.replace(" ", "")
        if re.fullmatch(r"\d{9}", compact):  # direct lookup: other filters ignored
            found = [self.companies[compact]] if compact in self.companies else []
        elif re.fullmatch(r"\d{14}", compact):
            found = [self.companies[compact[:9]]] if compact[:9] in self.companies else []
        else:
            found = [c for c in self.companies.values() if q.lower() in str(c.get("nom_complet", "")).lower()]
        start = (page - 1) * per_page
        total = len(found)
        return _json_reply(
            200,
            {
                "results": found[start : start + per_page],
                "total_results": total,
                "page": page,
                "per_page": per_page,
                "total_pages": -(-total // per_page),
            },
        )


# =====================================================================================================================
# UK Companies House
# =====================================================================================================================


def _derived_profile(base: dict[str, Any], number: str, name: str, *, insolvent: bool, status: str) -> dict[str, Any]:
    """A profile with the real 00006402 payload's shape for another company (the samples hold one profile)."""
    profile = copy.deepcopy(base)
    profile.update(company_number=number, company_name=name, company_status=status)
    profile["has_insolvency_history"] = insolvent
    links = {k: v.replace("00006402", number) for k, v in profile["links"].items() if k != "insolvency"}
    if insolvent:
        links["insolvency"] = f"/company/{number}/insolvency"
    else:
        profile["accounts"]["next_accounts"]["overdue"] = False
        profile["confirmation_statement"]["overdue"] = False
    profile["links"] = links
    return profile


def generate_officers(number: str, count: int) -> dict[str, Any]:
    """An officer-list of ``count`` officers in the real item shape (one resigned in three)."""
    items = []
    for i in range(count):
        appointed = date(2010, 1, 1) + timedelta(days=37 * i)
        item: dict[str, Any] = {
            "address": {
                "premises": str(i + 1),
                "address_line_1": "High Street",
                "locality": "Leeds",
                "country": "England",
            },
            "name": f"OFFICER{i:03d}, Test",
            "appointed_on": appointed.isoformat(),
            "officer_role": "director" if i % 5 else "secretary",
            "links": {"officer": {"appointments": f"/officers/gen{number}{i:03d}/appointments"}},
            "date_of_birth": {"month": 1 + i % 12, "year": 1950 + i % 40},
            "occupation": "Director",
            "country_of_residence": "England",
            "nationality": "British",
        }
        if i % 3 == 0:
            item["resigned_on"] = (appointed + timedelta(days=400)).isoformat()
        items.append(item)
    resigned = sum(1 for it in items if "resigned_on" in it)
    return {
        "etag": secrets.token_hex(20),
        "links": {"self": f"/company/{number}/officers"},
        "kind": "officer-list",
        "items_per_page": 35,
        "total_results": count,
        "active_count": count - resigned,
        "resigned_count": resigned,
        "inactive_count": 0,
        "items": items,
    }


SOLVENT_COMPANY = "10241297"  # the officers sample's company: no insolvency case
PAGED_COMPANY = "SC123456"  # generated: 80 officers over three pages


class CompaniesHouseStandIn(_StandIn):
    """Companies House REST: Basic auth (key as username, empty password), profile, insolvency, officers."""

    name = "companies_house"

    def __init__(self, api_key: str | None = None) -> None:
        super().__init__()
        self.api_key = api_key or "ch-" + secrets.token_urlsafe(18)
        base = load_sample("companies_house_company_profile_00006402.json")
        cases: dict[str, dict[str, Any]] = load_sample("companies_house_insolvency_by_company_number.json")
        self.profiles: dict[str, dict[str, Any]] = {"00006402": base}
        self.insolvencies: dict[str, dict[str, Any]] = dict(cases)
        for number, case in cases.items():
            status = (
                "liquidation" if any("liquidation" in c.get("type", "") for c in case["cases"]) else "administration"
            )
            self.profiles[number] = _derived_profile(
                base, number, f"INSOLVENT {number} LTD", insolvent=True, status=status
            )
        # 00006402's profile links an insolvency resource; the samples hold none for it: a generated CVL case
        self.insolvencies["00006402"] = {
            "etag": "generated",
            "status": ["liquidation"],
            "cases": [
                {
                    "number": "1",
                    "type": "creditors-voluntary-liquidation",
                    "dates": [{"type": "wound-up-on", "date": "2022-10-14"}],
                    "practitioners": [
                        {"name": "Jane Example", "role": "appointed-liquidator", "appointed_on": "2022-10-14"}
                    ],
                }
            ],
        }
        self.profiles[SOLVENT_COMPANY] = _derived_profile(
            base, SOLVENT_COMPANY, "SOLVENT EXAMPLE LIMITED", insolvent=False, status="active"
        )
        self.profiles[PAGED_COMPANY] = _derived_profile(
            base, PAGED_COMPANY, "MANY OFFICERS LIMITED", insolvent=False, status="active"
        )
        self.officers: dict[str, dict[str, Any]] = {
            SOLVENT_COMPANY: load_sample("companies_house_officers_10241297.json"),
            PAGED_COMPANY: generate_officers(PAGED_COMPANY, 80),
        }

    def _authorised(self, headers: dict[str, str]) -> bool:
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        expected = "Basic " + base64.b64encode(f"{self.api_key}:".encode()).decode()
        return secrets.compare_digest(auth, expected)

    def route(self, method: str, path: str, params: dict[str, list[str]], headers: dict[str, str]) -> Reply:
        if not self._authorised(headers):
            return _json_reply(401, {"error": "Invalid Authorization", "type": "ch:service"})
        m = re.fullmatch(r"/company/([A-Z0-9]{8})(/insolvency|/officers)?", path)
        if m is None:
            return _json_reply(404, {"errors": [{"error": "not-found", "type": "ch:service"}]})
        number, resource = m.group(1), m.group(2)
        if number not in self.profiles:
            return _json_reply(404, {"errors": [{"error": "company-profile-not-found", "type": "ch:service"}]})
        if resource is None:
            return _json_reply(200, self.profiles[number])
        if resource == "/insolvency":
            case = self.insolvencies.get(number)
            if case is None:
                return _json_reply(404, {"errors": [{"error": "company-insolvency-not-found", "type": "ch:service"}]})
            return _json_reply(200, case)
        return self._officers(number, params)

    def _officers(self, number: str, params: dict[str, list[str]]) -> Reply:
        listing = self.officers.get(number)
        if listing is None:
            return _json_reply(404, {"errors": [{"error": "officers-not-found", "type": "ch:service"}]})
        try:
            per_page = min(100, max(1, int((params.get("items_per_page") or ["35"])[-1])))
            start = max(0, int((params.get("start_index") or ["0"])[-1]))
        except ValueError:
            return _json_reply(400, {"errors": [{"error": "invalid-parameter", "type": "ch:validation"}]})
        page = {k: v for k, v in listing.items() if k != "items"}
        page.update(items_per_page=per_page, start_index=start, items=listing["items"][start : start + per_page])
        return _json_reply(200, page)
