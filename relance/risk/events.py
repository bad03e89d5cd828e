"""The normalised vocabulary of external company-risk data: what every provider's payload becomes.

A provider (BODACC, API Recherche d'entreprises, Companies House, or a paid source added by configuration) returns
publisher payloads; ``relance.risk.classify`` turns them into :class:`RiskEvent` rows (``raw.company_events``) and
:class:`CompanyProfile` rows (``raw.company_profiles``) with the columns of ``relance.raw_schema.RISK_ENTITIES``.
dbt reads them as of a date (``int_customer_risk_as_of``) and the consequences (dunning stop, claim task, alerts)
follow from the event types below, never from a publisher's own words.

Event types (``event_type``), what they mean, and their ``event_subtype``:

* ``procedure_opened``: a collective procedure opened; dunning stops and the claim must be declared within two
  months of the publication (R622-24). Subtype sauvegarde, redressement, liquidation or other; for a UK insolvency
  case, the Companies House case type.
* ``procedure_converted``: an open procedure turned into liquidation (RJ / sauvegarde -> LJ); still open.
  Subtype liquidation.
* ``plan_adopted``: a sauvegarde / redressement / cession plan; the procedure goes on under the plan (claims are
  paid by the plan, dunning stays stopped). Subtype sauvegarde, redressement or cession.
* ``procedure_closed``: the procedure ended. Subtype insufficient_assets, debts_extinguished or other.
* ``procedure_other``: a judgment that changes no status (état des créances, manager sanction, ...).
* ``conciliation``: an amicable, confidential procedure made public: an early warning.
* ``director_change``: the management changed.
* ``head_office_move``: the head office (registered office) moved.
* ``accounts_filed``: annual accounts filed; ``is_confidential`` when filed with a confidentiality declaration.
  Subtype the filing type.
* ``accounts_overdue``: accounts not filed by their due date (Companies House ``overdue``).
* ``closure``: the company closed, was struck off or dissolved. Subtype strike_off, dissolution or ceased.
* ``business_sold``: the business (fonds de commerce) was sold: the debtor may be gone.

``event_date`` is the judgment or effective date as published; ``published_date`` the day it became public, the
only date an as-of feature may know it from (a BODACC notice appears 5 to 20 days after the judgment).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal
from typing import Any

REGISTRY_FR = "FR-SIREN"
REGISTRY_GB = "GB-CRN"
REGISTRIES: tuple[str, ...] = (REGISTRY_FR, REGISTRY_GB)

PROCEDURE_OPENED = "procedure_opened"
PROCEDURE_CONVERTED = "procedure_converted"
PLAN_ADOPTED = "plan_adopted"
PROCEDURE_CLOSED = "procedure_closed"
PROCEDURE_OTHER = "procedure_other"
CONCILIATION = "conciliation"
DIRECTOR_CHANGE = "director_change"
HEAD_OFFICE_MOVE = "head_office_move"
ACCOUNTS_FILED = "accounts_filed"
ACCOUNTS_OVERDUE = "accounts_overdue"
CLOSURE = "closure"
BUSINESS_SOLD = "business_sold"

EVENT_TYPES: tuple[str, ...] = (
    PROCEDURE_OPENED,
    PROCEDURE_CONVERTED,
    PLAN_ADOPTED,
    PROCEDURE_CLOSED,
    PROCEDURE_OTHER,
    CONCILIATION,
    DIRECTOR_CHANGE,
    HEAD_OFFICE_MOVE,
    ACCOUNTS_FILED,
    ACCOUNTS_OVERDUE,
    CLOSURE,
    BUSINESS_SOLD,
)

#: Event types that put (or keep) a debtor in an open collective procedure: dunning stops from the publication.
OPENS_PROCEDURE: frozenset[str] = frozenset({PROCEDURE_OPENED, PROCEDURE_CONVERTED, PLAN_ADOPTED})
#: Event types that raise an alert to finance (besides the procedure itself).
WARNING_TYPES: frozenset[str] = frozenset({DIRECTOR_CHANGE, HEAD_OFFICE_MOVE, CLOSURE, CONCILIATION, BUSINESS_SOLD})

PROCEDURE_KINDS: tuple[str, ...] = ("sauvegarde", "redressement", "liquidation", "other")


@dataclass(frozen=True)
class RiskEvent:
    """One row of ``raw.company_events`` (same columns, same order)."""

    event_id: str
    registry: str
    company_id: str
    event_type: str
    event_subtype: str | None
    event_date: date | None
    published_date: date
    publisher: str
    detail: str | None = None
    is_confidential: bool | None = None
    court: str | None = None
    source_url: str | None = None

    def __post_init__(self) -> None:
        if self.event_type not in EVENT_TYPES:
            raise ValueError(f"unknown event_type {self.event_type!r}; known: {', '.join(EVENT_TYPES)}")
        if self.registry not in REGISTRIES:
            raise ValueError(f"unknown registry {self.registry!r}; known: {', '.join(REGISTRIES)}")

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CompanyProfile:
    """One row of ``raw.company_profiles``: a registry's view of a company on ``observed_date``."""

    registry: str
    company_id: str
    publisher: str
    observed_date: date
    company_name: str | None = None
    status: str | None = None  # 'active' | 'closed' | the registry's own word ('liquidation', 'dissolved', ...)
    closure_date: date | None = None
    naf_code: str | None = None
    headcount_band: str | None = None
    head_office_id: str | None = None
    directors: str | None = None  # JSON list, sorted, of "name (role)" strings
    accounts_year: int | None = None
    revenue: Decimal | None = None
    net_income: Decimal | None = None
    accounts_next_due: date | None = None
    is_accounts_overdue: bool | None = None

    @property
    def profile_id(self) -> str:
        return f"{self.publisher}:{self.registry}:{self.company_id}:{self.observed_date.isoformat()}"

    def as_row(self) -> dict[str, Any]:
        return {"profile_id": self.profile_id, **asdict(self)}
