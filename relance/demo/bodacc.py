"""BODACC notices for the demo, in the real Opendatasoft Explore v2.1 record format.

The risk-data client and its local stand-in read exactly this envelope (``{"total_count", "results"}``) with
nested blocks (``jugement``, ``listepersonnes``, ``modificationsgenerales``, ``depot``, ...) as JSON-encoded
strings and ``registre`` holding the SIREN twice, spaced and plain, in varying order: see
``shared/reference/risk_data_apis.md`` §1.3-1.5.

Two kinds, from two random streams (so adding the second changed nothing of the first):

* :func:`build_notices`: collective procedures (BODACC A) of the insolvent customers: opening, then for some a
  conversion to liquidation and a closure;
* :func:`plan_registry_notices`: the life of a few percent of the French firms (:data:`REGISTRY_KINDS`): director
  changes and head-office transfers (BODACC B ``modification``), transfers out of a greffe's area (BODACC A
  ``immatriculation`` in the new greffe + BODACC B ``radiation`` in the old one), accounts filings (BODACC C
  ``dpc``, some confidential), dissolutions and rare strike-offs (``radiation``).

Notices are few (a few percent of B2B customers), so building them record by record is cheap.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np

from relance.demo.days import EPOCH, day_number
from relance.demo.reference import FIRST_NAMES, LEGAL_FORMS, REGION_NAMES, REGIONS, SIZE_NAMES, SURNAMES

OPENING_NATURES: tuple[tuple[str, str, float], ...] = (
    (
        "Jugement d'ouverture d'une procédure de redressement judiciaire",
        "Jugement prononçant l'ouverture d'une procédure de redressement judiciaire, date de cessation des "
        "paiements le {cessation}, désignant mandataire judiciaire et administrateur.",
        0.55,
    ),
    (
        "Jugement d'ouverture de liquidation judiciaire",
        "Jugement prononçant la liquidation judiciaire, date de cessation des paiements le {cessation}, "
        "désignant liquidateur.",
        0.35,
    ),
    (
        "Jugement d'ouverture d'une procédure de sauvegarde",
        "Jugement d'ouverture d'une procédure de sauvegarde, désignant mandataire judiciaire.",
        0.10,
    ),
)
CONVERSION = (
    "Jugement de conversion en liquidation judiciaire",
    "Jugement de conversion en liquidation judiciaire de la procédure de redressement judiciaire, "
    "désignant liquidateur.",
)
CLOSURE = (
    "Jugement de clôture pour insuffisance d'actif",
    "Jugement prononçant la clôture de la procédure de liquidation judiciaire pour insuffisance d'actif.",
)


@dataclass(frozen=True)
class Insolvent:
    """What a notice needs to know about one insolvent debtor."""

    siren: str
    name: str
    legal_form: str
    activity: str
    region: str
    judgment_date: date


def _spaced(siren: str) -> str:
    return f"{siren[0:3]} {siren[3:6]} {siren[6:9]}"


def _record(
    firm: Insolvent,
    judgment: date,
    published: date,
    famille: str,
    nature: str,
    complement: str,
    rng_num: int,
    plain_first: bool,
) -> dict[str, Any]:
    region_code, dept, dept_name, city, cp = REGIONS[firm.region][2:]
    parution = f"{published.year}{(published.timetuple().tm_yday * 250) // 366 + 1:04d}"
    numero = 1 + rng_num % 4000
    notice_id = f"A{parution}{numero}"
    registre = [firm.siren, _spaced(firm.siren)] if plain_first else [_spaced(firm.siren), firm.siren]
    personne = {
        "personne": {
            "typePersonne": "pm",
            "denomination": firm.name,
            "formeJuridique": firm.legal_form,
            "activite": firm.activity,
            "numeroImmatriculation": {
                "codeRCS": "RCS",
                "numeroIdentification": _spaced(firm.siren),
                "nomGreffeImmat": city,
            },
            "adresseSiegeSocial": {"codePostal": cp, "ville": city, "pays": "france"},
        }
    }
    jugement = {
        "date": judgment.isoformat(),
        "complementJugement": complement,
        "type": "initial",
        "famille": famille,
        "nature": nature,
    }
    tribunal = (
        f"TRIBUNAL MIXTE DE COMMERCE DE {city.upper()}"
        if dept.startswith("97")
        else f"TRIBUNAL DE COMMERCE DE {city.upper()}"
    )
    return {
        "id": notice_id,
        "publicationavis": "A",
        "publicationavis_facette": "Bodacc A",
        "parution": parution,
        "dateparution": published.isoformat(),
        "numeroannonce": numero,
        "typeavis": "annonce",
        "typeavis_lib": "Avis initial",
        "familleavis": "collective",
        "familleavis_lib": "Procédures collectives",
        "numerodepartement": dept,
        "departement_nom_officiel": dept_name,
        "region_code": region_code,
        "region_nom_officiel": firm.region,
        "tribunal": tribunal,
        "commercant": firm.name,
        "ville": city,
        "registre": registre,
        "cp": cp,
        "pdf_parution_subfolder": None,
        "ispdf_unitaire": None,
        "listepersonnes": json.dumps(personne, ensure_ascii=False),
        "listeetablissements": None,
        "jugement": json.dumps(jugement, ensure_ascii=False),
        "acte": None,
        "modificationsgenerales": None,
        "radiationaurcs": None,
        "depot": None,
        "listeprecedentexploitant": None,
        "listeprecedentproprietaire": None,
        "divers": None,
        "parutionavisprecedent": None,
        "url_complete": f"https://www.bodacc.fr/pages/annonces-commerciales-detail/?q.id=id:{notice_id}",
    }


def build_notices(firms: list[Insolvent], end_date: date, rng: np.random.Generator) -> dict[str, Any]:
    """Opening judgment, then for some a conversion to liquidation and a closure, published up to end_date.

    Publication follows the judgment by 5-20 days (BODACC publishes the judgment, not the hearing), so a
    judgment just before end_date may not have a notice yet: exactly what a real API would return then.
    """
    records: list[dict[str, Any]] = []
    weights = np.array([w for *_, w in OPENING_NATURES])
    for firm in firms:
        kind = int(rng.choice(len(OPENING_NATURES), p=weights / weights.sum()))
        nature, complement, _ = OPENING_NATURES[kind]
        judgment = firm.judgment_date
        cessation = (judgment - timedelta(days=int(rng.integers(20, 120)))).strftime("%d/%m/%Y")
        events = [(judgment, "Jugement d'ouverture", nature, complement.format(cessation=cessation))]
        liquidated = kind == 1
        if not liquidated and rng.random() < 0.5:
            judgment = judgment + timedelta(days=int(rng.integers(60, 240)))
            events.append((judgment, "Jugement prononçant", *CONVERSION))
            liquidated = True
        if liquidated and rng.random() < 0.6:
            judgment = judgment + timedelta(days=int(rng.integers(300, 700)))
            events.append((judgment, "Jugement de clôture", *CLOSURE))
        for when, famille, nat, comp in events:
            published = when + timedelta(days=int(rng.integers(5, 21)))
            num, plain_first = int(rng.integers(0, 1 << 30)), bool(rng.random() < 0.5)
            if published <= end_date:
                records.append(_record(firm, when, published, famille, nat, comp, num, plain_first))
    records.sort(key=lambda r: (r["dateparution"], r["id"]), reverse=True)
    return {"total_count": len(records), "results": records}


# ------------------------------------------------------------------------------------------------------------
# registry notices: management, head office, accounts, closure
# ------------------------------------------------------------------------------------------------------------
#: What each generated registry notice is, and the events (type, subtype) ``relance.risk.classify`` must make of
#: it when it reads the whole file (the radiation half of a transfer out of a greffe's area gives none: the
#: immatriculation in the new greffe carries the move).
REGISTRY_KINDS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "director_change": (("director_change", None),),
    "head_office_move": (("head_office_move", None),),
    "director_change_and_move": (("director_change", None), ("head_office_move", None)),
    "transfer_immatriculation": (("head_office_move", None),),
    "transfer_radiation": (),
    "accounts": (("accounts_filed", "Comptes annuels"),),
    "accounts_with_reports": (("accounts_filed", "Comptes annuels et rapports"),),
    "dissolution": (("closure", "dissolution"),),
    "radiation": (("closure", "strike_off"),),
}
DIRECTOR_KINDS = frozenset({"director_change", "director_change_and_move"})
MOVE_KINDS = frozenset({"head_office_move", "director_change_and_move", "transfer_immatriculation"})
DIRECTOR_CHANGE_TEXT = "Modification survenue sur l'administration."
HEAD_OFFICE_MOVE_TEXT = "Transfert du siège social."
DIRECTOR_AND_MOVE_TEXT = "Modification survenue sur l'administration, transfert du siège social."
DISSOLUTION_TEXT = "Dissolution anticipée de la société, mise en liquidation amiable."
TRANSFER_CATEGORY = "Immatriculation d'une personne morale suite à transfert de son siège social hors ressort"
TRANSFER_RADIATION_TEXT = "Radiation du registre du commerce et des sociétés suite au transfert du siège social"
CONFIDENTIAL_ACCOUNTS_TEXT = (
    "Les comptes annuels sont accompagnés d'une déclaration de confidentialité en application du premier ou "
    "deuxième alinéa de l'article L. 232-25."
)
CONFIDENTIAL_RESULTS_TEXT = (
    "Le compte de résultat est accompagné d'une déclaration de confidentialité en application du deuxième "
    "alinéa de l'article L. 232-25."
)
STREETS: tuple[str, ...] = (
    "de la République",
    "Victor Hugo",
    "Jean Jaurès",
    "du Commerce",
    "de la Gare",
    "des Tanneurs",
    "Pasteur",
    "du Général Leclerc",
)
# share of French firms over the window: director change (x3 for a firm whose payments deteriorate), head-office
# move (a third of them out of the greffe's area), accounts published in BODACC C every year, strike-off of a
# firm that stopped ordering (half of them dissolved first)
P_DIRECTOR_CHANGE = 0.04
P_MOVE = 0.03
P_ACCOUNTS = 0.06
P_RADIATION = 0.02
#: The demo always shows a director change this recent for a customer with open invoices (the alert to see).
RECENT_DIRECTOR_CHANGE_DAYS = 60


@dataclass(frozen=True)
class Firm:
    """What a registry notice needs to know about one French customer, and when it may be about it."""

    siren: str
    name: str
    legal_form: str
    legal_abbr: str
    region: str
    size: str  # relance.demo.reference.SIZE_NAMES
    first_day: date  # the firm exists (customer created) from then
    last_day: date  # no notice after: end_date, or the day before an insolvency judgment
    last_invoice: date | None  # the last invoice issued to it, if any
    has_open_invoices: bool  # something unpaid at end_date
    deteriorating: bool  # its payments drift worse


@dataclass(frozen=True)
class RegistryFirms:
    """The French firms as columns (one entry per firm), so that the draws are vectorised and a
    :class:`Firm` is built only for the few that get a notice."""

    siren: np.ndarray  # int64
    name: np.ndarray  # object
    legal_form: np.ndarray  # index into LEGAL_FORMS
    region: np.ndarray  # index into REGION_NAMES
    size: np.ndarray  # index into SIZE_NAMES
    first_day: np.ndarray  # day numbers (relance.demo.days)
    last_day: np.ndarray
    last_invoice: np.ndarray  # day number, -1 when none
    has_open_invoices: np.ndarray  # bool
    deteriorating: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.siren)

    def firm(self, i: int) -> Firm:
        abbr, form, _ = LEGAL_FORMS[int(self.legal_form[i])]
        last_invoice = int(self.last_invoice[i])
        return Firm(
            siren=f"{int(self.siren[i]):09d}",
            name=str(self.name[i]).upper(),
            legal_form=form,
            legal_abbr=abbr,
            region=REGION_NAMES[int(self.region[i])],
            size=SIZE_NAMES[int(self.size[i])],
            first_day=EPOCH + timedelta(days=int(self.first_day[i])),
            last_day=EPOCH + timedelta(days=int(self.last_day[i])),
            last_invoice=EPOCH + timedelta(days=last_invoice) if last_invoice >= 0 else None,
            has_open_invoices=bool(self.has_open_invoices[i]),
            deteriorating=bool(self.deteriorating[i]),
        )


@dataclass(frozen=True)
class GeneratedNotice:
    """One registry notice and what it was generated as (a key of :data:`REGISTRY_KINDS`)."""

    kind: str
    record: dict[str, Any] = field(repr=False)

    @property
    def siren(self) -> str:
        return next(r for r in self.record["registre"] if " " not in r)


def _greffe(city: str, dept: str) -> str:
    mixte = "Mixte " if dept.startswith("97") else ""
    return f"Greffe du Tribunal {mixte}de Commerce de {city}"


def _parution(published: date) -> str:
    return f"{published.year}{(published.timetuple().tm_yday * 250) // 366 + 1:04d}"


_FAMILIES = {
    "modification": ("B", "Modifications diverses"),
    "radiation": ("B", "Radiations"),
    "immatriculation": ("A", "Immatriculations"),
    "dpc": ("C", "Dépôts des comptes"),
}


class NoticeWriter:
    """Builds records with ids unique in the file (letter + parution + numéro, as BODACC numbers them)."""

    def __init__(self, rng: np.random.Generator, taken: Iterable[str] = ()) -> None:
        self.rng = rng
        self.taken = set(taken)

    def _id(self, letter: str, parution: str) -> tuple[str, int]:
        # BODACC A numbers of the collective notices run 1-4000: registry notices of A start above them
        low = 4001 if letter == "A" else 1
        numero = low + int(self.rng.integers(0, 5000))
        while f"{letter}{parution}{numero}" in self.taken:
            numero += 1
        self.taken.add(f"{letter}{parution}{numero}")
        return f"{letter}{parution}{numero}", numero

    def address(self, region: str) -> dict[str, str]:
        _, _, _, _, _, city, cp = REGIONS[region]
        street = STREETS[int(self.rng.integers(0, len(STREETS)))]
        return {
            "numeroVoie": str(int(self.rng.integers(1, 120))),
            "typeVoie": "rue",
            "nomVoie": street,
            "codePostal": cp,
            "ville": city,
            "pays": "france",
        }

    def person(self) -> str:
        return (
            f"{SURNAMES[int(self.rng.integers(0, len(SURNAMES)))].upper()} "
            + FIRST_NAMES[int(self.rng.integers(0, len(FIRST_NAMES)))]
        )

    def administration(self, firm: Firm) -> str:
        if firm.legal_abbr in ("SARL", "EURL"):
            return f"Gérant : {self.person()}"
        if firm.legal_abbr == "SA":
            return f"Président du conseil d'administration : {self.person()} ; Directeur général : {self.person()}"
        return f"Président : {self.person()}"

    def record(
        self,
        firm: Firm,
        family: str,
        published: date,
        *,
        region: str | None = None,
        personne: dict[str, Any] | None = None,
        **blocks: Any,
    ) -> dict[str, Any]:
        """A v2.1 record of ``family`` about ``firm``, published by the greffe of ``region`` (its own by default);
        ``blocks`` are the nested blocks (encoded as JSON strings, as the API serves them)."""
        letter, family_lib = _FAMILIES[family]
        region = region or firm.region
        region_code, dept, dept_name, city, cp = REGIONS[region][2:]
        parution = _parution(published)
        notice_id, numero = self._id(letter, parution)
        plain_first = bool(self.rng.random() < 0.5)
        registre = [firm.siren, _spaced(firm.siren)] if plain_first else [_spaced(firm.siren), firm.siren]
        person = {
            "typePersonne": "pm",
            "denomination": firm.name,
            "formeJuridique": firm.legal_form,
            "numeroImmatriculation": {
                "codeRCS": "RCS",
                "numeroIdentification": _spaced(firm.siren),
                "nomGreffeImmat": city,
            },
            "adresseSiegeSocial": {"codePostal": cp, "ville": city, "pays": "france"},
            **(personne or {}),
        }
        encoded = {k: json.dumps(v, ensure_ascii=False) for k, v in blocks.items()}
        return {
            "id": notice_id,
            "publicationavis": letter,
            "publicationavis_facette": f"Bodacc {letter}",
            "parution": parution,
            "dateparution": published.isoformat(),
            "numeroannonce": numero,
            "typeavis": "annonce",
            "typeavis_lib": "Avis initial",
            "familleavis": family,
            "familleavis_lib": family_lib,
            "numerodepartement": dept,
            "departement_nom_officiel": dept_name,
            "region_code": region_code,
            "region_nom_officiel": region,
            "tribunal": _greffe(city, dept),
            "commercant": firm.name,
            "ville": city,
            "registre": registre,
            "cp": cp,
            "pdf_parution_subfolder": None,
            "ispdf_unitaire": None,
            "listepersonnes": json.dumps({"personne": person}, ensure_ascii=False),
            "listeetablissements": encoded.get("listeetablissements"),
            "jugement": None,
            "acte": encoded.get("acte"),
            "modificationsgenerales": encoded.get("modificationsgenerales"),
            "radiationaurcs": encoded.get("radiationaurcs"),
            "depot": encoded.get("depot"),
            "listeprecedentexploitant": None,
            "listeprecedentproprietaire": None,
            "divers": None,
            "parutionavisprecedent": None,
            "url_complete": f"https://www.bodacc.fr/pages/annonces-commerciales-detail/?q.id=id:{notice_id}",
        }


def modification_notice(w: NoticeWriter, firm: Firm, published: date, kind: str) -> GeneratedNotice:
    """BODACC B ``modification``: director change, head-office move (same greffe), both, or a dissolution."""
    text = {
        "director_change": DIRECTOR_CHANGE_TEXT,
        "head_office_move": HEAD_OFFICE_MOVE_TEXT,
        "director_change_and_move": DIRECTOR_AND_MOVE_TEXT,
        "dissolution": DISSOLUTION_TEXT,
    }[kind]
    personne: dict[str, Any] = {}
    if kind in ("director_change", "director_change_and_move"):
        personne["administration"] = w.administration(firm)
    if kind == "dissolution":
        personne["administration"] = f"Liquidateur amiable : {w.person()}"
    if kind in ("head_office_move", "director_change_and_move"):
        personne["adresseSiegeSocial"] = w.address(firm.region)
    return GeneratedNotice(
        kind, w.record(firm, "modification", published, personne=personne, modificationsgenerales={"descriptif": text})
    )


def transfer_notices(
    w: NoticeWriter, firm: Firm, published: date, new_region: str, radiation_lag: int
) -> list[GeneratedNotice]:
    """A head-office transfer out of the greffe's area: an immatriculation in the new greffe, then (``radiation_lag``
    days later) a radiation in the old one, which says why only half of the time (as real ones)."""
    address = w.address(new_region)
    new_city = REGIONS[new_region][5]
    acte = {
        "immatriculation": {"categorieImmatriculation": TRANSFER_CATEGORY},
        "dateImmatriculation": (published - timedelta(days=7)).isoformat(),
        "descriptif": f"Précédent siège social : {REGIONS[firm.region][5]}.",
    }
    personne = {
        "adresseSiegeSocial": address,
        "numeroImmatriculation": {
            "codeRCS": "RCS",
            "numeroIdentification": _spaced(firm.siren),
            "nomGreffeImmat": new_city,
        },
    }
    moved = w.record(firm, "immatriculation", published, region=new_region, personne=personne, acte=acte)
    radiation: dict[str, Any] = {"radiationPM": "O"}
    if w.rng.random() < 0.5:
        radiation["commentaire"] = TRANSFER_RADIATION_TEXT
    struck = w.record(firm, "radiation", published + timedelta(days=radiation_lag), radiationaurcs=radiation)
    return [GeneratedNotice("transfer_immatriculation", moved), GeneratedNotice("transfer_radiation", struck)]


def accounts_notice(w: NoticeWriter, firm: Firm, published: date, closing: date, confidential: bool) -> GeneratedNotice:
    """BODACC C ``dpc``: annual accounts of the year closing on ``closing``; micro firms may keep them all
    confidential, small ones their income statement (L. 232-25)."""
    with_reports = firm.legal_abbr == "SA" or firm.size in ("medium", "large")
    depot: dict[str, Any] = {
        "dateCloture": closing.isoformat(),
        "typeDepot": "Comptes annuels et rapports" if with_reports else "Comptes annuels",
    }
    if confidential:
        depot["descriptif"] = CONFIDENTIAL_ACCOUNTS_TEXT if firm.size == "micro" else CONFIDENTIAL_RESULTS_TEXT
    kind = "accounts_with_reports" if with_reports else "accounts"
    return GeneratedNotice(kind, w.record(firm, "dpc", published, depot=depot))


def radiation_notice(w: NoticeWriter, firm: Firm, published: date) -> GeneratedNotice:
    """BODACC B ``radiation``: the firm is struck off the register."""
    return GeneratedNotice("radiation", w.record(firm, "radiation", published, radiationaurcs={"radiationPM": "O"}))


def _day_between(rng: np.random.Generator, first: date, last: date) -> date | None:
    if last < first:
        return None
    return first + timedelta(days=int(rng.integers(0, (last - first).days + 1)))


def _notices_of(w: NoticeWriter, firm: Firm, draws: np.ndarray, start: date, end_date: date) -> list[GeneratedNotice]:
    """The notices the draws (four uniforms) give one firm."""
    rng = w.rng
    out: list[GeneratedNotice] = []
    first, last = max(start, firm.first_day + timedelta(days=60)), min(end_date, firm.last_day)
    u_director, u_move, u_accounts, u_radiation = draws
    boost = 3 if firm.deteriorating else 1
    if u_director < P_DIRECTOR_CHANGE * boost and (day := _day_between(rng, first, last)) is not None:
        out.append(modification_notice(w, firm, day, "director_change"))
    transferred = False
    if u_move < P_MOVE and (day := _day_between(rng, first, last - timedelta(days=30))) is not None:
        style = rng.random()
        transferred = style < 1 / 3
        if transferred:
            others = [r for r in REGION_NAMES if r != firm.region]
            new_region = others[int(rng.integers(0, len(others)))]
            out += transfer_notices(w, firm, day, new_region, int(rng.integers(0, 26)))
        else:
            out.append(
                modification_notice(w, firm, day, "director_change_and_move" if style < 0.5 else "head_office_move")
            )
    if u_accounts < P_ACCOUNTS:
        confidential = bool(rng.random() < {"micro": 0.6, "small": 0.3}.get(firm.size, 0.0))
        for year in range(start.year - 1, end_date.year):
            day = date(year + 1, 5, 1) + timedelta(days=int(rng.integers(0, 120)))
            if first <= day <= last and firm.first_day < date(year, 12, 31):
                out.append(accounts_notice(w, firm, day, date(year, 12, 31), confidential))
    # (a firm that moved out of its greffe's area is not struck off too: the file would hide the strike-off)
    if u_radiation < P_RADIATION and firm.last_invoice is not None and firm.last_day >= end_date and not transferred:
        day = _day_between(rng, max(first, firm.last_invoice + timedelta(days=90)), last)
        if day is not None:
            dissolved = day - timedelta(days=int(rng.integers(60, 200)))
            if rng.random() < 0.5 and dissolved >= first:
                out.append(modification_notice(w, firm, dissolved, "dissolution"))
            out.append(radiation_notice(w, firm, day))
    return out


def plan_registry_notices(
    firms: RegistryFirms, start: date, end_date: date, rng: np.random.Generator, taken: Iterable[str] = ()
) -> list[GeneratedNotice]:
    """The registry notices of the French firms, published between ``start`` and ``end_date`` (each within its
    firm's ``first_day`` + 60 days .. ``last_day``), with ids distinct from ``taken``.

    Four uniforms per firm decide who gets what (:data:`P_DIRECTOR_CHANGE`, ...); the firms drawn are then built
    in order, so the same firms and generator give the same notices. Whatever the draws, when a firm with open
    invoices exists, there is a director change published in the last :data:`RECENT_DIRECTOR_CHANGE_DAYS` days of
    such a firm and a head-office transfer (one of each is added when the draws gave none): the demo must show
    those alerts.
    """
    draws = rng.random((len(firms), 4))
    chance = np.array([P_DIRECTOR_CHANGE, P_MOVE, P_ACCOUNTS, P_RADIATION])
    boosted = draws[:, 0] < P_DIRECTOR_CHANGE * np.where(firms.deteriorating, 3, 1)
    hit = np.flatnonzero(boosted | (draws[:, 1:] < chance[1:]).any(axis=1))
    w = NoticeWriter(rng, set(taken))
    out: list[GeneratedNotice] = []
    for i in hit:
        out += _notices_of(w, firms.firm(int(i)), draws[i], start, end_date)

    # what the demo must show whatever the draws: a recent director change of a customer that owes money, and a
    # head-office transfer (out of the greffe's area: the radiation that must not read as a closure)
    end = day_number(end_date)
    struck = np.array(sorted({int(g.siren) for g in out if g.kind in ("radiation", "dissolution")}), dtype=np.int64)
    owing = (
        firms.has_open_invoices
        & (firms.last_day >= end)
        & (firms.first_day < end - 210)  # old enough for both notices below: 60 days, then up to 150 before end
        & ~np.isin(firms.siren, struck)
    )
    owing_sirens = {int(s) for s in firms.siren[owing]}
    recent = (end_date - timedelta(days=RECENT_DIRECTOR_CHANGE_DAYS)).isoformat()
    if owing_sirens and not any(
        g.kind in DIRECTOR_KINDS and g.record["dateparution"] >= recent and int(g.siren) in owing_sirens for g in out
    ):
        firm = firms.firm(int(rng.choice(np.flatnonzero(owing))))
        day = max(start, end_date - timedelta(days=int(rng.integers(5, RECENT_DIRECTOR_CHANGE_DAYS - 10))))
        out.append(modification_notice(w, firm, day, "director_change"))
    if owing_sirens and not any(g.kind in MOVE_KINDS for g in out):
        firm = firms.firm(int(rng.choice(np.flatnonzero(owing))))
        day = max(start, end_date - timedelta(days=int(rng.integers(30, 150))))
        others = [r for r in REGION_NAMES if r != firm.region]
        new_region = others[int(rng.integers(0, len(others)))]
        out += transfer_notices(w, firm, day, new_region, min(int(rng.integers(0, 26)), (end_date - day).days))
    return out
