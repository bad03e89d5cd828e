"""The words and number formats of the finance outputs (weekly report, daily flash), in French and English.

One catalogue, one dict per language with the same keys (a test checks they match), and the formatters every
output uses, so that an amount reads the same in the HTML, the email subject and the Prefect markdown:

* money: French ``1 234,56 €`` (narrow no-break space between thousands, decimal comma, symbol after a no-break
  space), English ``€1,234.56``; a negative amount starts with a minus sign (``−1 234,56 €``, ``−€1,234.56``);
  a code without a symbol reads ``1 234,56 CHF`` / ``CHF 1,234.56``. Amounts are formatted one currency at a time:
  nothing here adds two amounts;
* numbers ``45,2`` / ``45.2``, percentages ``12,3 %`` / ``12.3%``, dates ``31/10/2026`` / ``31 Oct 2026``;
* missing values read ``n/d`` / ``n/a``, never ``nan``.

The XLSX keeps numbers as numbers: :func:`money_format` gives the spreadsheet number format of a currency in a
language (the spreadsheet itself then shows the reader's separators).
"""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

import pandas as pd

Language = Literal["fr", "en"]
LANGUAGES: tuple[Language, ...] = ("fr", "en")

CURRENCY_SYMBOLS: dict[str, str] = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥"}
_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
NNBSP, NBSP, MINUS = "\u202f", "\u00a0", "\u2212"

#: NAF rev. 2 / NACE rev. 2 sections, short names.
SECTORS: dict[str, dict[str, str]] = {
    "fr": {
        "A": "Agriculture, sylviculture, pêche",
        "B": "Industries extractives",
        "C": "Industrie manufacturière",
        "D": "Énergie (électricité, gaz)",
        "E": "Eau, assainissement, déchets",
        "F": "Construction",
        "G": "Commerce, réparation auto",
        "H": "Transports et entreposage",
        "I": "Hébergement et restauration",
        "J": "Information et communication",
        "K": "Finance et assurance",
        "L": "Activités immobilières",
        "M": "Activités spécialisées et techniques",
        "N": "Services administratifs et de soutien",
        "O": "Administration publique",
        "P": "Enseignement",
        "Q": "Santé et action sociale",
        "R": "Arts, spectacles, loisirs",
        "S": "Autres services",
        "T": "Ménages employeurs",
        "U": "Organisations extraterritoriales",
    },
    "en": {
        "A": "Agriculture, forestry, fishing",
        "B": "Mining and quarrying",
        "C": "Manufacturing",
        "D": "Energy (electricity, gas)",
        "E": "Water, sewerage, waste",
        "F": "Construction",
        "G": "Wholesale and retail trade",
        "H": "Transport and storage",
        "I": "Accommodation and food",
        "J": "Information and communication",
        "K": "Finance and insurance",
        "L": "Real estate",
        "M": "Professional and technical services",
        "N": "Administrative and support services",
        "O": "Public administration",
        "P": "Education",
        "Q": "Health and social work",
        "R": "Arts and recreation",
        "S": "Other services",
        "T": "Households as employers",
        "U": "Extraterritorial organisations",
    },
}

CATALOGUE: dict[str, dict[str, str]] = {
    "fr": {
        # titles
        "weekly_title": "Rapport hebdomadaire du poste clients au {date}",
        "flash_title": "Flash du poste clients au {date}",
        "weekly_subject": "relance : rapport hebdomadaire du poste clients au {date}",
        "flash_subject": "relance : flash du poste clients au {date}",
        "meta": "Exécution : {run} · générée le {generated} UTC",
        "meta_model": "modèle de risque : {model}",
        "model_none": "aucun",
        "run_local": "locale",
        "intro_weekly": "Les chiffres de la semaine, par devise (les montants de devises différentes ne sont jamais "
        "additionnés). Le classeur Excel joint contient toutes les lignes.",
        "intro_flash": "Les chiffres du jour, par devise. Le rapport complet part chaque lundi.",
        "not_available": "Non disponible : la relation {relation} n’existe pas encore dans cet entrepôt.",
        "no_rows": "Rien à afficher.",
        "forecast_unavailable": "Non disponible : pas de prévision d’encaissements pour ce jour (son entrée, "
        "serving.forecast_open_invoices, n’est pas dans cet entrepôt).",
        "more_rows": "… et {n} autre(s) ligne(s) dans le classeur joint.",
        "banner_model": "Aucun modèle n’a été entraîné pour ce rapport ; les probabilités viennent du modèle {model}. "
        "Raison : {note}",
        "banner_stale": "Données de risque entreprises possiblement périmées : {sources}.",
        "attachments": "Pièce jointe : {name} (toutes les lignes, une feuille par section).",
        # sections
        "sec_key_figures": "Chiffres clés",
        "sec_aged": "Balance âgée",
        "sec_aged_customer": "Principaux clients (top {n} par encours)",
        "sec_aged_segment": "Par segment",
        "sec_aged_detail": "Balance âgée par client, segment et secteur",
        "sec_aged_sector": "Par secteur",
        "sec_dso": "Délai de paiement (DSO)",
        "sec_cei": "Efficacité du recouvrement (CEI)",
        "sec_forecast": "Prévision d’encaissements sur {weeks} semaines",
        "sec_backtest": "Prévu contre réalisé (semaines passées)",
        "sec_at_risk": "Exposition à risque",
        "sec_alerts": "Alertes et événements de risque",
        "sec_reminders": "Performance des relances (13 semaines)",
        "sec_holdout": "Effet mesuré des relances (groupe témoin tiré au sort)",
        "sec_late_cost": "Coût du retard de paiement",
        "sec_reminders_today": "Relances du jour",
        "sec_new_alerts": "Nouvelles alertes risque",
        # key figures
        "kf_open": "Encours",
        "kf_overdue": "Échu",
        "kf_overdue_share": "Part échue",
        "kf_dso": "DSO (countback)",
        "kf_dso_simple": "DSO (simple)",
        "kf_dso_last_week": "DSO il y a 7 jours",
        "kf_dso_change": "Variation sur 7 jours",
        "kf_cei": "CEI 13 semaines",
        "kf_cash_13w": "Encaissements attendus ({weeks} sem.)",
        "kf_cash_week": "Encaissements attendus sur 7 jours",
        "kf_cash_range": "Fourchette p10–p90",
        "kf_cost": "Coût du retard à date",
        "kf_wape": "WAPE (prévu vs réel)",
        # columns
        "col_currency": "Devise",
        "col_customer": "Client",
        "col_customer_id": "N° client",
        "col_segment": "Segment",
        "col_size_band": "Taille",
        "col_sector": "Secteur",
        "col_not_due": "Non échu",
        "col_d1_30": "1–30 j",
        "col_d31_60": "31–60 j",
        "col_d61_90": "61–90 j",
        "col_d90_plus": "> 90 j",
        "col_total": "Total",
        "col_overdue": "Échu",
        "col_invoices": "Factures",
        "col_customers": "Clients",
        "col_week_end": "Semaine au",
        "col_week": "Semaine",
        "col_week_start": "Du",
        "col_receivables": "Encours",
        "col_dso_countback": "DSO countback (j)",
        "col_dso_simple": "DSO simple (j)",
        "col_period": "Période",
        "col_period_start": "Début",
        "col_period_end": "Fin",
        "col_beginning": "Encours début",
        "col_sales": "Ventes",
        "col_ending": "Encours fin",
        "col_ending_current": "Dont non échu",
        "col_cei": "CEI",
        "col_expected": "Attendu",
        "col_p10": "p10",
        "col_p50": "p50",
        "col_p90": "p90",
        "col_forecast": "Prévu",
        "col_actual": "Réalisé",
        "col_abs_error": "Écart absolu",
        "col_baseline": "Référence : {name}",
        "col_rank": "Rang",
        "col_invoice": "Facture",
        "col_grade": "Note",
        "col_open_amount": "Restant dû",
        "col_days_overdue": "Retard (j)",
        "col_p_late": "P(retard)",
        "col_payment_date": "Paiement prévu",
        "col_exposure": "Exposition",
        "col_reason": "Raison principale",
        "col_risk_event": "Dernier événement",
        "col_risk_event_date": "Date de l’événement",
        "col_alert": "Alerte",
        "col_type": "Type",
        "col_detail": "Détail",
        "col_date": "Date",
        "col_scenario": "Scénario",
        "col_channel": "Canal",
        "col_tone": "Ton",
        "col_messages": "Messages",
        "col_amount_covered": "Montant relancé",
        "col_paid_14d_rate": "Payé sous 14 j",
        "col_paid_14d_amount": "Montant payé sous 14 j",
        "col_median_days": "Délai médian (j)",
        "col_group": "Relancés par",
        "col_treated": "Payé sous 14 j (relancés)",
        "col_holdout": "Payé sous 14 j (témoin)",
        "col_effect": "Effet",
        "col_ci": "IC 95 %",
        "col_n_treated": "Clients relancés",
        "col_n_holdout": "Clients témoin",
        "col_ci_low": "IC 95 % bas",
        "col_ci_high": "IC 95 % haut",
        "col_overdue_amount": "Montant échu",
        "col_amount_days": "Montant × jours de retard",
        "col_rate": "Taux annuel",
        "col_cost_to_date": "Coût à date (échu ouvert)",
        "col_cost_13w": "Coût sur 13 semaines (payé en retard)",
        "col_metric": "Indicateur",
        "col_value": "Valeur",
        "col_amount": "Montant",
        # words
        "total_row": "Total",
        "unknown": "Non renseigné",
        "b2b": "Entreprises",
        "b2c": "Particuliers",
        "size_micro": "micro",
        "size_small": "petite",
        "size_medium": "moyenne",
        "size_large": "grande",
        "days_unit": "{value} j",
        "missing": "n/d",
        "cei_total": "13 dernières semaines",
        "in_procedure": "procédure collective",
        "wape_line": "WAPE {currency} sur {weeks} semaines passées : {wape} (objectif ≤ 8 %) ; "
        "références : {baselines}.",
        "wape_none": "WAPE {currency} : non calculable (pas assez de semaines passées).",
        "holdout_none": "Pas encore de recul : l’effet se mesure 14 jours après l’entrée des clients dans un scénario, "
        "en comparant leur paiement à celui du groupe témoin tiré au sort.",
        "holdout_note": "La première ligne est l’effet causal (tirage au sort) ; par canal ou scénario la comparaison "
        "est indicative : le canal est choisi par le moteur, pas tiré au sort.",
        "late_cost_note": "Coût de financement du retard au taux annuel de {rate} : montant × jours de retard × taux / "
        "365.",
        "dso_note": "DSO countback : jours de ventes récentes nécessaires pour expliquer l’encours ; DSO simple : "
        "encours / ventes des 90 derniers jours × 90.",
        "cei_note": "CEI = (encours début + ventes − encours fin) / (encours début + ventes − encours fin non échu) "
        "× 100 ; 100 % = tout ce qui était recouvrable a été encaissé.",
        "forecast_note": "Encaissements attendus des factures ouvertes selon les dates de paiement prédites ; la bande "
        "va du 10e au 90e centile.",
        "no_alerts": "Aucune nouvelle alerte.",
        "notes_title": "Prévision d’encaissements : méthode et couverture",
        "forecast_notes_pointer": "Méthode et couverture de la prévision : feuille « Notes » du classeur joint.",
        "no_reminders": "Aucune relance aujourd’hui.",
        "baseline_due_date": "à l’échéance",
        "baseline_customer_mean": "retard moyen du client",
        "chart_aged": "Balance âgée ({currency})",
        "chart_dso": "DSO sur 13 semaines ({currency})",
        "chart_forecast": "Encaissements par semaine ({currency})",
        "chart_actual": "Réalisé",
        "chart_forecast_past": "Prévu à l’époque",
        "chart_expected": "Attendu",
        "chart_band": "p10–p90",
        "chart_today": "aujourd’hui",
        "chart_alt_aged": "Balance âgée par tranche et devise",
        "chart_alt_dso": "DSO countback et simple sur 13 semaines",
        "chart_alt_forecast": "Prévision d’encaissements avec bande p10–p90 et réalisé des semaines passées",
        # sheets (31 characters at most)
        "sheet_summary": "Synthèse",
        "sheet_aged": "Balance âgée",
        "sheet_customer": "Par client",
        "sheet_segment": "Par segment",
        "sheet_sector": "Par secteur",
        "sheet_dso": "DSO",
        "sheet_cei": "CEI",
        "sheet_forecast": "Prévision",
        "sheet_backtest": "Prévu vs réel",
        "sheet_at_risk": "À risque",
        "sheet_alerts": "Alertes",
        "sheet_reminders": "Relances",
        "sheet_holdout": "Effet témoin",
        "sheet_late_cost": "Coût du retard",
        "sheet_reminders_today": "Relances du jour",
        "sheet_notes": "Notes",
    },
    "en": {
        "weekly_title": "Weekly receivables report as of {date}",
        "flash_title": "Receivables flash as of {date}",
        "weekly_subject": "relance: weekly receivables report as of {date}",
        "flash_subject": "relance: receivables flash as of {date}",
        "meta": "Run: {run} · generated {generated} UTC",
        "meta_model": "risk model: {model}",
        "model_none": "none",
        "run_local": "local",
        "intro_weekly": "This week's figures, per currency (amounts in different currencies are never added up). "
        "The attached Excel workbook holds every row.",
        "intro_flash": "Today's figures, per currency. The full report goes out every Monday.",
        "not_available": "Not available: the relation {relation} does not exist in this warehouse yet.",
        "no_rows": "Nothing to show.",
        "forecast_unavailable": "Not available: no cash-in forecast for this day (its input, "
        "serving.forecast_open_invoices, is not in this warehouse).",
        "more_rows": "… and {n} more row(s) in the attached workbook.",
        "banner_model": "No model was trained for this report; the probabilities come from model {model}. "
        "Reason: {note}",
        "banner_stale": "Company risk data may be out of date: {sources}.",
        "attachments": "Attached: {name} (every row, one sheet per section).",
        "sec_key_figures": "Key figures",
        "sec_aged": "Aged balance",
        "sec_aged_customer": "Top customers (top {n} by balance)",
        "sec_aged_segment": "By segment",
        "sec_aged_detail": "Aged balance by customer, segment and sector",
        "sec_aged_sector": "By sector",
        "sec_dso": "Days sales outstanding (DSO)",
        "sec_cei": "Collection effectiveness index (CEI)",
        "sec_forecast": "{weeks}-week cash-in forecast",
        "sec_backtest": "Forecast against actual (past weeks)",
        "sec_at_risk": "At-risk exposure",
        "sec_alerts": "Risk alerts and events",
        "sec_reminders": "Reminder performance (13 weeks)",
        "sec_holdout": "Measured effect of reminders (randomised holdout)",
        "sec_late_cost": "Cost of late payment",
        "sec_reminders_today": "Today's reminders",
        "sec_new_alerts": "New risk alerts",
        "kf_open": "Open receivables",
        "kf_overdue": "Overdue",
        "kf_overdue_share": "Overdue share",
        "kf_dso": "DSO (countback)",
        "kf_dso_simple": "DSO (simple)",
        "kf_dso_last_week": "DSO 7 days ago",
        "kf_dso_change": "Change over 7 days",
        "kf_cei": "CEI 13 weeks",
        "kf_cash_13w": "Expected cash-in ({weeks} wks)",
        "kf_cash_week": "Expected cash-in, next 7 days",
        "kf_cash_range": "p10–p90 range",
        "kf_cost": "Cost of late payment to date",
        "kf_wape": "WAPE (forecast vs actual)",
        "col_currency": "Currency",
        "col_customer": "Customer",
        "col_customer_id": "Customer no.",
        "col_segment": "Segment",
        "col_size_band": "Size",
        "col_sector": "Sector",
        "col_not_due": "Not due",
        "col_d1_30": "1–30 d",
        "col_d31_60": "31–60 d",
        "col_d61_90": "61–90 d",
        "col_d90_plus": "> 90 d",
        "col_total": "Total",
        "col_overdue": "Overdue",
        "col_invoices": "Invoices",
        "col_customers": "Customers",
        "col_week_end": "Week ending",
        "col_week": "Week",
        "col_week_start": "From",
        "col_receivables": "Receivables",
        "col_dso_countback": "DSO countback (d)",
        "col_dso_simple": "DSO simple (d)",
        "col_period": "Period",
        "col_period_start": "Start",
        "col_period_end": "End",
        "col_beginning": "Beginning receivables",
        "col_sales": "Sales",
        "col_ending": "Ending receivables",
        "col_ending_current": "of which current",
        "col_cei": "CEI",
        "col_expected": "Expected",
        "col_p10": "p10",
        "col_p50": "p50",
        "col_p90": "p90",
        "col_forecast": "Forecast",
        "col_actual": "Actual",
        "col_abs_error": "Absolute error",
        "col_baseline": "Baseline: {name}",
        "col_rank": "Rank",
        "col_invoice": "Invoice",
        "col_grade": "Grade",
        "col_open_amount": "Open amount",
        "col_days_overdue": "Days overdue",
        "col_p_late": "P(late)",
        "col_payment_date": "Expected payment",
        "col_exposure": "Exposure",
        "col_reason": "Main reason",
        "col_risk_event": "Latest event",
        "col_risk_event_date": "Event date",
        "col_alert": "Alert",
        "col_type": "Type",
        "col_detail": "Detail",
        "col_date": "Date",
        "col_scenario": "Scenario",
        "col_channel": "Channel",
        "col_tone": "Tone",
        "col_messages": "Messages",
        "col_amount_covered": "Amount reminded",
        "col_paid_14d_rate": "Paid within 14 d",
        "col_paid_14d_amount": "Amount paid within 14 d",
        "col_median_days": "Median days to pay",
        "col_group": "Reminded by",
        "col_treated": "Paid within 14 d (reminded)",
        "col_holdout": "Paid within 14 d (holdout)",
        "col_effect": "Effect",
        "col_ci": "95% CI",
        "col_n_treated": "Customers reminded",
        "col_n_holdout": "Holdout customers",
        "col_ci_low": "95% CI low",
        "col_ci_high": "95% CI high",
        "col_overdue_amount": "Overdue amount",
        "col_amount_days": "Amount × days late",
        "col_rate": "Annual rate",
        "col_cost_to_date": "Cost to date (open overdue)",
        "col_cost_13w": "Cost over 13 weeks (paid late)",
        "col_metric": "Metric",
        "col_value": "Value",
        "col_amount": "Amount",
        "total_row": "Total",
        "unknown": "Unknown",
        "b2b": "Businesses",
        "b2c": "Consumers",
        "size_micro": "micro",
        "size_small": "small",
        "size_medium": "medium",
        "size_large": "large",
        "days_unit": "{value} d",
        "missing": "n/a",
        "cei_total": "Last 13 weeks",
        "in_procedure": "insolvency proceedings",
        "wape_line": "WAPE {currency} over {weeks} past weeks: {wape} (goal ≤ 8%); baselines: {baselines}.",
        "wape_none": "WAPE {currency}: not computable (not enough past weeks).",
        "holdout_none": "Too early to tell: the effect is measured 14 days after customers enter a scenario, by "
        "comparing their payments with those of the randomised holdout group.",
        "holdout_note": "The first row is the causal effect (randomised); per channel or scenario the comparison is "
        "indicative: the engine chooses the channel, it is not randomised.",
        "late_cost_note": "Funding cost of late payment at an annual rate of {rate}: amount × days late × rate / 365.",
        "dso_note": "Countback DSO: days of the most recent sales it takes to account for the receivables; simple "
        "DSO: receivables / sales of the last 90 days × 90.",
        "cei_note": "CEI = (beginning receivables + sales − ending receivables) / (beginning receivables + sales − "
        "ending current receivables) × 100; 100% = everything collectable was collected.",
        "forecast_note": "Expected cash-in from open invoices at their predicted payment dates; the band runs from "
        "the 10th to the 90th percentile.",
        "no_alerts": "No new alert.",
        "notes_title": "Cash-in forecast: method and coverage",
        "forecast_notes_pointer": "How the forecast is made and what it covers: the Notes sheet of the attached "
        "workbook.",
        "no_reminders": "No reminder today.",
        "baseline_due_date": "at due date",
        "baseline_customer_mean": "customer's mean delay",
        "chart_aged": "Aged balance ({currency})",
        "chart_dso": "DSO over 13 weeks ({currency})",
        "chart_forecast": "Cash-in per week ({currency})",
        "chart_actual": "Actual",
        "chart_forecast_past": "Forecast at the time",
        "chart_expected": "Expected",
        "chart_band": "p10–p90",
        "chart_today": "today",
        "chart_alt_aged": "Aged balance by bucket and currency",
        "chart_alt_dso": "Countback and simple DSO over 13 weeks",
        "chart_alt_forecast": "Cash-in forecast with p10–p90 band and actuals of past weeks",
        "sheet_summary": "Summary",
        "sheet_aged": "Aged balance",
        "sheet_customer": "By customer",
        "sheet_segment": "By segment",
        "sheet_sector": "By sector",
        "sheet_dso": "DSO",
        "sheet_cei": "CEI",
        "sheet_forecast": "Forecast",
        "sheet_backtest": "Backtest",
        "sheet_at_risk": "At risk",
        "sheet_alerts": "Alerts",
        "sheet_reminders": "Reminders",
        "sheet_holdout": "Holdout effect",
        "sheet_late_cost": "Late payment cost",
        "sheet_reminders_today": "Today's reminders",
        "sheet_notes": "Notes",
    },
}

#: Codes of the reminder engine and of the alerts, in words.
CODES: dict[str, dict[str, str]] = {
    "fr": {
        "email": "e-mail",
        "sms": "SMS",
        "letter": "courrier",
        "call": "appel",
        "no message": "traité sans message",
        "all (intention to treat)": "toutes relances (intention de traiter)",
        "preventive": "préventif",
        "cordial": "cordial",
        "firm": "ferme",
        "formal_notice": "mise en demeure",
        "insolvency_notice": "procédure collective",
        "claim_deadline": "déclaration de créance",
        "director_change": "changement de dirigeant",
        "head_office_move": "transfert de siège",
        "closure": "fermeture",
        "conciliation": "conciliation",
        "business_sold": "cession du fonds",
        "payer_degrading": "payeur qui se dégrade",
        "procedure_opened": "ouverture de procédure",
        "accounts_filed": "dépôt des comptes",
    },
    "en": {
        "email": "email",
        "sms": "SMS",
        "letter": "letter",
        "call": "call",
        "no message": "handled without a message",
        "all (intention to treat)": "all reminders (intention to treat)",
        "preventive": "preventive",
        "cordial": "cordial",
        "firm": "firm",
        "formal_notice": "formal notice",
        "insolvency_notice": "insolvency proceedings",
        "claim_deadline": "claim deadline",
        "director_change": "director change",
        "head_office_move": "head office move",
        "closure": "closure",
        "conciliation": "conciliation",
        "business_sold": "business sold",
        "payer_degrading": "degrading payer",
        "procedure_opened": "proceedings opened",
        "accounts_filed": "accounts filed",
    },
}


def check_language(language: str) -> Language:
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}; expected one of {LANGUAGES}")
    return language  # type: ignore[return-value]


def t(language: str, key: str, **values: Any) -> str:
    """The catalogue's text for ``key`` in ``language``, with ``{name}`` fields filled from ``values``."""
    text = CATALOGUE[check_language(language)][key]
    return text.format(**values) if values else text


def code_label(language: str, code: Any) -> str:
    """A machine code (channel, tone, alert type) in words; an unknown code as it is."""
    if is_missing(code):
        return ""
    return CODES[check_language(language)].get(str(code), str(code))


def sector_label(language: str, section: Any) -> str:
    if is_missing(section) or str(section).strip() == "":
        return t(language, "unknown")
    code = str(section).strip().upper()
    name = SECTORS[check_language(language)].get(code)
    return f"{code} · {name}" if name else code


def segment_label(language: str, customer_type: Any, size_band: Any = None) -> str:
    kind = "" if is_missing(customer_type) else str(customer_type).strip().upper()
    base = {"B2B": t(language, "b2b"), "B2C": t(language, "b2c")}.get(kind, kind or t(language, "unknown"))
    if is_missing(size_band) or str(size_band).strip() == "":
        return base
    size = str(size_band).strip().lower()
    key = f"size_{size}"
    return f"{base} · {t(language, key) if key in CATALOGUE['fr'] else size}"


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _grouped(number: float, decimals: int, language: str) -> str:
    """``abs(number)`` with thousands grouped, rounded half up (48.25 -> 48.3, as by hand: not to even)."""
    exact = Decimal(repr(abs(number))).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    digits = f"{exact:,.{decimals}f}"
    if language == "fr":
        digits = digits.replace(",", NNBSP).replace(".", ",")
    return digits


def _signed(value: Any, decimals: int) -> tuple[float, bool] | None:
    if is_missing(value):
        return None
    number = float(value)
    if math.isinf(number):
        return None
    if round(number, decimals) == 0:
        number = 0.0  # never "-0"
    return number, number < 0


def money(value: Any, currency: Any, language: str, decimals: int = 2) -> str:
    """``1 234,56 €`` / ``€1,234.56``; ``n/d`` / ``n/a`` when missing. One currency: this never adds amounts."""
    language = check_language(language)
    signed = _signed(value, decimals)
    if signed is None:
        return t(language, "missing")
    number, negative = signed
    code = "" if is_missing(currency) else str(currency).upper()
    symbol = CURRENCY_SYMBOLS.get(code, code)
    digits = _grouped(number, decimals, language)
    sign = MINUS if negative else ""
    if language == "en":
        if not symbol:
            return sign + digits
        return f"{sign}{symbol}{digits}" if len(symbol) == 1 else f"{sign}{symbol}{NBSP}{digits}"
    return f"{sign}{digits}{NBSP}{symbol}".strip()


def number(value: Any, language: str, decimals: int = 1) -> str:
    """``1 234,5`` / ``1,234.5``; ``n/d`` / ``n/a`` when missing."""
    language = check_language(language)
    signed = _signed(value, decimals)
    if signed is None:
        return t(language, "missing")
    value_, negative = signed
    return (MINUS if negative else "") + _grouped(value_, decimals, language)


def signed_number(value: Any, language: str, decimals: int = 1) -> str:
    """A change: ``+3,2`` / ``−1.5``."""
    text = number(value, language, decimals)
    if text == t(language, "missing") or text.startswith(MINUS):
        return text
    return "+" + text


def percent(value: Any, language: str, decimals: int = 1, *, ratio: bool = True) -> str:
    """``12,3 %`` / ``12.3%``; ``ratio=True`` for a share (0.123), False for a value already in percent."""
    language = check_language(language)
    if is_missing(value):
        return t(language, "missing")
    scaled = float(value) * 100 if ratio else float(value)
    if math.isnan(scaled) or math.isinf(scaled):
        return t(language, "missing")
    text = number(scaled, language, decimals)
    return f"{text}{NBSP}%" if language == "fr" else f"{text}%"


def points(value: Any, language: str) -> str:
    """A difference of two rates in percentage points: ``+50,0 pts`` / ``+50.0 pts``."""
    if is_missing(value) or math.isnan(float(value)):
        return t(language, "missing")
    return f"{signed_number(float(value) * 100, language, 1)}{NBSP}pts"


def days(value: Any, language: str, decimals: int = 1) -> str:
    text = number(value, language, decimals)
    return text if text == t(language, "missing") else t(language, "days_unit", value=text)


def as_date(value: Any) -> date | None:
    if is_missing(value):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return pd.Timestamp(value).date()
    except (TypeError, ValueError):
        return None


def day(value: Any, language: str) -> str:
    """``31/10/2026`` / ``31 Oct 2026``; blank when unknown."""
    d = as_date(value)
    if d is None:
        return ""
    if check_language(language) == "en":
        return f"{d.day} {_MONTHS_EN[d.month - 1]} {d.year}"
    return d.strftime("%d/%m/%Y")


def short_day(value: Any, language: str) -> str:
    """``26/10`` / ``26 Oct``: chart ticks."""
    d = as_date(value)
    if d is None:
        return ""
    if check_language(language) == "en":
        return f"{d.day} {_MONTHS_EN[d.month - 1]}"
    return d.strftime("%d/%m")


def money_format(currency: Any, language: str, decimals: int = 2) -> str:
    """The spreadsheet number format of an amount in ``currency`` (digits grouped by the reader's own locale)."""
    code = "" if is_missing(currency) else str(currency).upper()
    symbol = CURRENCY_SYMBOLS.get(code, code).replace('"', "")
    body = "#,##0" + ("." + "0" * decimals if decimals else "")
    if not symbol:
        return body
    if check_language(language) == "en":
        return f'"{symbol}"{body};-"{symbol}"{body}'
    return f'{body}\\ "{symbol}";-{body}\\ "{symbol}"'
