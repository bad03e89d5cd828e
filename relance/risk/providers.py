"""One interface for every source of company-risk data, so a paid one is a line of configuration.

A provider answers one question: *what happened to these companies since I last looked?* It gets the debtors it
can look up (by registry), each one's watermark (the last day its data was complete to) and the last profile it
saw of each (to tell a change from a first sight), and returns normalised :class:`~relance.risk.events.RiskEvent`
and :class:`~relance.risk.events.CompanyProfile` rows plus one check per company: ``None`` when the answer was
complete, the error otherwise. The flow loads the rows through the shared loader and records the checks in
``ops.risk_checks``; a failed check leaves that company's watermark where it was and its data flagged stale.

Built in (``Settings.risk_providers``): ``bodacc`` (collective procedures, modifications, radiations, accounts
filings; FR), ``recherche_entreprises`` (status, closure, NAF, headcount, finances, directors; FR),
``companies_house`` (profile, insolvency, officers; UK, needs ``RELANCE_COMPANIES_HOUSE_API_KEY``). Any other
entry is ``"package.module:ClassName"``: a class built with ``(settings, cache_dir)`` that has the attributes and
the method of :class:`RiskProvider` (Altares, Infolegale, Creditsafe, an internal credit-insurance feed...).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from relance.risk import classify
from relance.risk.events import REGISTRY_FR, REGISTRY_GB, CompanyProfile, RiskEvent

if TYPE_CHECKING:
    from relance.settings import Settings

log = logging.getLogger(__name__)

#: A BODACC notice can be indexed a few days after its publication date: each fetch re-reads this many days
#: before the watermark (the loader keeps what it already has, by event id and row hash).
BODACC_OVERLAP_DAYS = 7


@dataclass(frozen=True, order=True)
class Company:
    """A debtor as a registry knows it."""

    registry: str
    company_id: str


@dataclass
class ProviderResult:
    """What one provider brought back for one run."""

    publisher: str
    events: list[RiskEvent] = field(default_factory=list)
    profiles: list[CompanyProfile] = field(default_factory=list)
    #: one entry per company asked about: None when its answer is complete, else the error (kept stale)
    checks: dict[Company, str | None] = field(default_factory=dict)

    @property
    def errors(self) -> dict[Company, str]:
        return {c: e for c, e in self.checks.items() if e is not None}


@runtime_checkable
class RiskProvider(Protocol):
    """The interface the risk flow calls; see the module docstring."""

    name: str  # the publisher written with its rows ('bodacc', 'altares', ...)
    registries: frozenset[str]  # which Company.registry values it can look up

    def fetch(
        self,
        companies: Sequence[Company],
        *,
        watermarks: Mapping[Company, date | None],
        previous: Mapping[Company, CompanyProfile],
        today: date,
    ) -> ProviderResult: ...


def _source_down(kind: str | None) -> bool:
    """Errors that say the whole source is unavailable now: asking about more companies only hammers it."""
    return kind in ("unavailable", "quota", "auth")


class BodaccProvider:
    """BODACC notices (Opendatasoft Explore v2.1) for the FR debtors: one query per chunk of SIRENs, from the
    oldest watermark among them (minus :data:`BODACC_OVERLAP_DAYS`); companies never checked get their whole
    history."""

    name = "bodacc"
    registries = frozenset({REGISTRY_FR})

    def __init__(self, client: object) -> None:
        self.client = client

    def fetch(
        self,
        companies: Sequence[Company],
        *,
        watermarks: Mapping[Company, date | None],
        previous: Mapping[Company, CompanyProfile],
        today: date,
    ) -> ProviderResult:
        from relance.risk.http import RiskSourceError

        result = ProviderResult(self.name)
        mine = [c for c in companies if c.registry == REGISTRY_FR]
        # two groups: never checked (whole history) and checked (since the oldest watermark of the group)
        groups: dict[date | None, list[Company]] = {}
        known = [watermarks.get(c) for c in mine if watermarks.get(c) is not None]
        since_known = min(known) - timedelta(days=BODACC_OVERLAP_DAYS) if known else None
        for c in mine:
            groups.setdefault(since_known if watermarks.get(c) is not None else None, []).append(c)
        wanted = {c.company_id for c in mine}
        for since, group in groups.items():
            try:
                records = list(self.client.notices([c.company_id for c in group], since=since))  # type: ignore[attr-defined]
            except RiskSourceError as exc:
                log.warning("bodacc: %s", exc)
                result.checks.update(dict.fromkeys(group, str(exc)))
                continue
            events = [e for e in classify.bodacc_events(records) if e.company_id in wanted]
            result.events += events
            result.checks.update(dict.fromkeys(group))
        return result


def _each_company(result: ProviderResult, todo: Sequence[Company], ask: Callable[[Company], None]) -> ProviderResult:
    """Ask about each company in turn (``ask`` adds its rows to ``result``) and record one check per company.

    A company that cannot be looked up (``ValueError``: not a valid id) or whose answer failed keeps its error;
    an error that says the whole source is down (:func:`_source_down`) stops the loop, and the companies not asked
    yet are recorded as such: they keep their last known data and are asked again next run.
    """
    from relance.risk.http import RiskSourceError

    for i, c in enumerate(todo):
        try:
            ask(c)
        except ValueError as exc:
            result.checks[c] = f"not looked up: {exc}"
            continue
        except RiskSourceError as exc:
            result.checks[c] = str(exc)
            if _source_down(exc.kind):
                log.warning("%s down (%s): %d companies left for the next run", result.publisher, exc, len(todo) - i)
                result.checks.update(dict.fromkeys(todo[i + 1 :], f"not asked: {exc}"))
                break
            continue
        result.checks[c] = None
    return result


class RechercheEntreprisesProvider:
    """API Recherche d'entreprises: one lookup per FR debtor (the client's cache keeps one answer per TTL),
    a profile per company and the events its change since the previous profile shows (directors, head office,
    closure)."""

    name = "recherche_entreprises"
    registries = frozenset({REGISTRY_FR})

    def __init__(self, client: object) -> None:
        self.client = client

    def fetch(
        self,
        companies: Sequence[Company],
        *,
        watermarks: Mapping[Company, date | None],
        previous: Mapping[Company, CompanyProfile],
        today: date,
    ) -> ProviderResult:
        result = ProviderResult(self.name)

        def ask(c: Company) -> None:
            found = self.client.company(c.company_id)  # type: ignore[attr-defined]
            if found is not None:
                profile = classify.recherche_profile(found, today)
                result.profiles.append(profile)
                result.events.extend(classify.profile_events(previous.get(c), profile))

        return _each_company(result, [c for c in companies if c.registry == REGISTRY_FR], ask)


class CompaniesHouseProvider:
    """UK Companies House: profile, insolvency (404 = none) and officers per GB debtor."""

    name = "companies_house"
    registries = frozenset({REGISTRY_GB})

    def __init__(self, client: object) -> None:
        self.client = client

    def fetch(
        self,
        companies: Sequence[Company],
        *,
        watermarks: Mapping[Company, date | None],
        previous: Mapping[Company, CompanyProfile],
        today: date,
    ) -> ProviderResult:
        result = ProviderResult(self.name)

        def ask(c: Company) -> None:
            payload = self.client.profile(c.company_id)  # type: ignore[attr-defined]
            if payload is None:
                return
            links = payload.get("links") or {}
            insolvency = (
                self.client.insolvency(c.company_id)  # type: ignore[attr-defined]
                if links.get("insolvency") or payload.get("has_insolvency_history")
                else None
            )
            officers = self.client.officers(c.company_id)  # type: ignore[attr-defined]
            profile = classify.companies_house_profile(payload, today)
            result.profiles.append(profile)
            result.events.extend(classify.companies_house_events(c.company_id, payload, insolvency, officers, today))
            result.events.extend(classify.profile_events(previous.get(c), profile))

        return _each_company(result, [c for c in companies if c.registry == REGISTRY_GB], ask)


def load_provider_class(spec: str) -> type:
    """``"package.module:ClassName"`` -> the class, with a clear error for a bad spec."""
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise ValueError(f"risk provider {spec!r}: expected a built-in name or 'package.module:ClassName'")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"risk provider {spec!r} cannot be loaded: {exc}") from exc
    return cls


def build_providers(settings: Settings, cache_dir: Path) -> list[RiskProvider]:
    """The live-mode providers named in ``settings.risk_providers``, with their HTTP clients configured."""
    from relance.risk.bodacc import BodaccClient
    from relance.risk.companies_house import CompaniesHouseClient
    from relance.risk.recherche import RechercheEntreprisesClient

    ttl = settings.risk_cache_ttl_hours * 3600
    common = {
        "timeout": settings.risk_http_timeout_seconds,
        "max_attempts": settings.risk_http_max_attempts,
        "ttl_seconds": ttl,
    }
    providers: list[RiskProvider] = []
    for name in settings.risk_providers:
        if name == "bodacc":
            # notices are asked for "since the watermark": a cached answer would hide today's new ones
            client = BodaccClient(
                base_url=settings.bodacc_url,
                timeout=settings.risk_http_timeout_seconds,
                max_attempts=settings.risk_http_max_attempts,
            )
            providers.append(BodaccProvider(client))
        elif name == "recherche_entreprises":
            client = RechercheEntreprisesClient(
                base_url=settings.recherche_entreprises_url, cache_dir=cache_dir / name, **common
            )
            providers.append(RechercheEntreprisesProvider(client))
        elif name == "companies_house":
            if settings.companies_house_api_key is None:
                log.info("companies_house: no API key (RELANCE_COMPANIES_HOUSE_API_KEY): UK debtors not checked")
                continue
            client = CompaniesHouseClient(
                base_url=settings.companies_house_url,
                api_key=settings.companies_house_api_key.get_secret_value(),
                cache_dir=cache_dir / name,
                **common,
            )
            providers.append(CompaniesHouseProvider(client))
        else:
            cls = load_provider_class(name)
            provider = cls(settings, cache_dir)
            if not isinstance(provider, RiskProvider):
                raise ValueError(f"risk provider {name!r} lacks name, registries or fetch() (see RiskProvider)")
            providers.append(provider)
    return providers
