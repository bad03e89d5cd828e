"""Classification rules: publisher payloads -> normalised :class:`~relance.risk.events.RiskEvent` and
:class:`~relance.risk.events.CompanyProfile` rows.

Pure functions (no I/O, no clock, no Prefect): the same payload gives the same rows, with the same ids, whoever
calls (the daily flow, ``relance risk import``, ``relance risk check``, a test).

BODACC (:func:`bodacc_events`) follows ``shared/reference/risk_data_apis.md`` §1.6. The rules are data, quoted by
the README, matched on *normalised* text (lower case, accents and typographic apostrophes folded, spaces
collapsed), so "Jugement de clôture pour insuffisance d’actif" and "JUGEMENT DE CLOTURE POUR INSUFFISANCE D'ACTIF"
are one label:

* ``familleavis`` ``collective`` / ``retablissement_professionnel``: :data:`JUDGMENT_RULES` on
  ``jugement.nature`` (first rule whose words all appear wins), then on ``complementJugement``, then on
  ``jugement.famille``. For the generic labels of :data:`GENERIC_NATURES` ("Autre jugement et ordonnance", ...)
  the complement is read first: it says what the judgment did. A rule with no subtype takes the procedure kind
  from the other texts (:data:`PROCEDURE_KIND_WORDS`, :data:`PLAN_KIND_WORDS`).
* ``conciliation``: ``conciliation``.
* ``modification``: every rule of :data:`MODIFICATION_RULES` that matches ``modificationsgenerales.descriptif``
  gives its event (one per type): a notice about the administration *and* the head office yields both.
* ``radiation``: ``closure`` / ``strike_off``, except a radiation that is half of a head-office transfer out of a
  greffe's area (:data:`TRANSFER_WORDS` in its own text, or an ``immatriculation`` of the same SIREN in the same
  batch saying so within :data:`TRANSFER_WINDOW_DAYS`): a move, not a closure.
* ``immatriculation`` saying :data:`TRANSFER_WORDS`: ``head_office_move``.
* ``dpc``: ``accounts_filed``, subtype ``depot.typeDepot``, confidential when the descriptif cites
  :data:`CONFIDENTIAL_WORDS`.
* ``vente``: ``business_sold`` for the seller (``listeprecedentproprietaire``), never the buyer; a
  location-gérance is not a sale.
* ``typeavis`` ``annulation``: no event, and the notice it cancels (``parutionavisprecedent``) is dropped from the
  batch; ``rectificatif``: classified like an initial notice, and the notice it corrects is dropped from the
  batch (the correction carries the right content).

Anything else gives no event (fewer events, never an exception): a record without a usable date or SIREN, an
unknown family, an unrecognised judgment.

Companies House (:func:`companies_house_events`, :func:`companies_house_profile`) and API Recherche d'entreprises
(:func:`recherche_profile`) give profiles; :func:`profile_events` turns the difference between two snapshots of a
company into events (directors, head office, closure).
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, NamedTuple

from stdnum.fr import siren as stdnum_siren

from relance.risk.events import (
    ACCOUNTS_FILED,
    ACCOUNTS_OVERDUE,
    BUSINESS_SOLD,
    CLOSURE,
    CONCILIATION,
    DIRECTOR_CHANGE,
    HEAD_OFFICE_MOVE,
    PLAN_ADOPTED,
    PROCEDURE_CLOSED,
    PROCEDURE_CONVERTED,
    PROCEDURE_OPENED,
    PROCEDURE_OTHER,
    REGISTRY_FR,
    REGISTRY_GB,
    CompanyProfile,
    RiskEvent,
)

log = logging.getLogger(__name__)

PUBLISHER_BODACC = "bodacc"
PUBLISHER_RECHERCHE = "recherche_entreprises"
PUBLISHER_COMPANIES_HOUSE = "companies_house"
BODACC_PERMALINK = "https://www.bodacc.fr/pages/annonces-commerciales-detail/?q.id=id:{id}"


class Rule(NamedTuple):
    """Every one of ``words`` appears in the (normalised) text -> ``event_type`` / ``subtype``.

    A ``subtype`` of None on a procedure rule means "the kind named elsewhere in the notice" (see
    :data:`PROCEDURE_KIND_WORDS`, :data:`PLAN_KIND_WORDS`).
    """

    words: tuple[str, ...]
    event_type: str
    subtype: str | None


# --------------------------------------------------------------------------------------------------------------
# the rule tables (README quotes them)
# --------------------------------------------------------------------------------------------------------------
#: Collective-procedure judgments, in order: the first rule whose words all appear in the label wins. Sanctions and
#: administrative judgments come first because their labels name the procedure they belong to ("Dépôt de l'état
#: des créances ... liquidation judiciaire" changes nothing); closures before escalations and plans ("clôture de
#: la procédure de liquidation"); a plan's resolution before the plan itself.
JUDGMENT_RULES: tuple[Rule, ...] = (
    # manager sanctions
    Rule(("interdiction de gérer",), PROCEDURE_OTHER, None),
    Rule(("faillite personnelle",), PROCEDURE_OTHER, None),
    # administrative: no change of status
    Rule(("état des créances",), PROCEDURE_OTHER, None),
    Rule(("état de collocation",), PROCEDURE_OTHER, None),
    Rule(("projet de répartition",), PROCEDURE_OTHER, None),
    Rule(("modifiant la date de cessation des paiements",), PROCEDURE_OTHER, None),
    Rule(("report de la date de cessation des paiements",), PROCEDURE_OTHER, None),
    Rule(("désignation des organes",), PROCEDURE_OTHER, None),
    Rule(("remplacement du",), PROCEDURE_OTHER, None),
    Rule(("remplacement de",), PROCEDURE_OTHER, None),
    Rule(("prorogation",), PROCEDURE_OTHER, None),
    Rule(("prolongation de la période d'observation",), PROCEDURE_OTHER, None),
    Rule(("renouvellement de la période d'observation",), PROCEDURE_OTHER, None),
    # an appeal or a retraction that undoes the procedure
    Rule(("infirmant",), PROCEDURE_CLOSED, "other"),
    Rule(("rétractation",), PROCEDURE_CLOSED, "other"),
    # closures
    Rule(("clôture", "insuffisance d'actif"), PROCEDURE_CLOSED, "insufficient_assets"),
    Rule(("clôture", "extinction du passif"), PROCEDURE_CLOSED, "debts_extinguished"),
    Rule(("clôture",), PROCEDURE_CLOSED, "other"),
    Rule(("mettant fin à la procédure",), PROCEDURE_CLOSED, "other"),
    # escalation to liquidation (a plan's failure included)
    Rule(("conversion", "liquidation"), PROCEDURE_CONVERTED, "liquidation"),
    Rule(("résolution du plan", "liquidation"), PROCEDURE_CONVERTED, "liquidation"),
    Rule(("prononçant la liquidation",), PROCEDURE_CONVERTED, "liquidation"),
    # a sauvegarde turned into redressement, or a failed plan followed by a new redressement: a new procedure
    Rule(("conversion", "redressement"), PROCEDURE_OPENED, "redressement"),
    Rule(("résolution du plan", "ouvrant", "redressement"), PROCEDURE_OPENED, "redressement"),
    Rule(("résolution du plan", "ouverture", "redressement"), PROCEDURE_OPENED, "redressement"),
    # a plan cancelled without a new procedure, or carried out: the procedure is over
    Rule(("résolution du plan",), PROCEDURE_CLOSED, "other"),
    Rule(("exécution du plan",), PROCEDURE_CLOSED, "other"),
    # plans
    Rule(("plan de cession",), PLAN_ADOPTED, "cession"),
    Rule(("plan de sauvegarde",), PLAN_ADOPTED, "sauvegarde"),
    Rule(("plan de redressement",), PLAN_ADOPTED, "redressement"),
    Rule(("plan de continuation",), PLAN_ADOPTED, "redressement"),
    Rule(("arrêtant le plan",), PLAN_ADOPTED, None),
    Rule(("modifiant le plan",), PLAN_ADOPTED, None),
    # openings (simplified, accélérée, financière accélérée, "Autre jugement d'ouverture", ...)
    Rule(("ouverture", "liquidation"), PROCEDURE_OPENED, "liquidation"),
    Rule(("ouverture", "redressement"), PROCEDURE_OPENED, "redressement"),
    Rule(("ouverture", "sauvegarde"), PROCEDURE_OPENED, "sauvegarde"),
    Rule(("ouverture", "sortie de crise"), PROCEDURE_OPENED, "other"),
    Rule(("ouverture", "rétablissement professionnel"), PROCEDURE_OPENED, "other"),
    Rule(("ouverture",), PROCEDURE_OPENED, None),
    Rule(("extension", "procédure"), PROCEDURE_OPENED, None),
    Rule(("extension", "liquidation"), PROCEDURE_OPENED, "liquidation"),
)

#: Judgment labels that say little by themselves (the label, or how it starts): the complement
#: (``complementJugement``) is read first. "Autre jugement et ordonnance", "Autre jugement prononçant" and
#: "Autre jugement d'ouverture" start with "Autre jugement".
GENERIC_NATURES: tuple[str, ...] = ("Jugement", "Extrait de jugement", "Extrait d'arrêt")
GENERIC_NATURE_PREFIXES: tuple[str, ...] = ("Autre jugement", "Autre décision", "Arrêt")
#: Where a procedure rule has no subtype: the first of these words found in the notice's other texts.
PROCEDURE_KIND_WORDS: tuple[tuple[str, str], ...] = (
    ("liquidation", "liquidation"),
    ("redressement", "redressement"),
    ("sauvegarde", "sauvegarde"),
)
PLAN_KIND_WORDS: tuple[tuple[str, str], ...] = (
    ("cession", "cession"),
    ("sauvegarde", "sauvegarde"),
    ("redressement", "redressement"),
)
#: ``modificationsgenerales.descriptif``: every matching event type is given (its first matching rule's subtype).
MODIFICATION_RULES: tuple[Rule, ...] = (
    Rule(("administration",), DIRECTOR_CHANGE, None),
    Rule(("gérant",), DIRECTOR_CHANGE, None),
    Rule(("dirigeant",), DIRECTOR_CHANGE, None),
    Rule(("transfert du siège",), HEAD_OFFICE_MOVE, None),
    Rule(("transfert de siège",), HEAD_OFFICE_MOVE, None),
    Rule(("transfert de son siège",), HEAD_OFFICE_MOVE, None),
    Rule(("dissolution",), CLOSURE, "dissolution"),
    Rule(("liquidation amiable",), CLOSURE, "dissolution"),
    Rule(("cessation d'activité",), CLOSURE, "ceased"),
    Rule(("cessation totale",), CLOSURE, "ceased"),
    Rule(("cessation définitive",), CLOSURE, "ceased"),
    Rule(("mise en sommeil",), CLOSURE, "ceased"),
)
#: A radiation or an immatriculation saying one of these is (half of) a head-office transfer.
TRANSFER_WORDS: tuple[str, ...] = ("transfert du siège", "transfert de siège", "transfert de son siège")
#: An immatriculation "suite à transfert" this close to a radiation of the same SIREN makes it a move.
TRANSFER_WINDOW_DAYS = 180
#: Accounts filed with a confidentiality declaration (Code de commerce L. 232-25).
CONFIDENTIAL_WORDS: tuple[str, ...] = ("232-25", "confidentialité", "ne sont pas rendus publics")
#: A ``vente`` notice about a location-gérance (lease of the business) is not a sale.
NOT_A_SALE_WORDS: tuple[str, ...] = ("gérance",)

#: What each ``familleavis`` gives (documentation of :func:`bodacc_events`; the rules above decide the details).
FAMILY_EVENTS: dict[str, str] = {
    "collective": "JUDGMENT_RULES on jugement.nature / complementJugement / famille",
    "retablissement_professionnel": "JUDGMENT_RULES (an opening is procedure_opened / other)",
    "conciliation": CONCILIATION,
    "modification": "MODIFICATION_RULES on modificationsgenerales.descriptif",
    "radiation": f"{CLOSURE} / strike_off, or nothing / {HEAD_OFFICE_MOVE} for a transfer out of the greffe's area",
    "immatriculation": f"{HEAD_OFFICE_MOVE} when it follows a head-office transfer, else nothing",
    "dpc": f"{ACCOUNTS_FILED} / depot.typeDepot (is_confidential from CONFIDENTIAL_WORDS)",
    "vente": f"{BUSINESS_SOLD} for the seller",
}

#: Companies House insolvency case types that are no insolvency: a solvent winding-up is a closure.
SOLVENT_CASE_TYPES: dict[str, tuple[str, str]] = {"members-voluntary-liquidation": (CLOSURE, "dissolution")}
#: Case dates that end a case.
CASE_END_DATE_TYPES: frozenset[str] = frozenset(
    {
        "concluded-winding-up-on",
        "dissolved-on",
        "administration-ended-on",
        "administration-discharged-on",
        "voluntary-arrangement-ended-on",
        "moratorium-ended-on",
    }
)
#: A case ending this close to the start of another case of the company was handed over (administration ->
#: creditors' voluntary liquidation): the company is still in a procedure, so no procedure_closed.
HANDOVER_DAYS = 31
#: ``company_status`` values of a company that no longer exists -> closure subtype.
CH_CLOSED_STATUSES: dict[str, str] = {
    "dissolved": "dissolution",
    "removed": "strike_off",
    "closed": "ceased",
    "converted-closed": "ceased",
}
#: Officer roles that make a director (secretaries and the like are not management).
DIRECTOR_ROLES: frozenset[str] = frozenset(
    {"director", "corporate-director", "nominee-director", "corporate-nominee-director"}
)
#: Profile statuses that mean the company is gone (Recherche: 'closed'; Companies House: its own words).
CLOSED_STATUSES: frozenset[str] = frozenset({"closed", *CH_CLOSED_STATUSES})

_FRENCH_MONTHS: dict[str, int] = {
    "janvier": 1,
    "fevrier": 2,
    "mars": 3,
    "avril": 4,
    "mai": 5,
    "juin": 6,
    "juillet": 7,
    "aout": 8,
    "septembre": 9,
    "octobre": 10,
    "novembre": 11,
    "decembre": 12,
}
_FRENCH_DATE = re.compile(r"\b(\d{1,2})(?:er)?\s+(" + "|".join(_FRENCH_MONTHS) + r")\s+(\d{4})\b")
_ISO_DATE = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})")
_SLASH_DATE = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})\b")


# --------------------------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------------------------
@lru_cache(maxsize=8192)
def normalise(text: str) -> str:
    """Lower case, accents removed, typographic apostrophes straightened, whitespace collapsed."""
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'").replace("\u00a0", " ")
    decomposed = unicodedata.normalize("NFKD", text)
    folded = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
    return " ".join(folded.split())


def _matches(rule: Rule, text: str) -> bool:
    return all(normalise(word) in text for word in rule.words)


def _first_rule(rules: Sequence[Rule], text: str) -> Rule | None:
    return next((r for r in rules if _matches(r, text)), None)


def _contains_any(text: str, words: Iterable[str]) -> bool:
    return any(normalise(w) in text for w in words)


def parse_date(value: Any) -> date | None:
    """A date as BODACC / the registries write it: ISO (``2020-11-19``, with or without a time), ``19/11/2020``,
    or French text (``10 décembre 2009``, ``1er mars 2010``); None when it is none of these."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        if m := _ISO_DATE.match(value):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if m := _SLASH_DATE.match(value):
            return date(int(m[3]), int(m[2]), int(m[1]))
        if m := _FRENCH_DATE.search(normalise(value)):
            return date(int(m[3]), _FRENCH_MONTHS[m[2]], int(m[1]))
    except ValueError:
        return None
    return None


def block(value: Any) -> Any:
    """A nested BODACC block as served (a JSON-encoded string) or already decoded (a dict or list); None when
    absent or not valid JSON."""
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return None
    return value if isinstance(value, dict | list) else None


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    text = " ".join(str(value).split())
    return text or None


def _all_text(value: Any) -> str:
    """Every string inside a decoded block, joined (for keyword scans of blocks of unknown shape)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return " ".join(_all_text(v) for v in value.values())
    if isinstance(value, list):
        return " ".join(_all_text(v) for v in value)
    return ""


def valid_siren(value: Any) -> str | None:
    """The 9-digit, Luhn-valid SIREN in ``value`` (spaces and punctuation ignored; a SIRET gives its SIREN)."""
    digits = re.sub(r"\D", "", str(value)) if value is not None else ""
    if len(digits) == 14:
        digits = digits[:9]
    return digits if len(digits) == 9 and stdnum_siren.is_valid(digits) else None


def _registre_sirens(value: Any) -> list[str]:
    """``registre``: a list (v2.1) or a comma-joined string (v1) holding each SIREN spaced and plain."""
    pieces = value if isinstance(value, list) else [value] if value is not None else []
    found: list[str] = []
    for piece in pieces:
        for part in re.split(r"[,;]", str(piece)):
            siren = valid_siren(part)
            if siren and siren not in found:
                found.append(siren)
    return found


def _persons(value: Any) -> list[Mapping[str, Any]]:
    """The ``personne`` entries of a ``listepersonnes`` / ``listeprecedentproprietaire`` block (one or a list)."""
    decoded = block(value)
    items = decoded if isinstance(decoded, list) else [decoded] if decoded is not None else []
    persons: list[Mapping[str, Any]] = []
    for item in items:
        inner = item.get("personne", item) if isinstance(item, Mapping) else None
        for p in inner if isinstance(inner, list) else [inner]:
            if isinstance(p, Mapping):
                persons.append(p)
    return persons


def _person_sirens(value: Any) -> list[str]:
    found: list[str] = []
    for person in _persons(value):
        ids = person.get("numeroImmatriculation")
        for entry in ids if isinstance(ids, list) else [ids]:
            siren = valid_siren(_get(entry, "numeroIdentification")) if isinstance(entry, Mapping) else None
            if siren and siren not in found:
                found.append(siren)
    return found


# --------------------------------------------------------------------------------------------------------------
# BODACC
# --------------------------------------------------------------------------------------------------------------
@dataclass
class _Notice:
    """One BODACC record, its blocks decoded and the fields the rules read."""

    notice_id: str
    family: str
    typeavis: str
    letter: str | None
    parution: str | None
    numero: str | None
    published: date
    sirens: list[str]
    principals: list[str]
    sellers: list[str]
    fields: Mapping[str, Any]
    blocks: dict[str, Any] = field(default_factory=dict)


_BLOCKS = (
    "jugement",
    "acte",
    "modificationsgenerales",
    "radiationaurcs",
    "depot",
    "divers",
    "parutionavisprecedent",
    "listeetablissements",
)


def _flat(record: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """v2.1 flat record, v1 ``{"fields": {...}}`` or v2.0 ``{"record": {"fields": {...}}}`` -> the fields."""
    if not isinstance(record, Mapping):
        return None
    inner = record.get("record")
    if isinstance(inner, Mapping) and isinstance(inner.get("fields"), Mapping):
        return inner["fields"]
    if isinstance(record.get("fields"), Mapping):
        return record["fields"]
    return record


def _number(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    digits = re.sub(r"\D", "", text)
    return str(int(digits)) if digits else None


def _notice(record: Mapping[str, Any]) -> _Notice | None:
    fields = _flat(record)
    if fields is None:
        return None
    notice_id = _text(fields.get("id"))
    published = parse_date(fields.get("dateparution"))
    family = normalise(_text(fields.get("familleavis")) or "")
    if notice_id is None or published is None or not family:
        log.debug("bodacc record skipped: no id, date or family (%r)", notice_id)
        return None
    sirens = _registre_sirens(fields.get("registre"))
    principals = _person_sirens(fields.get("listepersonnes"))
    sellers = _person_sirens(fields.get("listeprecedentproprietaire"))
    letter = _text(fields.get("publicationavis"))
    return _Notice(
        notice_id=notice_id,
        family=family,
        typeavis=normalise(_text(fields.get("typeavis")) or "annonce"),
        letter=letter.upper() if letter else None,
        parution=_number(fields.get("parution")),
        numero=_number(fields.get("numeroannonce")),
        published=published,
        sirens=sirens,
        principals=principals,
        sellers=sellers,
        fields=fields,
        blocks={name: block(fields.get(name)) for name in _BLOCKS},
    )


def _subject(n: _Notice) -> str | None:
    """The company a notice is about: the one of ``listepersonnes`` among ``registre``'s SIRENs, else the
    first of ``registre`` that is not the seller of ``listeprecedentproprietaire``."""
    for siren in n.principals:
        if not n.sirens or siren in n.sirens:
            return siren
    return next((s for s in n.sirens if s not in n.sellers), None)


def _reference(n: _Notice) -> tuple[str | None, str | None, str | None] | None:
    """(letter, parution, numéro) of the notice an annulation or rectificatif refers to; None when unreadable."""
    ref = n.blocks.get("parutionavisprecedent")
    if isinstance(ref, list):
        ref = ref[0] if ref and isinstance(ref[0], Mapping) else None
    if not isinstance(ref, Mapping):
        return None
    lower = {normalise(str(k)): v for k, v in ref.items()}
    parution = _number(lower.get("numeroparution") or lower.get("parution"))
    numero = _number(lower.get("numeroannonce") or lower.get("numero"))
    if parution is None or numero is None:
        return None
    name = _text(lower.get("nompublication") or lower.get("publication")) or ""
    letter = name.strip()[-1:].upper() if name.strip()[-1:].upper() in ("A", "B", "C") else None
    return (letter or n.letter, parution, numero)


def _refers_to(ref: tuple[str | None, str | None, str | None], n: _Notice) -> bool:
    letter, parution, numero = ref
    return n.parution == parution and n.numero == numero and (letter is None or n.letter in (None, letter))


def _judgment(n: _Notice) -> tuple[str, str | None, str | None] | None:
    """(event_type, subtype, detail) of a collective-procedure notice."""
    jugement = n.blocks.get("jugement")
    if not isinstance(jugement, Mapping):
        return None
    nature = _text(jugement.get("nature")) or ""
    complement = _text(jugement.get("complementJugement")) or ""
    famille = _text(jugement.get("famille")) or ""
    label = normalise(nature)
    generic = (
        not label
        or any(label == normalise(g) for g in GENERIC_NATURES)
        or any(label.startswith(normalise(g)) for g in GENERIC_NATURE_PREFIXES)
    )
    texts = [complement, nature, famille] if generic else [nature, complement, famille]
    normalised = [normalise(t) for t in texts if t]
    for i, text in enumerate(normalised):
        rule = _first_rule(JUDGMENT_RULES, text)
        if rule is None:
            continue
        subtype = rule.subtype
        if subtype is None and rule.event_type in (PROCEDURE_OPENED, PLAN_ADOPTED):
            kinds = PLAN_KIND_WORDS if rule.event_type == PLAN_ADOPTED else PROCEDURE_KIND_WORDS
            others = [text, *normalised[:i], *normalised[i + 1 :]]
            subtype = next((kind for o in others for word, kind in kinds if word in o), None)
            if subtype is None and rule.event_type == PROCEDURE_OPENED:
                subtype = "other"
        detail = f"{nature}: {complement}" if generic and nature and complement else (nature or complement or None)
        return rule.event_type, subtype, detail
    return None


def _event_date(n: _Notice) -> date | None:
    """The judgment's date (None when it cannot be read), else the accounts' closing date, else the effective
    date a block gives, else the publication date."""
    jugement = n.blocks.get("jugement")
    if isinstance(jugement, Mapping) and _text(jugement.get("date")):
        return parse_date(jugement.get("date"))
    depot = n.blocks.get("depot")
    if isinstance(depot, Mapping) and _text(depot.get("dateCloture")):
        return parse_date(depot.get("dateCloture"))
    for value in (
        _get(n.blocks.get("radiationaurcs"), "radiationPP", "dateCessationActivitePP"),
        _get(n.blocks.get("acte"), "vente", "dateEffet"),
        _get(n.blocks.get("acte"), "dateImmatriculation"),
    ):
        if (parsed := parse_date(value)) is not None:
            return parsed
    return n.published


def _says_transfer(*blocks: Any) -> bool:
    return _contains_any(normalise(" ".join(_all_text(b) for b in blocks)), TRANSFER_WORDS)


class _Found(NamedTuple):
    company_id: str
    event_type: str
    subtype: str | None
    detail: str | None
    is_confidential: bool | None = None


def _classify(n: _Notice, transfers: Mapping[str, list[date]]) -> list[_Found]:
    """What one notice says, per company (empty when it says nothing the rules know)."""
    lib = _text(n.fields.get("familleavis_lib"))
    if n.family == "vente":
        acte = n.blocks.get("acte")
        if _contains_any(normalise(_all_text(acte)), NOT_A_SALE_WORDS):
            return []
        category = _text(_get(acte, "vente", "categorieVente")) or _text(_get(acte, "descriptif")) or lib
        sellers = n.sellers or ([s for s in n.sirens if s not in n.principals] if n.principals else [])
        return [_Found(s, BUSINESS_SOLD, None, category) for s in sellers]
    subject = _subject(n)
    if subject is None:
        return []
    if n.family in ("collective", "retablissement_professionnel"):
        judged = _judgment(n)
        return [_Found(subject, *judged)] if judged is not None else []
    if n.family == "conciliation":
        return [_Found(subject, CONCILIATION, None, _text(_get(n.blocks.get("jugement"), "nature")) or lib)]
    if n.family == "modification":
        descriptif = _text(_get(n.blocks.get("modificationsgenerales"), "descriptif"))
        text = normalise(descriptif or "")
        found: dict[str, _Found] = {}
        for rule in MODIFICATION_RULES:
            if rule.event_type not in found and _matches(rule, text):
                found[rule.event_type] = _Found(subject, rule.event_type, rule.subtype, descriptif or lib)
        return list(found.values())
    if n.family == "radiation":
        if any(abs((d - n.published).days) <= TRANSFER_WINDOW_DAYS for d in transfers.get(subject, ())):
            return []  # half of a transfer: the immatriculation in the new greffe carries the move
        radiation = n.blocks.get("radiationaurcs")
        detail = _text(_get(radiation, "commentaire")) or lib
        if _says_transfer(radiation, n.blocks.get("modificationsgenerales"), n.blocks.get("acte")):
            return [_Found(subject, HEAD_OFFICE_MOVE, None, detail)]
        return [_Found(subject, CLOSURE, "strike_off", detail)]
    if n.family == "immatriculation":
        if not _is_transfer_immatriculation(n):
            return []
        acte = n.blocks.get("acte")
        category = _text(_get(acte, "immatriculation", "categorieImmatriculation")) or _text(_get(acte, "descriptif"))
        return [_Found(subject, HEAD_OFFICE_MOVE, None, category or lib)]
    if n.family == "dpc":
        depot = n.blocks.get("depot")
        kind, descriptif = _text(_get(depot, "typeDepot")), _text(_get(depot, "descriptif"))
        confidential = _contains_any(normalise(descriptif or ""), CONFIDENTIAL_WORDS)
        return [_Found(subject, ACCOUNTS_FILED, kind, descriptif or kind or lib, confidential)]
    return []


def _is_transfer_immatriculation(n: _Notice) -> bool:
    return n.family == "immatriculation" and _says_transfer(
        n.blocks.get("acte"), n.blocks.get("modificationsgenerales"), n.blocks.get("divers")
    )


def _event_id(notice_id: str, found: Sequence[_Found], item: _Found) -> str:
    """The notice id; suffixed by the event type (and the company, for a sale by several sellers) only when the
    notice gives several events."""
    if len(found) == 1:
        return notice_id
    suffix = f":{item.event_type}" if len({f.event_type for f in found}) > 1 else ""
    if len({f.company_id for f in found}) > 1:
        suffix += f":{item.company_id}"
    return notice_id + suffix


def bodacc_events(records: Iterable[Mapping[str, Any]]) -> list[RiskEvent]:
    """Normalised events of a batch of BODACC records (Explore v2.1 flat records, v1 ``{"fields": {...}}`` or
    v2.0 ``{"record": {...}}``), in the batch's order; see the module docstring for the rules.

    The batch matters twice: an annulation or a rectificatif removes the notice it refers to when that notice is
    in the batch, and a radiation is a head-office move when the batch holds the SIREN's immatriculation after a
    transfer. A record that cannot be read (no id, no publication date, no valid SIREN) gives nothing.
    """
    notices = [n for n in (_notice(r) for r in records) if n is not None]
    dropped: set[int] = set()
    for i, n in enumerate(notices):
        if n.typeavis.startswith("annulation"):
            dropped.add(i)
        if n.typeavis.startswith(("annulation", "rectificatif")) and (ref := _reference(n)) is not None:
            dropped.update(j for j, other in enumerate(notices) if j != i and _refers_to(ref, other))
    kept = [n for i, n in enumerate(notices) if i not in dropped]

    transfers: dict[str, list[date]] = {}
    for n in kept:
        if _is_transfer_immatriculation(n) and (subject := _subject(n)) is not None:
            transfers.setdefault(subject, []).append(n.published)

    events: list[RiskEvent] = []
    seen_ids: set[str] = set()
    for n in kept:
        found = _classify(n, transfers)
        if not found:
            log.debug("bodacc notice %s (%s): no event", n.notice_id, n.family)
            continue
        event_date = _event_date(n)
        court = _text(n.fields.get("tribunal"))
        url = _text(n.fields.get("url_complete")) or BODACC_PERMALINK.format(id=n.notice_id)
        for item in found:
            event_id = _event_id(n.notice_id, found, item)
            if event_id in seen_ids:  # the same notice twice in a batch (overlapping pages)
                continue
            seen_ids.add(event_id)
            events.append(
                RiskEvent(
                    event_id=event_id,
                    registry=REGISTRY_FR,
                    company_id=item.company_id,
                    event_type=item.event_type,
                    event_subtype=item.subtype,
                    event_date=event_date,
                    published_date=n.published,
                    publisher=PUBLISHER_BODACC,
                    detail=item.detail,
                    is_confidential=item.is_confidential,
                    court=court,
                    source_url=url,
                )
            )
    return events


# --------------------------------------------------------------------------------------------------------------
# profiles
# --------------------------------------------------------------------------------------------------------------
def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None


def _director_label(d: Mapping[str, Any]) -> str | None:
    name = _text(d.get("denomination")) or _text(" ".join(str(d.get(k) or "") for k in ("nom", "prenoms")))
    if name is None:
        return None
    role = _text(d.get("qualite"))
    return f"{name} ({role})" if role else name


def recherche_profile(result: Mapping[str, Any], observed: date) -> CompanyProfile:
    """A ``/search`` result of API Recherche d'entreprises as a profile observed on ``observed``.

    ``directors`` is the sorted JSON list of "NOM Prénoms (qualité)" / "DENOMINATION (qualité)" (None when the
    payload has no ``dirigeants``, e.g. ``minimal=true``); the latest ``finances`` year gives accounts_year,
    revenue and net income.

    Raises:
        ValueError: the result has no valid SIREN.
    """
    siren = valid_siren(result.get("siren"))
    if siren is None:
        raise ValueError(f"Recherche d'entreprises result without a valid SIREN: {result.get('siren')!r}")
    state = _text(result.get("etat_administratif"))
    status = {"A": "active", "C": "closed"}.get(state or "", state)
    dirigeants = result.get("dirigeants")
    directors = None
    if isinstance(dirigeants, list):
        labels = {label for d in dirigeants if isinstance(d, Mapping) and (label := _director_label(d))}
        directors = json.dumps(sorted(labels), ensure_ascii=False)
    finances = result.get("finances")
    year = revenue = net_income = None
    if isinstance(finances, Mapping):
        years = [int(y) for y in finances if str(y).strip().isdigit()]
        if years:
            year = max(years)
            latest = next((v for k, v in finances.items() if str(k).strip().isdigit() and int(k) == year), None)
            if isinstance(latest, Mapping):
                revenue, net_income = _decimal(latest.get("ca")), _decimal(latest.get("resultat_net"))
    return CompanyProfile(
        registry=REGISTRY_FR,
        company_id=siren,
        publisher=PUBLISHER_RECHERCHE,
        observed_date=observed,
        company_name=_text(result.get("nom_complet")) or _text(result.get("nom_raison_sociale")),
        status=status,
        closure_date=parse_date(result.get("date_fermeture")),
        naf_code=_text(result.get("activite_principale")),
        headcount_band=_text(result.get("tranche_effectif_salarie")),
        head_office_id=_text(_get(result, "siege", "siret")),
        directors=directors,
        accounts_year=year,
        revenue=revenue,
        net_income=net_income,
    )


def company_number(value: Any) -> str:
    """A Companies House number as the register writes it: 8 characters, digits zero-padded (``6402`` ->
    ``00006402``), letters upper case (``SC123456``).

    Raises:
        ValueError: empty.
    """
    text = re.sub(r"\s", "", str(value if value is not None else "")).upper()
    if not text:
        raise ValueError("empty Companies House company number")
    return text.zfill(8) if text.isdigit() else text


def _accounts_next_due(profile: Mapping[str, Any]) -> date | None:
    accounts = profile.get("accounts")
    return parse_date(_get(accounts, "next_due")) or parse_date(_get(accounts, "next_accounts", "due_on"))


def _accounts_overdue(profile: Mapping[str, Any]) -> bool | None:
    accounts = profile.get("accounts")
    for value in (_get(accounts, "next_accounts", "overdue"), _get(accounts, "overdue")):
        if isinstance(value, bool):
            return value
    return None


def companies_house_profile(profile: Mapping[str, Any], observed: date) -> CompanyProfile:
    """A Companies House ``/company/{number}`` payload as a profile observed on ``observed``.

    Raises:
        ValueError: the payload has no company number.
    """
    sic = profile.get("sic_codes")
    made_up_to = parse_date(_get(profile.get("accounts"), "last_accounts", "made_up_to"))
    return CompanyProfile(
        registry=REGISTRY_GB,
        company_id=company_number(profile.get("company_number")),
        publisher=PUBLISHER_COMPANIES_HOUSE,
        observed_date=observed,
        company_name=_text(profile.get("company_name")),
        status=_text(profile.get("company_status")),
        closure_date=parse_date(profile.get("date_of_cessation")),
        naf_code=_text(sic[0]) if isinstance(sic, list) and sic else None,
        head_office_id=_text(_get(profile, "registered_office_address", "postal_code")),
        accounts_year=made_up_to.year if made_up_to else None,
        accounts_next_due=_accounts_next_due(profile),
        is_accounts_overdue=_accounts_overdue(profile),
    )


# --------------------------------------------------------------------------------------------------------------
# Companies House events
# --------------------------------------------------------------------------------------------------------------
def _case_dates(case: Mapping[str, Any]) -> list[tuple[str, date]]:
    dates = case.get("dates")
    out = []
    for d in dates if isinstance(dates, list) else []:
        if isinstance(d, Mapping) and (parsed := parse_date(d.get("date"))) is not None:
            out.append((_text(d.get("type")) or "", parsed))
    return sorted(out, key=lambda t: t[1])


def _practitioners(case: Mapping[str, Any]) -> str | None:
    names = []
    practitioners = case.get("practitioners")
    for p in practitioners if isinstance(practitioners, list) else []:
        if not isinstance(p, Mapping) or not (name := _text(p.get("name"))):
            continue
        address = p.get("address")
        where = ", ".join(t for k in ("address_line_1", "locality", "postal_code") if (t := _text(_get(address, k))))
        names.append(f"{name} ({where})" if where else name)
    return "; ".join(names) or None


def _handed_over(ended: date, case_index: int, starts: Mapping[int, tuple[date | None, str]]) -> bool:
    """A case ending when another (insolvent) case of the company starts, or within :data:`HANDOVER_DAYS` of it:
    the company went from one procedure to the next (administration -> creditors' voluntary liquidation)."""
    own_start = starts[case_index][0]
    return own_start is not None and any(
        j != case_index
        and other is not None
        and other >= own_start
        and abs((other - ended).days) <= HANDOVER_DAYS
        and case_type not in SOLVENT_CASE_TYPES
        for j, (other, case_type) in starts.items()
    )


def _insolvency_events(number: str, insolvency: Mapping[str, Any], observed: date) -> list[RiskEvent]:
    raw_cases = insolvency.get("cases")
    cases = [c for c in raw_cases if isinstance(c, Mapping)] if isinstance(raw_cases, list) else []
    starts: dict[int, tuple[date | None, str]] = {}
    for i, case in enumerate(cases):
        dates = _case_dates(case)
        starts[i] = (dates[0][1] if dates else None, _text(case.get("type")) or "unknown")

    def event(event_id: str, kind: str, subtype: str | None, when: date | None, detail: str) -> RiskEvent:
        return RiskEvent(
            event_id=event_id,
            registry=REGISTRY_GB,
            company_id=number,
            event_type=kind,
            event_subtype=subtype,
            event_date=when,
            published_date=when or observed,
            publisher=PUBLISHER_COMPANIES_HOUSE,
            detail=detail,
        )

    events: list[RiskEvent] = []
    for i, case in enumerate(cases):
        start, case_type = starts[i]
        base = f"companies_house:{number}:insolvency:{_text(case.get('number')) or i + 1}"
        kind, subtype = SOLVENT_CASE_TYPES.get(case_type, (PROCEDURE_OPENED, case_type))
        label = case_type.replace("-", " ").capitalize()
        practitioners = _practitioners(case)
        detail = f"{label}; practitioner: {practitioners}" if practitioners else label
        events.append(event(base, kind, subtype, start, detail))
        if kind != PROCEDURE_OPENED:
            continue
        for date_type, ended in _case_dates(case):
            if date_type in CASE_END_DATE_TYPES and ended <= observed and not _handed_over(ended, i, starts):
                detail = f"{label}: {date_type.replace('-', ' ')} {ended.isoformat()}"
                events.append(event(f"{base}:{date_type}", PROCEDURE_CLOSED, "other", ended, detail))
    return events


def _officer_items(officers: Any) -> list[Mapping[str, Any]]:
    if isinstance(officers, Mapping):
        officers = officers.get("items")
    return [o for o in officers or [] if isinstance(o, Mapping)]


def _is_director(role: str) -> bool:
    return role in DIRECTOR_ROLES or role.startswith(("llp-", "corporate-llp-"))


def _director_events(number: str, officers: Any, created: date | None, observed: date) -> list[RiskEvent]:
    changes: dict[date, list[str]] = {}
    for officer in _officer_items(officers):
        if not _is_director(_text(officer.get("officer_role")) or ""):
            continue
        name = _text(officer.get("name")) or "unnamed officer"
        for key, verb in (("appointed_on", "appointed"), ("resigned_on", "resigned")):
            when = parse_date(officer.get(key))
            if when is None or when > observed or (verb == "appointed" and when == created):
                continue
            changes.setdefault(when, []).append(f"{verb}: {name}")
    return [
        RiskEvent(
            event_id=f"companies_house:{number}:director_change:{when.isoformat()}",
            registry=REGISTRY_GB,
            company_id=number,
            event_type=DIRECTOR_CHANGE,
            event_subtype=None,
            event_date=when,
            published_date=when,
            publisher=PUBLISHER_COMPANIES_HOUSE,
            detail="; ".join(sorted(what)),
        )
        for when, what in sorted(changes.items())
    ]


def companies_house_events(
    number: str | int,
    profile: Mapping[str, Any] | None,
    insolvency: Mapping[str, Any] | None,
    officers: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None,
    observed: date,
) -> list[RiskEvent]:
    """Events of one UK company from its profile, insolvency record and officers (any of them may be None).

    * each insolvency case -> ``procedure_opened`` (subtype the case type) on its earliest date; a
      members' voluntary liquidation (solvent) -> ``closure`` / dissolution; a case end date
      (:data:`CASE_END_DATE_TYPES`) -> ``procedure_closed``, unless another case starts within
      :data:`HANDOVER_DAYS` (administration handed over to a liquidation);
    * accounts overdue -> ``accounts_overdue`` dated the due date, public the day after;
    * a dissolved / removed / closed company -> ``closure``;
    * each day a director (not a secretary) was appointed or resigned -> one ``director_change`` (appointments on
      the incorporation date are no change).

    Ids are stable: the same payloads give the same ids (``companies_house:<number>:<what>:<key>``).
    """
    number = company_number(number)
    events: list[RiskEvent] = []
    created = parse_date(profile.get("date_of_creation")) if profile else None
    if insolvency:
        events += _insolvency_events(number, insolvency, observed)
    if profile:
        if _accounts_overdue(profile):
            due = _accounts_next_due(profile)
            events.append(
                RiskEvent(
                    event_id=f"companies_house:{number}:accounts_overdue:{(due or observed).isoformat()}",
                    registry=REGISTRY_GB,
                    company_id=number,
                    event_type=ACCOUNTS_OVERDUE,
                    event_subtype=None,
                    event_date=due,
                    published_date=due + timedelta(days=1) if due else observed,
                    publisher=PUBLISHER_COMPANIES_HOUSE,
                    detail=f"accounts due {due.isoformat()} not filed" if due else "accounts overdue",
                )
            )
        status = _text(profile.get("company_status")) or ""
        if status in CH_CLOSED_STATUSES:
            ceased = parse_date(profile.get("date_of_cessation"))
            events.append(
                RiskEvent(
                    event_id=f"companies_house:{number}:closure:{ceased.isoformat() if ceased else status}",
                    registry=REGISTRY_GB,
                    company_id=number,
                    event_type=CLOSURE,
                    event_subtype=CH_CLOSED_STATUSES[status],
                    event_date=ceased,
                    published_date=ceased or observed,
                    publisher=PUBLISHER_COMPANIES_HOUSE,
                    detail=f"company status {status}",
                )
            )
    if officers:
        events += _director_events(number, officers, created, observed)
    return events


# --------------------------------------------------------------------------------------------------------------
# snapshot differences
# --------------------------------------------------------------------------------------------------------------
def _directors(value: str | None) -> set[str] | None:
    if value is None:
        return None
    try:
        decoded = json.loads(value)
    except ValueError:
        return None
    return {str(d) for d in decoded} if isinstance(decoded, list) else None


def _short(items: Iterable[str], limit: int = 6) -> str:
    items = sorted(items)
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def profile_events(previous: CompanyProfile | None, current: CompanyProfile) -> list[RiskEvent]:
    """What changed between two snapshots of one company from one publisher, published the day relance saw it
    (``current.observed_date``): the directors (``director_change``), the head office (``head_office_move``), the
    status becoming closed (``closure``, dated the closure date). No previous snapshot: no event (a first look
    is not a change); an unknown value (None) on either side is no change either; a ``previous`` observed after
    ``current`` (a backfill) gives no event.

    Raises:
        ValueError: the snapshots are of different companies or publishers.
    """
    if previous is None:
        return []
    if (previous.registry, previous.company_id, previous.publisher) != (
        current.registry,
        current.company_id,
        current.publisher,
    ):
        raise ValueError(
            f"profile_events compares one company from one publisher: got {previous.profile_id} and "
            f"{current.profile_id}"
        )
    if previous.observed_date > current.observed_date:  # a backfill looking at an older day: nothing new then
        log.debug("profile_events: %s is later than %s: no event", previous.profile_id, current.profile_id)
        return []
    prefix = f"{current.publisher}:{current.company_id}"
    seen = current.observed_date
    since = f"between {previous.observed_date.isoformat()} and {seen.isoformat()}"

    def event(kind: str, key: str, subtype: str | None, when: date | None, detail: str) -> RiskEvent:
        return RiskEvent(
            event_id=f"{prefix}:{kind}:{key}",
            registry=current.registry,
            company_id=current.company_id,
            event_type=kind,
            event_subtype=subtype,
            event_date=when,
            published_date=seen,
            publisher=current.publisher,
            detail=detail,
        )

    events: list[RiskEvent] = []
    before, after = _directors(previous.directors), _directors(current.directors)
    if before is not None and after is not None and before != after:
        parts = [f"joined: {_short(after - before)}" if after - before else "", ""]
        parts[1] = f"left: {_short(before - after)}" if before - after else ""
        detail = "; ".join(p for p in parts if p) + f" ({since})"
        events.append(event(DIRECTOR_CHANGE, seen.isoformat(), None, None, detail))
    if previous.head_office_id and current.head_office_id and previous.head_office_id != current.head_office_id:
        detail = f"{previous.head_office_id} -> {current.head_office_id} ({since})"
        events.append(event(HEAD_OFFICE_MOVE, seen.isoformat(), None, None, detail))
    was_closed = (previous.status or "") in CLOSED_STATUSES
    if not was_closed and (current.status or "") in CLOSED_STATUSES:
        when = current.closure_date
        subtype = CH_CLOSED_STATUSES.get(current.status or "", "ceased")
        key = when.isoformat() if when else (current.status or "closed")
        events.append(event(CLOSURE, key, subtype, when, f"status {previous.status} -> {current.status} ({since})"))
    return events
