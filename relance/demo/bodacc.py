"""BODACC insolvency notices for the demo, in the real Opendatasoft Explore v2.1 record format.

The risk-data client and its local stand-in read exactly this envelope (``{"total_count", "results"}``) with
nested blocks (``jugement``, ``listepersonnes``) as JSON-encoded strings and ``registre`` holding the SIREN
twice, spaced and plain, in varying order: see ``shared/reference/risk_data_apis.md`` §1.3-1.5.
Notices are few (1-2 % of B2B customers), so building them record by record is cheap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np

from relance.demo.reference import REGIONS

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
