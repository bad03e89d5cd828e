"""UK Companies House Public Data API: company profile, insolvency cases and officers of a UK debtor.

Authentication is HTTP Basic with the API key as username and an empty password; the limit is 600 requests per
5 minutes per key, hence one request every 0.5 s by default. A company without an insolvency record answers 404 on
``/insolvency``: that is the good news ("no case"), returned as None, never an error.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from relance.risk.http import HttpOptions, JsonHttpSource, RiskSourceError, SecretLike

logger = logging.getLogger(__name__)

PUBLISHER = "companies_house"
DEFAULT_BASE_URL = "https://api.company-information.service.gov.uk"
#: 600 requests per 5 minutes per key = 2 per second.
DEFAULT_MIN_INTERVAL_SECONDS = 0.5
OFFICERS_PAGE_SIZE = 35
MAX_OFFICER_PAGES = 200  # 7,000 officers: past that the server is repeating itself, not paging

# England & Wales numbers are 8 digits; other registers prefix 1 or 2 letters (SC, NI, OC, SO, NC, R, ...)
_PREFIXED = re.compile(r"^([A-Z]{1,2})(\d{1,7})$")


def normalise_company_number(value: str) -> str:
    """The 8-character form the API expects: uppercase, digits left-padded with zeros.

    ``"6402"`` -> ``"00006402"``, ``"sc12345"`` -> ``"SC012345"``; ValueError for anything else (an empty string,
    punctuation, more than 8 characters), before any request.
    """
    if not isinstance(value, str):
        raise ValueError(f"a company number is a string, got {type(value).__name__} {value!r}")
    compact = value.strip().upper().replace(" ", "")
    if compact.isdigit() and 1 <= len(compact) <= 8:
        return compact.zfill(8)
    match = _PREFIXED.match(compact)
    if match and len(match.group(1)) + len(match.group(2)) <= 8:
        prefix, digits = match.groups()
        return prefix + digits.zfill(8 - len(prefix))
    raise ValueError(
        f"not a Companies House company number: {value!r} (8 characters: digits, or a 1-2 letter prefix and digits)"
    )


class CompaniesHouseClient:
    """Profile, insolvency and officers of one company. Without an API key every call raises ``auth`` before any
    request, so a deployment that has no key learns it from the error instead of from 401s."""

    publisher = PUBLISHER

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | SecretLike | None = None,
        *,
        options: HttpOptions | None = None,
        **overrides: Any,
    ) -> None:
        self.source = JsonHttpSource(
            PUBLISHER,
            base_url,
            options=options,
            api_key=api_key,
            default_min_interval_seconds=DEFAULT_MIN_INTERVAL_SECONDS,
            **overrides,
        )

    def close(self) -> None:
        self.source.close()

    def __enter__(self) -> CompaniesHouseClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _path(self, number: str, suffix: str = "") -> str:
        if not self.source.has_credentials:
            raise RiskSourceError(
                PUBLISHER,
                "auth",
                "companies_house: no API key configured (RELANCE_COMPANIES_HOUSE_API_KEY); no request was sent",
            )
        return f"/company/{normalise_company_number(number)}{suffix}"

    def _object(self, path: str, body: Any) -> dict[str, Any] | None:
        if body is None or isinstance(body, dict):
            return body
        raise self.source.payload_error(path, f"expected a JSON object, got {type(body).__name__}")

    def profile(self, number: str) -> dict[str, Any] | None:
        """``GET /company/{number}``; None when the register has no such company (404)."""
        path = self._path(number)
        return self._object(path, self.source.get_json(path, none_on_404=True))

    def insolvency(self, number: str) -> dict[str, Any] | None:
        """``GET /company/{number}/insolvency`` (``{"cases": [...], "status": [...], "etag"}``); None when the
        company has no insolvency case (404)."""
        path = self._path(number, "/insolvency")
        body = self._object(path, self.source.get_json(path, none_on_404=True))
        if body is not None and not isinstance(body.get("cases", []), list):
            raise self.source.payload_error(path, "insolvency 'cases' is not a list")
        return body

    def officers(self, number: str, *, page_size: int = OFFICERS_PAGE_SIZE) -> list[dict[str, Any]]:
        """Every officer (current and resigned) of the company, all pages; [] for an unknown company (404).

        Pages by ``start_index`` until ``total_results`` is reached; when a page omits ``total_results`` (some
        payloads do), until a page shorter than ``page_size``.
        """
        if not 1 <= page_size <= 100:
            raise ValueError(f"page_size must be between 1 and 100, got {page_size}")
        path = self._path(number, "/officers")
        officers: list[dict[str, Any]] = []
        start = 0
        for _ in range(MAX_OFFICER_PAGES):
            body = self.source.get_json(path, {"items_per_page": page_size, "start_index": start}, none_on_404=True)
            if body is None:
                return officers
            if not isinstance(body, dict) or not isinstance(body.get("items"), list):
                keys = sorted(body) if isinstance(body, dict) else type(body).__name__
                raise self.source.payload_error(path, f"expected an officer-list with 'items', got {keys}")
            items = [item for item in body["items"] if isinstance(item, dict)]
            officers.extend(items)
            start += len(body["items"])
            total = body.get("total_results")
            if not body["items"]:
                return officers
            if isinstance(total, int):
                if start >= total:
                    return officers
            elif len(body["items"]) < page_size:
                return officers
        raise self.source.payload_error(path, f"officers did not end after {MAX_OFFICER_PAGES} pages")
