"""Talking points a negotiator reads before dialling: what is owed and since when, the history, why, the risk events,
and what to ask for, in that order, from tiny rows."""

from __future__ import annotations

import json

import pandas as pd

from relance.reminders.talking_points import MAX_INVOICES, build_talking_points

NNBSP = "\u202f"  # format_amount groups thousands with a narrow no-break space


def _plan(**over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "customer_id": "C42",
        "customer_name": "ACME SA",
        "open_amount": 12345.67,
        "currency": "EUR",
        "statement": json.dumps(
            [
                {
                    "invoice_id": "F-2",
                    "due_date": "2026-10-15",
                    "amount": 8345.67,
                    "open_amount": 8345.67,
                    "days_overdue": 17,
                },
                {
                    "invoice_id": "F-1",
                    "due_date": "2026-08-15",
                    "amount": 5000,
                    "open_amount": 4000,
                    "days_overdue": 78,
                },
            ]
        ),  # fmt: skip
        "reasons": json.dumps(["broken promise: escalate"]),
        "reason_1": "Customer paid 3 past invoices late",
        "reason_2": None,
        "reason_3": float("nan"),
        "risk_grade": "D",
        "predicted_payment_date": "2026-12-02",
    }
    row.update(over)
    return row


def _contact(**over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "last_contact_at": pd.Timestamp("2026-10-20 09:00"),
        "last_contact_channel": "email",
        "contacts_last_7d": 1,
        "promise_made_at": pd.Timestamp("2026-10-01 10:00"),
        "promise_date": "2026-10-10",
        "promise_amount": 2000,
        "promise_source": "call",
        "promise_status": "broken",
        "broken_promise_count": 1,
        "has_open_dispute": False,
        "last_payment_date": "2026-09-05",
        "is_partial_payment_since_last_contact": False,
        "last_call_outcome": "voicemail",
        "last_call_at": pd.Timestamp("2026-10-01 10:00"),
        "bounced_channels": None,
    }
    row.update(over)
    return row


def _position(text: str, fragment: str) -> int:
    assert fragment in text, f"{fragment!r} not in:\n{text}"
    return text.index(fragment)


def test_sections_come_in_the_order_of_a_call() -> None:
    event = {"event_id": "e1", "event_type": "director_change", "published_date": "2026-10-03", "publisher": "bodacc"}
    text = build_talking_points(_plan(), _contact(), [event])
    order = [
        _position(text, f"Dû : 12{NNBSP}345,67"),
        _position(text, "Historique :"),
        _position(text, "Pourquoi cet appel :"),
        _position(text, "Événements légaux :"),
        _position(text, "À demander :"),
    ]
    assert order == sorted(order)
    assert text.splitlines()[0] == "ACME SA (C42)"


def test_what_is_owed_says_since_when_and_lists_the_most_overdue_invoice_first() -> None:
    text = build_talking_points(_plan(), None, [])
    assert "sur 2 factures, échu depuis le 15/08/2026 (78 jours de retard)" in text
    assert _position(text, "Facture F-1") < _position(text, "Facture F-2")
    assert f"Facture F-1 : 4{NNBSP}000,00\u00a0€ restant sur 5{NNBSP}000,00\u00a0€, échue le 15/08/2026" in text


def test_a_long_statement_is_cut_and_counted() -> None:
    lines = [
        {"invoice_id": f"F-{i}", "due_date": "2026-09-01", "open_amount": 10, "days_overdue": 60 - i}
        for i in range(MAX_INVOICES + 3)
    ]
    text = build_talking_points(_plan(statement=json.dumps(lines)), None, [])
    assert f"Facture F-{MAX_INVOICES - 1} " in text and f"Facture F-{MAX_INVOICES} " not in text
    assert "et 3 autre(s) facture(s)" in text


def test_history_gives_the_last_contact_the_call_and_the_broken_promise() -> None:
    text = build_talking_points(_plan(), _contact(), [])
    assert "Dernier contact le 20/10/2026 (e-mail)" in text
    assert "Dernier appel le 01/10/2026 : messagerie." in text
    assert (
        f"Promesse du 01/10/2026 (au téléphone) de régler 2{NNBSP}000,00\u00a0€ avant le 10/10/2026 : NON TENUE."
        in text
    )
    assert "1 promesse(s) non tenue(s)" in text


def test_a_customer_never_contacted_says_so_and_unknown_facts_are_left_out() -> None:
    text = build_talking_points(_plan(risk_grade=None, predicted_payment_date=pd.NaT, reasons=None), None, [])
    assert "Aucun contact enregistré" in text
    assert "Note de risque" not in text and "paiement prévu" not in text
    assert "Événements légaux" not in text
    assert "None" not in text and "nan" not in text.lower()


def test_why_shows_engine_and_model_reasons_and_the_grade() -> None:
    text = build_talking_points(_plan(), None, [])
    assert "Sélectionné : broken promise: escalate." in text
    assert "Facteurs de retard (modèle) : Customer paid 3 past invoices late." in text  # null / NaN reasons skipped
    assert "Note de risque D, paiement prévu vers le 02/12/2026." in text


def test_the_ask_follows_the_situation() -> None:
    broken = build_talking_points(_plan(), _contact(), [])
    assert "Rappeler la promesse non tenue du 10/10/2026" in broken

    dispute = build_talking_points(_plan(), _contact(promise_status=None, has_open_dispute=True), [])
    assert "Faire préciser le litige" in dispute and "Rappeler la promesse" not in dispute

    partial = build_talking_points(
        _plan(), _contact(promise_status=None, is_partial_payment_since_last_contact=True), []
    )
    assert "paiement partiel" in partial.split("À demander :")[1]

    plain = build_talking_points(_plan(), _contact(promise_status=None), [])
    assert f"Obtenir le règlement de 12{NNBSP}345,67\u00a0€, ou à défaut une date et un montant fermes" in plain

    wrong = build_talking_points(_plan(), _contact(last_call_outcome="wrong_contact"), [])
    assert "Dernier appel le 01/10/2026 : mauvais contact." in wrong
    assert "demander le bon interlocuteur" in wrong

    repeat = build_talking_points(_plan(), _contact(broken_promise_count=3), [])
    assert "proposer un échéancier écrit" in repeat


def test_an_open_collective_procedure_means_no_demand_for_payment() -> None:
    opened = {"event_id": "e1", "event_type": "procedure_opened", "event_subtype": "redressement",
              "published_date": "2026-10-02", "publisher": "bodacc", "detail": "Jugement d'ouverture."}  # fmt: skip
    text = build_talking_points(_plan(), _contact(), [opened])
    ask = text.split("À demander :")[1]
    assert "Ne pas réclamer le paiement" in ask and "Rappeler la promesse" not in ask
    assert "- Ouverture d'une procédure collective (redressement), publié le 02/10/2026 (bodacc)" in text

    closed = {"event_id": "e2", "event_type": "procedure_closed", "published_date": "2026-10-20"}
    reopened_then_closed = build_talking_points(_plan(), _contact(), [opened, closed])
    assert "Ne pas réclamer" not in reopened_then_closed
    # most recent event first
    assert _position(reopened_then_closed, "Clôture") < _position(reopened_then_closed, "Ouverture")
