"""Validate OpenLineage events against the spec kept in ``../shared/specs/openlineage/`` (and relance's own facet).

Every event is checked against ``OpenLineage.json`` (``oneOf`` RunEvent / DatasetEvent / JobEvent), which checks
every facet as a generic facet (``_producer`` and ``_schemaURL``, both URIs). Then each facet whose ``_schemaURL``
names a facet schema we hold is checked against that schema's definition too: the facet files of
``../shared/specs/openlineage/facets/`` (matched on their ``$id``; a facet of the same name and major version but
another minor version is checked against the local one, which only adds optional fields within a major version) and
relance's ``RelanceRunFacet.json``. ``$ref``s resolve locally through a ``referencing.Registry`` mapping each
schema's ``$id`` to its file: nothing is fetched. Formats are checked: ``uuid``, ``date-time`` (RFC 3339), ``date``,
and ``uri`` (an absolute URI: a scheme, then no whitespace).

``validate_events(path)`` returns the errors of a JSONL file (empty: all valid); the end-to-end test calls it on the
demo run's ``data/lineage/openlineage.jsonl``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

REPO_ROOT = Path(__file__).resolve().parents[1]
SPEC_DIR = REPO_ROOT.parent / "shared" / "specs" / "openlineage"
SPEC_ID = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
#: facet maps inside an event: a dict of name -> facet under any of these keys
FACET_KEYS = ("facets", "inputFacets", "outputFacets")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s]*$")
_FACET_URL = re.compile(r"^(?P<base>.*/(?P<major>\d+)-\d+-\d+/(?P<file>[A-Za-z]+\.json))$")


def _format_checker() -> FormatChecker:
    checker = FormatChecker()

    @checker.checks("uri")
    def is_uri(value: object) -> bool:  # jsonschema checks "uri" only with rfc3987 installed: always check it
        return not isinstance(value, str) or bool(_URI.match(value))

    return checker


@lru_cache(maxsize=4)
def _schemas(spec_dir: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(the OpenLineage.json schema, facet schemas by $id) of ``spec_dir`` plus relance's own facet."""
    from relance.openlineage import schema_path

    if not (spec_dir / "OpenLineage.json").is_file():
        raise FileNotFoundError(f"no OpenLineage spec at {spec_dir}")
    spec = json.loads((spec_dir / "OpenLineage.json").read_text(encoding="utf-8"))
    facets = {}
    for path in [*sorted((spec_dir / "facets").glob("*.json")), schema_path()]:
        schema = json.loads(path.read_text(encoding="utf-8"))
        facets[schema["$id"]] = schema
    return spec, facets


@lru_cache(maxsize=4)
def _registry(spec_dir: Path) -> Registry:
    spec, facets = _schemas(spec_dir)
    resources = [(spec["$id"], Resource.from_contents(spec, default_specification=DRAFT202012))]
    resources += [(sid, Resource.from_contents(s, default_specification=DRAFT202012)) for sid, s in facets.items()]
    return Registry().with_resources(resources)


@lru_cache(maxsize=4)
def _event_validator(spec_dir: Path) -> Draft202012Validator:
    spec, _ = _schemas(spec_dir)
    return Draft202012Validator(spec, registry=_registry(spec_dir), format_checker=_format_checker())


@lru_cache(maxsize=64)
def _facet_validator(spec_dir: Path, ref: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": ref}, registry=_registry(spec_dir), format_checker=_format_checker())


def facet_schema_ref(schema_url: str, spec_dir: Path = SPEC_DIR) -> str | None:
    """The local schema definition a facet's ``_schemaURL`` points at (``<$id>#/$defs/<Name>``), or None when we
    hold no schema for it (it is then only a generic facet)."""
    _, facets = _schemas(spec_dir)
    base, _, fragment = schema_url.partition("#")
    name = fragment.rsplit("/", 1)[-1] if fragment.startswith("/$defs/") else None
    schema_id = base if base in facets else None
    if schema_id is None:
        match = _FACET_URL.match(base)
        if match is not None:
            for candidate in facets:
                other = _FACET_URL.match(candidate)
                if other and other["file"] == match["file"] and other["major"] == match["major"]:
                    schema_id = candidate
                    break
    if schema_id is None:
        return None
    # no fragment: the definition named like the file (ParentRunFacet.json -> ParentRunFacet)
    name = name or Path(urlsplit(schema_id).path).stem
    if name not in facets[schema_id].get("$defs", {}):
        return None
    return f"{schema_id}#/$defs/{name}"


def _facets(node: Any, where: str = "") -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(where, facet name, facet) of every facet in an event, nested ones (a parent facet's run facets) included."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}/{key}"
            if key in FACET_KEYS and isinstance(value, dict):
                for name, facet in value.items():
                    if isinstance(facet, dict):
                        yield f"{here}/{name}", name, facet
                        yield from _facets(facet, f"{here}/{name}")
            else:
                yield from _facets(value, here)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _facets(value, f"{where}/{i}")


def _branch(event: Any) -> str:
    """Which kind of event this one means to be (for readable errors: the spec's ``oneOf`` only says "none")."""
    if isinstance(event, dict) and "run" in event:
        return "RunEvent"
    if isinstance(event, dict) and "dataset" in event:
        return "DatasetEvent"
    return "JobEvent"


def _describe(error: Any) -> str:
    while error.context:  # an anyOf / oneOf: the most relevant of its branches' errors
        error = best_match(error.context)
    path = "/".join(map(str, error.absolute_path)) or "(event)"
    return f"{path}: {error.message[:500]}"


def event_errors(event: Any, spec_dir: Path = SPEC_DIR) -> list[str]:
    """Why one event (a parsed JSON object) is not valid: empty when it is."""
    errors = []
    if any(True for _ in _event_validator(spec_dir).iter_errors(event)):
        # the event fails the spec's oneOf: say why against the kind of event it means to be
        detail = _facet_validator(spec_dir, f"{SPEC_ID}#/$defs/{_branch(event)}").iter_errors(event)
        errors = [_describe(e) for e in detail] or ["(event): not exactly one of RunEvent, DatasetEvent, JobEvent"]
    if not isinstance(event, dict):
        return errors
    for where, _name, facet in _facets(event):
        errors += [f"{where}{e}" for e in facet_errors(facet, spec_dir)]
    return errors


def facet_errors(facet: dict[str, Any], spec_dir: Path = SPEC_DIR) -> list[str]:
    """Why a facet is not valid against the schema its ``_schemaURL`` names, when we hold it (empty otherwise:
    the event's own check makes it a valid generic facet)."""
    url = facet.get("_schemaURL")
    ref = facet_schema_ref(url, spec_dir) if isinstance(url, str) else None
    if ref is None:
        return []
    return [
        f"{'/' if e.absolute_path else ''}{'/'.join(map(str, e.absolute_path))}: {e.message[:500]} ({ref})"
        for e in _facet_validator(spec_dir, ref).iter_errors(facet)
    ]


def validate_event_objects(events: Iterable[Any], spec_dir: Path = SPEC_DIR) -> list[str]:
    """Errors of several parsed events, each prefixed with its position and job."""
    out = []
    for i, event in enumerate(events, start=1):
        job = event.get("job", {}).get("name", "?") if isinstance(event, dict) else "?"
        state = event.get("eventType", "?") if isinstance(event, dict) else "?"
        out += [f"event {i} ({job} {state}): {e}" for e in event_errors(event, spec_dir)]
    return out


def validate_events(path: Path | str, spec_dir: Path = SPEC_DIR) -> list[str]:
    """The errors of every event of a JSONL file (one event per line); empty when every event validates.

    A line that is not JSON is an error; an empty file has no error (the caller asserts how many events it
    expects)."""
    errors: list[str] = []
    events = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError as exc:
            errors.append(f"line {n}: not JSON: {exc}")
    return errors + validate_event_objects(events, spec_dir)
