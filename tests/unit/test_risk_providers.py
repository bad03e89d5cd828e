"""A paid source is a line of configuration: ``package.module:Class`` in RELANCE_RISK_PROVIDERS."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path

import pytest

from relance.risk.events import REGISTRY_FR, CompanyProfile, RiskEvent
from relance.risk.providers import (
    BodaccProvider,
    CompaniesHouseProvider,
    Company,
    ProviderResult,
    RechercheEntreprisesProvider,
    build_providers,
)
from relance.settings import Settings


class AcmeRisk:
    """What a credit-insurer feed would look like: built with (settings, cache_dir), one event per company."""

    name = "acme"
    registries = frozenset({REGISTRY_FR})

    def __init__(self, settings: Settings, cache_dir: Path) -> None:
        self.cache_dir = cache_dir

    def fetch(
        self,
        companies: Sequence[Company],
        *,
        watermarks: Mapping[Company, date | None],
        previous: Mapping[Company, CompanyProfile],
        today: date,
    ) -> ProviderResult:
        result = ProviderResult(self.name)
        for c in companies:
            result.events.append(
                RiskEvent(f"acme:{c.company_id}", c.registry, c.company_id, "conciliation", None, today, today, "acme")
            )
            result.checks[c] = None
        return result


class NotAProvider:
    def __init__(self, settings: Settings, cache_dir: Path) -> None:
        pass


def _settings(tmp_path: Path, providers: list[str], **kw: object) -> Settings:
    return Settings(data_dir=tmp_path, risk_providers=providers, **kw)


def test_a_provider_of_your_own_is_loaded_by_configuration(tmp_path: Path) -> None:
    (acme,) = build_providers(_settings(tmp_path, [f"{__name__}:AcmeRisk"]), tmp_path / "cache")
    assert isinstance(acme, AcmeRisk) and acme.cache_dir == tmp_path / "cache"
    result = acme.fetch([Company(REGISTRY_FR, "552032534")], watermarks={}, previous={}, today=date(2026, 10, 31))
    assert [e.event_type for e in result.events] == ["conciliation"] and result.errors == {}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("altares", "expected a built-in name or 'package.module:ClassName'"),
        ("no_such_module:Provider", "cannot be loaded"),
        (f"{__name__}:Missing", "cannot be loaded"),
        (f"{__name__}:NotAProvider", "lacks name, registries or fetch()"),
    ],
)
def test_a_bad_provider_setting_is_a_clear_error(tmp_path: Path, spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_providers(_settings(tmp_path, [spec]), tmp_path)


def test_built_ins_and_companies_house_only_with_a_key(tmp_path: Path) -> None:
    everything = ["bodacc", "recherche_entreprises", "companies_house"]
    kinds = [type(p) for p in build_providers(_settings(tmp_path, everything), tmp_path)]
    assert kinds == [BodaccProvider, RechercheEntreprisesProvider]  # no key: UK debtors are not checked
    keyed = build_providers(_settings(tmp_path, everything, companies_house_api_key="k"), tmp_path)
    assert [type(p) for p in keyed] == [BodaccProvider, RechercheEntreprisesProvider, CompaniesHouseProvider]
