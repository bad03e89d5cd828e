"""API Recherche d'entreprises (DINUM, https://recherche-entreprises.api.gouv.fr): one company by SIREN.

The free, keyless front of the Sirene and RNE registers: administrative status (``etat_administratif``, closure
date), NAF code, headcount band, published finances and directors. ``GET /search?q=<siren>`` with a nine-digit
``q`` is a direct lookup (every other filter is ignored). The API allows 7 requests per second per IP and answers
429 beyond: the client keeps one request every 0.15 s (6.7/s, a margin for network jitter) across threads.
"""

from __future__ import annotations

import logging
from typing import Any

from stdnum.exceptions import ValidationError
from stdnum.fr import siren as stdnum_siren

from relance.risk.http import HttpOptions, JsonHttpSource

logger = logging.getLogger(__name__)

PUBLISHER = "recherche_entreprises"
DEFAULT_BASE_URL = "https://recherche-entreprises.api.gouv.fr"
SEARCH_PATH = "/search"
#: The API's limit is 7 requests/s per IP; 0.15 s between requests stays under it even when a request arrives early.
DEFAULT_MIN_INTERVAL_SECONDS = 0.15
MAX_PER_PAGE = 25


def validate_siren(value: str) -> str:
    """The compact SIREN (spaces removed) if it is nine digits with a valid Luhn checksum; ValueError otherwise.

    The API would answer a mistyped SIREN with a full-text search on the digits: we never send one.
    """
    if not isinstance(value, str):
        raise ValueError(f"a SIREN is a string of 9 digits, got {type(value).__name__} {value!r}")
    try:
        return str(stdnum_siren.validate(value))
    except ValidationError as exc:
        raise ValueError(f"not a valid SIREN: {value!r} ({exc})") from None


class RechercheEntreprisesClient:
    """Company lookups by SIREN; ``source.last_fetch`` tells whether the answer came from the cache, and when."""

    publisher = PUBLISHER

    def __init__(
        self, base_url: str = DEFAULT_BASE_URL, *, options: HttpOptions | None = None, **overrides: Any
    ) -> None:
        self.source = JsonHttpSource(
            PUBLISHER,
            base_url,
            options=options,
            default_min_interval_seconds=DEFAULT_MIN_INTERVAL_SECONDS,
            **overrides,
        )

    def close(self) -> None:
        self.source.close()

    def __enter__(self) -> RechercheEntreprisesClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def company(self, siren: str) -> dict[str, Any] | None:
        """The unité légale ``siren`` as the API serves it (``results[0]``), or None when the register has no such
        company (``total_results == 0``). ValueError for a malformed SIREN, before any request."""
        wanted = validate_siren(siren)
        body = self.source.get_json(SEARCH_PATH, {"q": wanted, "page": 1, "per_page": 1})
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("results"), list)
            or not isinstance(body.get("total_results"), int)
        ):
            keys = sorted(body) if isinstance(body, dict) else type(body).__name__
            raise self.source.payload_error(
                SEARCH_PATH, f"expected {{'results': [...], 'total_results': int, ...}}, got {keys}"
            )
        if body["total_results"] == 0:
            return None
        for result in body["results"]:
            if isinstance(result, dict) and result.get("siren") == wanted:
                return result
        # a direct SIREN lookup that answers another company: never attribute it to our debtor
        logger.warning(
            "recherche_entreprises: q=%s answered %d result(s), none with that SIREN; treated as not found",
            wanted,
            body["total_results"],
        )
        return None
