"""Alerts to finance from company-risk data and payment behaviour: each raised once, sent in one digest email.

Four kinds (``alert_type``), each with a key that is a pure function of what it is about, so a rerun, tomorrow's
run or a backfill never raises it twice (``ops.risk_alerts`` keeps the first):

* ``insolvency_notice``: a debtor is in an open collective procedure. Key: the opening event and the customer.
* ``claim_deadline``: a claim (déclaration de créance) not declared is due within ``claim_alert_days`` days (or
  is overdue). Key: the claim.
* ``director_change``, ``head_office_move``, ``closure``, ``conciliation``, ``business_sold``: early warnings
  published within ``warning_window_days`` of the run's date (older history imported on a first load would only
  be noise). Key: the event and the customer.
* ``payer_degrading``: a reliable payer whose recent delays depart from its own history, or whose risk grade fell
  (``serving.payer_degradation``, thresholds tested there). Key: the customer and the month: at most one alert per
  customer per month while it lasts.

The text is French, like the finance report it sits in.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import pandas as pd
from sendgrid.helpers.mail import Category, Content, CustomArg, From, Mail, MimeType, Subject, To

from relance.channels.email import format_amount, format_date
from relance.risk.events import WARNING_TYPES

ALERT_TYPES: tuple[str, ...] = ("insolvency_notice", "claim_deadline", *sorted(WARNING_TYPES), "payer_degrading")

_WARNING_TITLES: dict[str, str] = {
    "director_change": "Changement de dirigeant",
    "head_office_move": "Transfert du siège social",
    "closure": "Fermeture / radiation",
    "conciliation": "Procédure de conciliation",
    "business_sold": "Cession du fonds de commerce",
}
_PROCEDURES: dict[str, str] = {
    "sauvegarde": "sauvegarde",
    "redressement": "redressement judiciaire",
    "liquidation": "liquidation judiciaire",
}


def _d(value: Any) -> date | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return pd.Timestamp(value).date()


def _fr(value: Any) -> str:
    return format_date(value) or "date inconnue"


def _money(amount: Any, currency: Any) -> str:
    """The email channel's money format (``1 200,50 €``); a missing amount reads 0."""
    return format_amount(0 if amount is None or pd.isna(amount) else amount, str(currency or ""))


def _alert(kind: str, key: str, row: dict[str, Any], title: str, detail: str, due: date | None) -> dict[str, Any]:
    return {
        "alert_key": f"{kind}:{key}",
        "alert_type": kind,
        "customer_id": str(row.get("customer_id")),
        "customer_name": row.get("customer_name"),
        "company_id": row.get("company_id"),
        "event_id": row.get("event_id") or row.get("procedure_event_id"),
        "title": title,
        "detail": detail,
        "due_date": due,
    }


def build_alerts(
    *,
    status: pd.DataFrame,
    claims: pd.DataFrame,
    degradation: pd.DataFrame,
    events: pd.DataFrame,
    as_of_date: date,
    claim_alert_days: int,
    warning_window_days: int = 90,
) -> pd.DataFrame:
    """Every alert that holds on ``as_of_date`` (new or not: :func:`relance.ops.record_alerts` keeps the new ones).

    ``status``: ``serving.customer_risk_status`` with ``customer_name``; ``claims``: ``serving.claim_declarations``;
    ``degradation``: ``serving.payer_degradation``; ``events``: ``serving.customer_risk_events`` (events matched to
    customers). Columns are read by name; extra columns are ignored.
    """
    out: list[dict[str, Any]] = []
    for row in status.to_dict("records"):
        if not bool(row.get("has_open_procedure")):
            continue
        kind = _PROCEDURES.get(str(row.get("procedure_kind")), "procédure collective")
        deadline = _d(row.get("claim_deadline_date"))
        declare = (
            f"Déclaration de créance au mandataire avant le {_fr(deadline)}."
            if deadline is None or deadline >= as_of_date
            else f"Délai de déclaration de créance dépassé depuis le {_fr(deadline)} : relevé de forclusion à "
            "demander au juge-commissaire (L622-26)."
        )
        detail = (
            f"Jugement du {_fr(row.get('judgment_date'))} ({row.get('court') or 'tribunal non précisé'}), publié le "
            f"{_fr(row.get('procedure_published_date'))}. Relances arrêtées. {declare}"
        )
        if row.get("source_url"):
            detail += f" Avis : {row['source_url']}"
        out.append(
            _alert(
                "insolvency_notice",
                f"{row.get('procedure_event_id')}:{row.get('customer_id')}",
                row,
                f"Procédure collective : {row.get('customer_name') or row.get('customer_id')} ({kind})",
                detail,
                deadline,
            )
        )
    for row in claims.to_dict("records"):
        days = row.get("days_to_deadline")
        if row.get("status") != "to_declare" or days is None or pd.isna(days) or int(days) > claim_alert_days:
            continue
        detail = (
            f"Déclarer avant le {_fr(row.get('deadline_date'))} ({int(days)} jours) : "
            f"{_money(row.get('amount_due'), row.get('currency'))} échus et "
            f"{_money(row.get('amount_not_yet_due'), row.get('currency'))} à échoir, "
            f"{int(row.get('invoice_count') or 0)} facture(s), {row.get('court') or 'tribunal non précisé'}."
        )
        out.append(
            _alert(
                "claim_deadline",
                str(row.get("claim_id")),
                row,
                f"Déclaration de créance dans {int(days)} jours : {row.get('customer_name') or row.get('customer_id')}",
                detail,
                _d(row.get("deadline_date")),
            )
        )
    for row in events.to_dict("records"):
        kind = str(row.get("event_type"))
        published = _d(row.get("published_date"))
        if kind not in WARNING_TYPES or published is None or (as_of_date - published).days > warning_window_days:
            continue
        if published > as_of_date:
            continue
        label = str(row.get("detail") or kind).strip().rstrip(".")
        detail = f"Publié le {_fr(published)} ({row.get('publisher')}) : {label}."
        if row.get("source_url"):
            detail += f" Avis : {row['source_url']}"
        out.append(
            _alert(
                kind,
                f"{row.get('event_id')}:{row.get('customer_id')}",
                row,
                f"{_WARNING_TITLES[kind]} : {row.get('customer_name') or row.get('customer_id')}",
                detail,
                None,
            )
        )
    for row in degradation.to_dict("records"):
        if not bool(row.get("is_degrading")):
            continue
        out.append(
            _alert(
                "payer_degrading",
                f"{row.get('customer_id')}:{as_of_date:%Y-%m}",
                row,
                f"Bon payeur qui se dégrade : {row.get('customer_name') or row.get('customer_id')}",
                _degradation_text(row),
                None,
            )
        )
    frame = pd.DataFrame(
        out,
        columns=[
            "alert_key",
            "alert_type",
            "customer_id",
            "customer_name",
            "company_id",
            "event_id",
            "title",
            "detail",
            "due_date",
        ],
    )
    frame = frame.drop_duplicates("alert_key").sort_values(["alert_type", "alert_key"], kind="mergesort")
    frame["as_of_date"] = as_of_date
    return frame.reset_index(drop=True)


def _num(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _degradation_text(row: dict[str, Any]) -> str:
    """The figures of ``serving.payer_degradation`` in a French sentence (the model gives them in English)."""
    parts = []
    hist, recent = _num(row.get("hist_mean_days_late")), _num(row.get("recent_mean_days_late"))
    if hist is not None and recent is not None:
        parts.append(
            f"payait en moyenne {hist:.1f} j après l'échéance sur {int(row.get('hist_invoice_count') or 0)} "
            f"facture(s), {recent:.1f} j sur ses {int(row.get('recent_invoice_count') or 0)} dernière(s)".replace(
                ".", ","
            )
        )
    now, before = row.get("grade_now"), row.get("grade_30d_ago")
    if isinstance(now, str) and isinstance(before, str) and now > before:
        parts.append(f"note de risque passée de {before} à {now} en 30 jours")
    return ("; ".join(parts) or str(row.get("degradation_reason") or "comportement de paiement dégradé")) + "."


def digest_key(alert_keys: Sequence[str]) -> str:
    """The send-ledger key of one digest: the same alerts are one email, however often the run is repeated."""
    return "risk-alerts-" + hashlib.sha256("\n".join(sorted(alert_keys)).encode()).hexdigest()[:40]


def _text(alerts: pd.DataFrame, as_of_date: date) -> str:
    lines = [f"Alertes risque client du {as_of_date:%d/%m/%Y} ({len(alerts)}) :", ""]
    for row in alerts.to_dict("records"):
        lines += [f"- {row['title']}", f"  {row['detail']}"]
    lines += ["", "Détail et historique : rapport financier relance, section « Alertes risque »."]
    return "\n".join(lines)


def _html(alerts: pd.DataFrame, as_of_date: date) -> str:
    items = "".join(
        f"<tr><td>{html.escape(str(r['alert_type']))}</td><td><strong>{html.escape(str(r['title']))}</strong><br>"
        f"{html.escape(str(r['detail']))}</td></tr>"
        for r in alerts.to_dict("records")
    )
    return (
        '<!doctype html><html lang="fr"><body>'
        f"<p>Alertes risque client du {as_of_date:%d/%m/%Y} ({len(alerts)}) :</p>"
        f'<table border="1" cellpadding="4" cellspacing="0">{items}</table></body></html>'
    )


def build_alert_mail(
    alerts: pd.DataFrame,
    *,
    as_of_date: date,
    sender_email: str,
    sender_name: str,
    recipients: Sequence[str],
    key: str,
    flow_run_id: str | None,
) -> Mail:
    """The digest email to finance: one per run with new alerts. Only opaque ids in custom args."""
    if not recipients:
        raise ValueError("no finance_alert_recipients configured: risk alerts cannot be emailed")
    mail = Mail(from_email=From(sender_email, sender_name), to_emails=[To(r) for r in recipients])
    urgent = int(alerts["alert_type"].isin(["insolvency_notice", "claim_deadline"]).sum())
    mail.subject = Subject(
        f"relance : {len(alerts)} alerte(s) risque client"
        + (f", dont {urgent} procédure(s) collective(s) / déclaration(s)" if urgent else "")
        + f" ({as_of_date:%d/%m/%Y})"
    )
    text = _text(alerts, as_of_date)
    mail.content = [Content(MimeType.text, text), Content(MimeType.html, _html(alerts, as_of_date))]
    args = {"reminder_key": key}
    if flow_run_id:
        args["flow_run_id"] = flow_run_id
    mail.custom_arg = [CustomArg(k, v, p=0) for k, v in args.items()]
    mail.category = [Category("relance"), Category("risk_alerts")]
    return mail


def notify(
    con: Any,
    *,
    ledger: Any,
    transport: Any,
    as_of_date: date,
    sender_email: str,
    sender_name: str,
    recipients: Sequence[str],
    flow_run_id: str | None,
    now: datetime,
) -> tuple[int, str | None]:
    """Email every alert no email carried yet, in one digest, exactly once; returns (alerts sent, digest key).

    The digest goes through the send ledger like a reminder (claimed before the transport is called, marked sent
    with the provider's id or the outbox file): a rerun after a crash neither loses nor repeats it. The alerts are
    marked notified with the digest key. A failed send leaves them unnotified for the next run.
    """
    from relance import ops

    pending = ops.read_alerts(con, unnotified_only=True)
    if pending.empty:
        return 0, None
    keys = pending["alert_key"].astype(str).tolist()
    key = digest_key(keys)
    status = ledger.statuses([key]).get(key, (None, 0))[0]
    if status == "sent":  # sent by a run that died before marking them
        ops.mark_alerts_notified(con, keys, notification_id=key, at=now)
        return 0, key
    mail = build_alert_mail(
        pending,
        as_of_date=as_of_date,
        sender_email=sender_email,
        sender_name=sender_name,
        recipients=recipients,
        key=key,
        flow_run_id=flow_run_id,
    )
    attempts = ledger.claim(
        key, "email", flow_run_id=flow_run_id, step="risk_alerts", recipient=",".join(recipients), at=now
    )
    if attempts is None:  # in flight elsewhere, or left 'sending' by a crash: never resent blindly
        return 0, key
    try:
        result = transport.send(mail, key)
    except Exception as exc:
        ambiguous = bool(getattr(exc, "ambiguous", False))
        ledger.failed(
            key, "email", f"{type(exc).__name__}: {exc}", attempts + 1,
            status="sending" if ambiguous else "failed", flow_run_id=flow_run_id, at=now,
        )  # fmt: skip
        raise
    ledger.sent(
        key,
        provider_message_id=result.provider_message_id,
        outbox_path=str(result.outbox_path) if result.outbox_path else None,
        attempts=attempts + 1,
        at=now,
        flow_run_id=flow_run_id,
    )
    ops.mark_alerts_notified(con, keys, notification_id=key, at=now)
    return len(keys), key
