"""Talking points: the short French text a negotiator reads before dialling a customer of the call list.

:func:`build_talking_points` turns one planned call (a row of the engine's plan), the customer's contact state
(``serving.customer_contact_state``) and its company events (``serving.customer_risk_events``) into a few lines, in
the order a call goes:

1. **Dû** -- what is owed and since when: the total, how many invoices, the oldest due date and its days overdue,
   then the invoices themselves (the most overdue first; the rest counted);
2. **Historique** -- the last contact and the last call with its outcome, the current or last promise (kept,
   broken, running), the broken promises of the year, the last payment, a partial payment since the last contact,
   an open dispute, channels that bounced;
3. **Pourquoi** -- why the engine flagged the customer (its reasons), the model's three reasons, the risk grade and
   the predicted payment date;
4. **Risques** -- the most recent company events (procedure, director change, closure...);
5. **À demander** -- what to ask for, from all of the above: settle or explain the dispute first, the broken promise
   and a firm date, the balance after a partial payment, or the whole amount (or a firm date and amount).

Missing facts leave their sentence out (a customer never contacted has no history line, an unknown date is not
printed). Money and dates use the email channel's formatters (``1 234,56 €``, ``31/03/2026``). Pure: no database,
no clock (days overdue come from the statement).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import pandas as pd

from relance.channels.email import format_amount, format_date
from relance.reminders.calls import OUTCOME_LABELS_FR

#: Invoices listed by name; the others are counted.
MAX_INVOICES = 5
#: Company events shown, most recent first.
MAX_EVENTS = 3

CHANNEL_LABELS_FR: dict[str, str] = {"email": "e-mail", "sms": "SMS", "letter": "courrier", "call": "appel"}
EVENT_LABELS_FR: dict[str, str] = {
    "procedure_opened": "Ouverture d'une procédure collective",
    "procedure_converted": "Conversion en liquidation judiciaire",
    "plan_adopted": "Plan de sauvegarde / redressement adopté",
    "procedure_closed": "Clôture de la procédure collective",
    "procedure_other": "Jugement (procédure collective)",
    "conciliation": "Procédure de conciliation",
    "director_change": "Changement de dirigeant",
    "head_office_move": "Transfert du siège social",
    "accounts_filed": "Comptes annuels déposés",
    "accounts_overdue": "Comptes annuels en retard de dépôt",
    "closure": "Fermeture / radiation",
    "business_sold": "Cession du fonds de commerce",
}
#: Event types meaning the debtor is (or stays) in a collective procedure: no demand for payment, a claim.
_PROCEDURE_TYPES = frozenset({"procedure_opened", "procedure_converted", "plan_adopted"})


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _get(row: Mapping[str, Any] | None, key: str) -> Any:
    if row is None:
        return None
    value = row.get(key)
    return None if _missing(value) else value


def _as_date(value: Any) -> date | None:
    if _missing(value):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return pd.Timestamp(value).date()
    except (TypeError, ValueError):
        return None


def _as_int(value: Any) -> int | None:
    if _missing(value):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _as_bool(value: Any) -> bool:
    if _missing(value):
        return False
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "oui")
    return bool(value)


def _json_list(value: Any) -> list[Any]:
    """A JSON list column (the plan's ``statement``, ``reasons``), as a list; a list passes through."""
    if isinstance(value, list | tuple):
        return list(value)
    if _missing(value):
        return []
    try:
        parsed = json.loads(str(value))
    except ValueError:
        return [str(value)]
    return parsed if isinstance(parsed, list) else [parsed]


def _money(amount: Any, currency: str) -> str | None:
    if _missing(amount):
        return None
    try:
        return format_amount(amount, currency)
    except (TypeError, ValueError):
        return None


def _days(n: int) -> str:
    return f"{n} jour" + ("s" if abs(n) > 1 else "")


def _owed(plan_row: Mapping[str, Any], lines: list[dict[str, Any]], currency: str) -> list[str]:
    total = _money(_get(plan_row, "open_amount"), currency)
    if total is None:
        total = _money(sum(float(line.get("open_amount") or 0) for line in lines), currency) if lines else None
    overdue = [line for line in lines if (_as_int(line.get("days_overdue")) or 0) > 0]
    count = len(lines)
    head = f"Dû : {total}" if total else "Dû : montant inconnu"
    if count:
        head += f" sur {count} facture" + ("s" if count > 1 else "")
    oldest = max(overdue, key=lambda line: _as_int(line.get("days_overdue")) or 0, default=None)
    if oldest is not None:
        since = format_date(_as_date(oldest.get("due_date")))
        days = _as_int(oldest.get("days_overdue")) or 0
        head += f", échu depuis le {since} ({_days(days)} de retard)" if since else f", {_days(days)} de retard"
    elif count:
        nxt = min((d for d in (_as_date(line.get("due_date")) for line in lines) if d), default=None)
        if nxt is not None:
            head += f", rien d'échu (prochaine échéance le {format_date(nxt)})"
    else:
        due = format_date(_as_date(_get(plan_row, "due_date")))
        days = _as_int(_get(plan_row, "days_overdue"))
        if due and days is not None and days > 0:
            head += f", échu depuis le {due} ({_days(days)} de retard)"
    out = [head + "."]
    ordered = sorted(lines, key=lambda line: -(_as_int(line.get("days_overdue")) or 0))
    for line in ordered[:MAX_INVOICES]:
        amount = _money(line.get("open_amount"), currency) or "?"
        full = _money(line.get("amount"), currency)
        text = f"- Facture {line.get('invoice_id')} : {amount}"
        if full and full != amount:
            text += f" restant sur {full}"
        due = format_date(_as_date(line.get("due_date")))
        days = _as_int(line.get("days_overdue"))
        if due and days is not None and days > 0:
            text += f", échue le {due} ({_days(days)})"
        elif due:
            text += f", échéance le {due}"
        out.append(text)
    if len(ordered) > MAX_INVOICES:
        out.append(f"- ... et {len(ordered) - MAX_INVOICES} autre(s) facture(s)")
    return out


def _promise_text(contact: Mapping[str, Any], currency: str) -> str | None:
    status = _get(contact, "promise_status")
    promised = format_date(_as_date(_get(contact, "promise_date")))
    if status is None or promised is None:
        return None
    made = format_date(_as_date(_get(contact, "promise_made_at")))
    amount = _money(_get(contact, "promise_amount"), currency) or "le solde"
    source = {"call": " (au téléphone)", "reminder": " (en réponse à une relance)"}.get(
        str(_get(contact, "promise_source")), ""
    )
    what = f"promesse{' du ' + made if made else ''}{source} de régler {amount} avant le {promised}"
    verdict = {"kept": "tenue", "broken": "NON TENUE", "active": "en cours"}.get(str(status), str(status))
    return f"{what[0].upper()}{what[1:]} : {verdict}."


def _history(contact: Mapping[str, Any] | None, currency: str) -> list[str]:
    if contact is None:
        return ["Aucun contact enregistré avec ce client."]
    out: list[str] = []
    last_at = format_date(_as_date(_get(contact, "last_contact_at")))
    if last_at:
        channel = _get(contact, "last_contact_channel")
        label = CHANNEL_LABELS_FR.get(str(channel), str(channel)) if channel else None
        recent = _as_int(_get(contact, "contacts_last_7d"))
        text = f"Dernier contact le {last_at}" + (f" ({label})" if label else "")
        if recent:
            text += f", {recent} contact(s) ces 7 derniers jours"
        out.append(text + ".")
    else:
        out.append("Aucun contact enregistré avec ce client.")
    call_at = format_date(_as_date(_get(contact, "last_call_at")))
    outcome = _get(contact, "last_call_outcome")
    if call_at and outcome:
        out.append(f"Dernier appel le {call_at} : {OUTCOME_LABELS_FR.get(str(outcome), str(outcome))}.")
    promise = _promise_text(contact, currency)
    if promise:
        out.append(promise)
    broken = _as_int(_get(contact, "broken_promise_count"))
    if broken:
        out.append(f"{broken} promesse(s) non tenue(s) sur les 12 derniers mois.")
    paid = format_date(_as_date(_get(contact, "last_payment_date")))
    if paid:
        out.append(f"Dernier paiement reçu le {paid}.")
    if _as_bool(_get(contact, "is_partial_payment_since_last_contact")):
        out.append("Paiement partiel reçu depuis le dernier contact.")
    if _as_bool(_get(contact, "has_open_dispute")):
        out.append("Litige ouvert sur au moins une facture.")
    bounced = _get(contact, "bounced_channels")
    if bounced:
        labels = ", ".join(CHANNEL_LABELS_FR.get(c.strip(), c.strip()) for c in str(bounced).split(",") if c.strip())
        out.append(f"Coordonnées en échec : {labels} (vérifier l'adresse / le numéro).")
    return out


def _why(plan_row: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    reasons = [str(r) for r in _json_list(_get(plan_row, "reasons")) if not _missing(r)]
    if reasons:
        out.append("Sélectionné : " + " ; ".join(reasons) + ".")
    model = [str(_get(plan_row, f"reason_{i}")) for i in (1, 2, 3) if _get(plan_row, f"reason_{i}") is not None]
    if model:
        out.append("Facteurs de retard (modèle) : " + " ; ".join(model) + ".")
    grade = _get(plan_row, "risk_grade")
    predicted = format_date(_as_date(_get(plan_row, "predicted_payment_date")))
    facts = []
    if grade is not None:
        facts.append(f"note de risque {grade}")
    if predicted:
        facts.append(f"paiement prévu vers le {predicted}")
    if facts:
        text = ", ".join(facts)
        out.append(text[0].upper() + text[1:] + ".")
    return out


def _events(risk_events: Sequence[Mapping[str, Any]]) -> list[str]:
    dated = sorted(
        risk_events,
        key=lambda e: (_as_date(e.get("published_date")) or date.min, str(e.get("event_id") or "")),
        reverse=True,
    )
    out = []
    for event in dated[:MAX_EVENTS]:
        kind = str(event.get("event_type") or "")
        label = EVENT_LABELS_FR.get(kind, kind or "Événement")
        subtype = _get(event, "event_subtype")
        if subtype and kind in _PROCEDURE_TYPES | {"procedure_closed", "closure"}:
            label += f" ({subtype})"
        published = format_date(_as_date(event.get("published_date")))
        source = _get(event, "publisher")
        text = f"- {label}" + (f", publié le {published}" if published else "") + (f" ({source})" if source else "")
        detail = _get(event, "detail")
        if detail:
            text += f" : {str(detail).strip().rstrip('.')}"
        out.append(text + ".")
    if len(dated) > MAX_EVENTS:
        out.append(f"- ... et {len(dated) - MAX_EVENTS} autre(s) événement(s).")
    return out


def _in_procedure(risk_events: Sequence[Mapping[str, Any]]) -> bool:
    """The latest procedure-changing event opens (or keeps open) a procedure."""
    changes = [e for e in risk_events if e.get("event_type") in _PROCEDURE_TYPES | {"procedure_closed"}]
    if not changes:
        return False
    latest = max(changes, key=lambda e: (_as_date(e.get("published_date")) or date.min, str(e.get("event_id") or "")))
    return latest.get("event_type") in _PROCEDURE_TYPES


def _ask(
    plan_row: Mapping[str, Any],
    contact: Mapping[str, Any] | None,
    risk_events: Sequence[Mapping[str, Any]],
    currency: str,
) -> list[str]:
    total = _money(_get(plan_row, "open_amount"), currency) or "le solde"
    if _in_procedure(risk_events):
        return [
            "Ne pas réclamer le paiement : le client est en procédure collective. Vérifier la déclaration de "
            "créance auprès du mandataire."
        ]
    out: list[str] = []
    last_outcome = _get(contact, "last_call_outcome")
    if last_outcome == "wrong_contact":
        out.append("Le dernier appel est tombé sur un mauvais contact : demander le bon interlocuteur comptable.")
    if _as_bool(_get(contact, "has_open_dispute")):
        out.append(
            "Faire préciser le litige (facture, motif, justificatifs) et obtenir le règlement des factures non "
            "contestées."
        )
    status = _get(contact, "promise_status")
    if status == "broken":
        promised = format_date(_as_date(_get(contact, "promise_date")))
        out.append(
            f"Rappeler la promesse non tenue{' du ' + promised if promised else ''} : obtenir le règlement de "
            f"{total} sous 48 h, ou une date et un montant fermes confirmés par écrit."
        )
    elif status == "active":
        promised = format_date(_as_date(_get(contact, "promise_date")))
        until = f" jusqu'au {promised}" if promised else ""
        out.append(f"Une promesse court{until} : la faire confirmer.")
    elif _as_bool(_get(contact, "is_partial_payment_since_last_contact")):
        out.append(f"Remercier pour le paiement partiel et obtenir une date pour le solde de {total}.")
    else:
        out.append(f"Obtenir le règlement de {total}, ou à défaut une date et un montant fermes (promesse).")
    broken = _as_int(_get(contact, "broken_promise_count")) or 0
    if broken >= 2:
        out.append(
            "Après plusieurs promesses non tenues : proposer un échéancier écrit, sinon annoncer la mise en demeure."
        )
    return out


def build_talking_points(
    plan_row: Mapping[str, Any], contact: Mapping[str, Any] | None, risk_events: Sequence[Mapping[str, Any]]
) -> str:
    """The talking points of one planned call, as plain French text (sections in the order a call goes; see the
    module docstring). ``plan_row``: a row of the engine's plan (``customer_name``, ``open_amount`` = total due,
    ``currency``, ``statement`` and ``reasons`` as JSON lists, ``reason_1..3``, ``risk_grade``,
    ``predicted_payment_date``); ``contact``: the customer's ``serving.customer_contact_state`` row, or None;
    ``risk_events``: its ``serving.customer_risk_events`` rows."""
    currency = str(_get(plan_row, "currency") or "EUR")
    customer_id = _get(plan_row, "customer_id")
    name = _get(plan_row, "customer_name") or customer_id or "Client"
    if customer_id is not None and name != customer_id:
        name = f"{name} ({customer_id})"
    lines = [d for d in _json_list(_get(plan_row, "statement")) if isinstance(d, Mapping)]
    sections: list[tuple[str, list[str]]] = [
        ("", [f"{name}", *_owed(plan_row, lines, currency)]),
        ("Historique", _history(contact, currency)),
        ("Pourquoi cet appel", _why(plan_row)),
        ("Événements légaux", _events(risk_events)),
        ("À demander", _ask(plan_row, contact, risk_events, currency)),
    ]
    out: list[str] = []
    for title, body in sections:
        if not body:
            continue
        if title:
            out.append(f"{title} :")
        out += body
    return "\n".join(out)
