"""BODACC notices (DILA open data on Opendatasoft, Explore API v2.1, dataset ``annonces-commerciales``).

BODACC publishes every collective procedure, director change, head-office move, accounts filing and strike-off of
French companies. Two ways in:

* :meth:`BodaccClient.notices` - the notices of *our* debtors (``registre``, which holds the SIREN) published since a
  watermark, SIRENs chunked so one query stays a reasonable URL;
* :meth:`BodaccClient.notices_published` - the bulk delta: every notice of some families published in a window, for
  a caller that prefers one national query a day to one query per debtor.

Records are returned as served (flat v2.1 dicts, nested blocks still JSON strings): ``relance.risk.classify`` reads
them. The platform serves at most ``offset + limit <= 10,000`` rows of one query, so paging goes by offset inside
that window and then by keyset (``dateparution``, ``id``) from the last row seen: every row once, none skipped.
Ascending order matters: notices published while we page land after the last page, never shift earlier pages.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Any

from relance.risk.http import HttpOptions, JsonHttpSource

logger = logging.getLogger(__name__)

PUBLISHER = "bodacc"
DEFAULT_BASE_URL = "https://bodacc-datadila.opendatasoft.com"
DATASET = "annonces-commerciales"
RECORDS_PATH = f"/api/explore/v2.1/catalog/datasets/{DATASET}/records"

#: ``familleavis`` codes (reference §1.4). A wrong code (``procedure_collective``) silently matches nothing on the
#: platform, so unknown codes are refused here instead.
FAMILIES: tuple[str, ...] = (
    "collective",
    "conciliation",
    "retablissement_professionnel",
    "vente",
    "immatriculation",
    "creation",
    "modification",
    "radiation",
    "dpc",
    "divers",
)
#: The families that carry a risk signal for a debtor (procedures, conciliation, changes, strike-offs, accounts).
RISK_FAMILIES: tuple[str, ...] = (
    "collective",
    "conciliation",
    "retablissement_professionnel",
    "vente",
    "immatriculation",
    "modification",
    "radiation",
    "dpc",
)

MAX_PAGE_SIZE = 100  # the platform's maximum ``limit``
RESULT_WINDOW = 10_000  # offset + limit may not exceed this
SIRENS_PER_QUERY = 50
ORDER_BY = "dateparution asc, id asc"

_SIREN = re.compile(r"^\d{9}$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def normalise_siren(value: str) -> str:
    """``"552 032 534"`` -> ``"552032534"``; ValueError unless nine digits remain (BODACC ``registre`` values)."""
    if not isinstance(value, str):
        raise ValueError(f"a SIREN is a string of 9 digits, got {type(value).__name__} {value!r}")
    compact = re.sub(r"[\s.\-]", "", value)
    if not _SIREN.match(compact):
        raise ValueError(f"not a SIREN (9 digits expected): {value!r}")
    return compact


def _families(families: Sequence[str] | None) -> list[str] | None:
    if families is None:
        return None
    if isinstance(families, str):
        families = [families]
    chosen = list(dict.fromkeys(families))
    unknown = [f for f in chosen if f not in FAMILIES]
    if unknown:
        raise ValueError(
            f"unknown BODACC familleavis code(s) {unknown}: the platform would silently match nothing; "
            f"known codes: {', '.join(FAMILIES)}"
        )
    if not chosen:
        raise ValueError("families is empty: pass None for every family")
    return chosen


def _quote(value: str) -> str:
    """An ODSQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _date(value: date) -> str:
    if isinstance(value, datetime):  # a datetime is a date too; ODSQL wants the day
        value = value.date()
    if not isinstance(value, date):
        raise ValueError(f"a date is expected, got {type(value).__name__} {value!r}")
    return f"date'{value.isoformat()}'"


def build_where(
    sirens: Sequence[str] | None = None,
    since: date | None = None,
    until: date | None = None,
    families: Sequence[str] | None = None,
) -> str:
    """The ODSQL ``where`` of one query; every value validated first (a typo must not silently match nothing)."""
    parts: list[str] = []
    if sirens:
        if len(sirens) == 1:
            parts.append(f"registre={_quote(sirens[0])}")
        else:
            parts.append("registre in (" + ", ".join(_quote(s) for s in sirens) + ")")
    if since is not None:
        parts.append(f"dateparution>={_date(since)}")
    if until is not None:
        parts.append(f"dateparution<={_date(until)}")
    if families:
        if len(families) == 1:
            parts.append(f"familleavis={_quote(families[0])}")
        else:
            parts.append("familleavis in (" + ", ".join(_quote(f) for f in families) + ")")
    return " AND ".join(parts)


def _and(base: str, keyset: str | None) -> str:
    """``base`` narrowed by ``keyset`` (parenthesised: base is kept whole whatever it holds)."""
    if keyset is None:
        return base
    return f"({base}) AND {keyset}" if base else keyset


def keyset_after(last_date: str, last_id: str) -> str:
    """Rows strictly after (``last_date``, ``last_id``) in ``dateparution asc, id asc`` order."""
    return f"(dateparution > date'{last_date}' OR (dateparution = date'{last_date}' AND id > {_quote(last_id)}))"


class BodaccClient:
    """BODACC notices through the Opendatasoft Explore v2.1 records endpoint.

    ``last_fetched_at`` / ``last_from_cache`` describe the last finished iteration: the oldest page's fetch time
    and whether any page came from the disk cache (so a caller can flag stale data).
    """

    publisher = PUBLISHER

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        options: HttpOptions | None = None,
        page_size: int = MAX_PAGE_SIZE,
        sirens_per_query: int = SIRENS_PER_QUERY,
        **overrides: Any,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
        if sirens_per_query < 1:
            raise ValueError(f"sirens_per_query must be at least 1, got {sirens_per_query}")
        self.source = JsonHttpSource(PUBLISHER, base_url, options=options, **overrides)
        self.page_size = page_size
        self.sirens_per_query = sirens_per_query
        self.last_fetched_at: datetime | None = None
        self.last_from_cache = False

    def close(self) -> None:
        self.source.close()

    def __enter__(self) -> BodaccClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- public queries -------------------------------------------------------------------------------------
    def notices(
        self, sirens: Sequence[str], since: date | None, families: Sequence[str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every notice naming one of ``sirens`` published on or after ``since`` (the watermark; None: all).

        Validated before any request (ValueError). One record may name several SIRENs (a sale names buyer and
        seller) and so match two chunks: it is yielded once. Order: ``dateparution, id`` within each chunk.
        """
        if isinstance(sirens, str):
            raise ValueError("sirens is a sequence of SIRENs, not one string")
        unique = sorted({normalise_siren(s) for s in sirens})  # sorted: the same debtors give the same cache keys
        chosen = _families(families)
        wheres = [
            build_where(unique[i : i + self.sirens_per_query], since=since, families=chosen)
            for i in range(0, len(unique), self.sirens_per_query)
        ]
        return self._iterate(wheres)

    def notices_published(
        self, since: date, until: date | None = None, families: Sequence[str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every notice of ``families`` (None: all) published from ``since`` to ``until`` inclusive: the daily delta."""
        if since is None:
            raise ValueError("since is required: the bulk delta of all BODACC notices ever is not a daily query")
        if until is not None and until < since:
            raise ValueError(f"until ({until}) is before since ({since})")
        return self._iterate([build_where(since=since, until=until, families=_families(families))])

    # --- paging ---------------------------------------------------------------------------------------------
    def _iterate(self, wheres: list[str]) -> Iterator[dict[str, Any]]:
        seen: set[str] = set()
        oldest: datetime | None = None
        from_cache = False
        for where in wheres:
            for record, info_at, cached in self._paginate(where):
                oldest = info_at if oldest is None or info_at < oldest else oldest
                from_cache = from_cache or cached
                if record["id"] in seen:
                    continue
                seen.add(record["id"])
                yield record
        self.last_fetched_at = oldest
        self.last_from_cache = from_cache

    def _paginate(self, base_where: str) -> Iterator[tuple[dict[str, Any], datetime, bool]]:
        """Offset pages while ``offset + limit <= 10,000``, then keyset pages from the last row seen."""
        limit = self.page_size
        offset = 0
        keyset: str | None = None
        last_key: tuple[str, str] | None = None
        while True:
            where = _and(base_where, keyset)
            params: dict[str, Any] = {"order_by": ORDER_BY, "limit": limit, "offset": offset}
            if where:
                params["where"] = where
            total, results = self._page(params)
            info = self.source.last_fetch
            assert info is not None
            for record in results:
                key = (record["dateparution"], record["id"])
                if last_key is not None and key[0] < last_key[0]:
                    raise self.source.payload_error(
                        RECORDS_PATH,
                        f"records out of order ({key} after {last_key}): paging would skip or repeat notices",
                    )
                last_key = key
                yield record, info.fetched_at, info.from_cache
            if len(results) < limit:
                return
            if keyset is None and offset + len(results) >= total:
                return
            if keyset is not None and len(results) >= total:
                return
            if keyset is None and offset + 2 * limit <= RESULT_WINDOW:
                offset += limit
                continue
            assert last_key is not None
            if keyset is None:
                logger.info(
                    "BODACC: %d notices match one query, past the %d-row window: switching to keyset paging",
                    total,
                    RESULT_WINDOW,
                )
            keyset = keyset_after(*last_key)
            offset = 0

    def _page(self, params: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
        body = self.source.get_json(RECORDS_PATH, params)
        if not isinstance(body, dict) or "results" not in body or "total_count" not in body:
            keys = sorted(body) if isinstance(body, dict) else type(body).__name__
            raise self.source.payload_error(
                RECORDS_PATH, f"expected the v2.1 envelope {{'total_count', 'results'}}, got {keys}"
            )
        total, results = body["total_count"], body["results"]
        if not isinstance(total, int) or isinstance(total, bool) or not isinstance(results, list):
            raise self.source.payload_error(
                RECORDS_PATH,
                f"total_count must be an integer and results a list, got {type(total).__name__} and "
                f"{type(results).__name__}",
            )
        for record in results:
            if (
                not isinstance(record, dict)
                or not isinstance(record.get("id"), str)
                or not isinstance(record.get("dateparution"), str)
                or not _ISO_DATE.match(record["dateparution"])
            ):
                shown = {k: record.get(k) for k in ("id", "dateparution")} if isinstance(record, dict) else record
                raise self.source.payload_error(
                    RECORDS_PATH, f"a record without a string id and an ISO dateparution: {shown!r}"[:300]
                )
        return total, results
