"""Notice files: what ``relance risk import PATH`` and the offline daily mode read.

One file holds one publisher's payload, as its API serves it or as its bulk export writes it. The shape is
detected from the content (never from the file name):

* BODACC Explore v2.1 envelope ``{"total_count": N, "results": [...]}`` (what ``relance demo`` writes);
* BODACC v2.0 ``{"total_count": N, "records": [{"record": {"fields": ...}}]}`` and v1
  ``{"nhits": N, "records": [{"fields": ...}]}``;
* a JSON list of BODACC records, one BODACC record, or JSON Lines of records (Opendatasoft ``/exports/jsonl``);
* an API Recherche d'entreprises ``/search`` payload ``{"results": [{"siren": ...}], "total_results": N}``
  (profiles, observed on ``observed_date``: the file's modification day unless given);
* Companies House: a company profile ``{"company_number", "company_status", ...}``; an insolvency record, which
  does not name its company, so only as ``{"company_number": ..., "insolvency": {...}}`` (optionally with
  ``"profile"`` and ``"officers"`` too) or carrying ``links.self`` (``/company/<number>/insolvency``); an officer
  list carrying ``links.self``; or a mapping ``{"<number>": <insolvency record>, ...}``.

Anything else raises :class:`ValueError` naming the file and what was expected. Bytes are decoded as UTF-8
strictly (a UTF-8 byte-order mark is allowed): the error names the byte offset and line; malformed JSON names
line and column; a file over :data:`MAX_NOTICE_FILE_BYTES` is refused before it is read, as
``relance.sources.limits`` refuses oversized ledger files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from relance.risk.classify import (
    bodacc_events,
    companies_house_events,
    companies_house_profile,
    recherche_profile,
)
from relance.risk.events import CompanyProfile, RiskEvent
from relance.sources.base import SourceError

#: A notice file is parsed whole in memory: 256 MiB of JSON is about a million BODACC notices, far more than any
#: debtor book needs (query per SIREN, or split a bulk export by day).
MAX_NOTICE_FILE_BYTES = 256 * 1024**2

EXPECTED = (
    "a BODACC payload (Explore v2.1 {'total_count', 'results'}, v2.0 {'total_count', 'records'}, v1 "
    "{'nhits', 'records'}, a JSON list of records or JSON Lines of records), an API Recherche d'entreprises "
    "/search payload {'results', 'total_results'}, or a Companies House profile / insolvency / officer list"
)
_BODACC_KEYS = frozenset({"familleavis", "registre", "dateparution", "publicationavis"})
_CH_SELF = re.compile(r"/company/([A-Za-z0-9]+)(?:/|$)")


def _error(path: Path, message: str) -> ValueError:
    return SourceError(f"{path}: {message}")


def _decode(path: Path, raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        bad = raw[exc.start : exc.end].hex(" ")
        raise _error(
            path, f"not UTF-8: byte 0x{bad} at byte offset {exc.start} (line {line}); notice files are UTF-8 JSON"
        ) from None
    return text.removeprefix("\ufeff")


def _parse(path: Path, text: str) -> tuple[Any, bool]:
    """The JSON document, or the list of JSON Lines records; True when it was JSON Lines."""
    try:
        return json.loads(text), False
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data":
            raise _error(path, f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise _error(path, f"malformed JSON Lines record at line {number}, column {exc.colno}: {exc.msg}") from None
    return records, True


def _is_bodacc_record(item: Any) -> bool:
    if not isinstance(item, Mapping):
        return False
    if isinstance(item.get("fields"), Mapping):
        item = item["fields"]
    elif isinstance(item.get("record"), Mapping) and isinstance(item["record"].get("fields"), Mapping):
        item = item["record"]["fields"]
    return "id" in item and bool(_BODACC_KEYS & set(item))


def _bodacc(path: Path, records: Any, where: str) -> list[RiskEvent]:
    if not isinstance(records, list):
        raise _error(path, f"{where} is not a list of BODACC records")
    for i, item in enumerate(records):
        if not _is_bodacc_record(item):
            what = f"keys {sorted(item)[:8]}" if isinstance(item, Mapping) else type(item).__name__
            raise _error(
                path,
                f"{where}[{i}] is not a BODACC record (expected an object with 'id' and 'familleavis', "
                f"'registre', 'dateparution'; got {what})",
            )
    return bodacc_events(records)


def _company_number_from_links(payload: Mapping[str, Any]) -> str | None:
    links = payload.get("links")
    self_link = links.get("self") if isinstance(links, Mapping) else None
    match = _CH_SELF.search(self_link) if isinstance(self_link, str) else None
    return match[1] if match else None


def _looks_like_ch_insolvency(value: Any) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("cases"), list)


def _companies_house(
    path: Path, payload: Mapping[str, Any], observed: date
) -> tuple[list[RiskEvent], list[CompanyProfile]] | None:
    """Events and profiles of a Companies House file; None when the payload is not one."""
    if "company_number" in payload and any(k in payload for k in ("insolvency", "profile", "officers")):
        number = payload["company_number"]
        profile = payload.get("profile")
        insolvency = payload.get("insolvency")
        officers = payload.get("officers")
        if profile is not None and not isinstance(profile, Mapping):
            raise _error(path, "'profile' is not a Companies House company profile object")
        if insolvency is not None and not _looks_like_ch_insolvency(insolvency):
            raise _error(path, "'insolvency' is not a Companies House insolvency record (expected {'cases': [...]})")
        profiles = [companies_house_profile({**profile, "company_number": number}, observed)] if profile else []
        return companies_house_events(number, profile, insolvency, officers, observed), profiles
    if "company_number" in payload and ("company_status" in payload or "accounts" in payload):
        profile = companies_house_profile(payload, observed)
        return companies_house_events(profile.company_id, payload, None, None, observed), [profile]
    if _looks_like_ch_insolvency(payload):
        number = _company_number_from_links(payload)
        if number is None:
            raise _error(
                path,
                "a Companies House insolvency record does not name its company: wrap it as "
                "{'company_number': '<number>', 'insolvency': {...}} (or keep its links.self)",
            )
        return companies_house_events(number, None, payload, None, observed), []
    if payload.get("kind") == "officer-list" or (
        isinstance(payload.get("items"), list) and _company_number_from_links(payload) is not None
    ):
        number = _company_number_from_links(payload)
        if number is None:
            raise _error(
                path,
                "a Companies House officer list without links.self does not name its company: wrap it as "
                "{'company_number': '<number>', 'officers': {...}}",
            )
        return companies_house_events(number, None, None, payload, observed), []
    if payload and all(_looks_like_ch_insolvency(v) for v in payload.values()):
        events: list[RiskEvent] = []
        for number, insolvency in payload.items():
            events += companies_house_events(number, None, insolvency, None, observed)
        return events, []
    return None


def read_notice_file(
    path: Path, *, observed_date: date | None = None, max_bytes: int = MAX_NOTICE_FILE_BYTES
) -> tuple[list[RiskEvent], list[CompanyProfile]]:
    """The normalised events and profiles of one notice file (see the module docstring for the shapes).

    ``observed_date`` dates the profiles (and the events a snapshot implies, such as overdue accounts without a
    due date); it defaults to the day the file was last modified.

    Raises:
        ValueError: no such file, over ``max_bytes``, not UTF-8, not JSON, or not a known shape; the message names
            the file (nothing is read from a file that fails).
    """
    path = Path(path)
    if not path.is_file():
        raise _error(path, "no such file" if not path.exists() else "not a file (expected a JSON notice file)")
    size = path.stat().st_size
    if size > max_bytes:
        raise _error(
            path,
            f"file is {size:,} bytes, over the {max_bytes:,}-byte cap for one notice file; nothing was read "
            "(split it, e.g. one BODACC export per day, or raise relance.risk.files.MAX_NOTICE_FILE_BYTES)",
        )
    raw = path.read_bytes()
    text = _decode(path, raw)
    if not text.strip():
        raise _error(path, f"empty file; expected {EXPECTED}")
    payload, is_lines = _parse(path, text)
    observed = observed_date or datetime.fromtimestamp(path.stat().st_mtime).date()

    if is_lines:
        return _bodacc(path, payload, "JSON Lines record"), []
    if isinstance(payload, list):
        return _bodacc(path, payload, "list item"), []
    if not isinstance(payload, Mapping):
        raise _error(path, f"a JSON {type(payload).__name__} is not a notice file; expected {EXPECTED}")
    if "results" in payload and "total_results" in payload:
        results = payload["results"]
        if not isinstance(results, list) or not all(isinstance(r, Mapping) and "siren" in r for r in results):
            raise _error(path, "Recherche d'entreprises 'results' must be a list of objects with a 'siren'")
        try:
            return [], [recherche_profile(r, observed) for r in results]
        except ValueError as exc:
            raise _error(path, str(exc)) from None
    if "results" in payload and "total_count" in payload:
        return _bodacc(path, payload["results"], "results"), []
    if "records" in payload and ("nhits" in payload or "total_count" in payload):
        return _bodacc(path, payload["records"], "records"), []
    if _is_bodacc_record(payload):
        return bodacc_events([payload]), []
    try:
        found = _companies_house(path, payload, observed)
    except SourceError:
        raise
    except ValueError as exc:
        raise _error(path, str(exc)) from None
    if found is not None:
        return found
    raise _error(path, f"unknown payload with keys {sorted(payload)[:10]}; expected {EXPECTED}")
