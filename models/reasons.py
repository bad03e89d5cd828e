"""Plain words for reason codes: what each feature means to a collector, with its value filled in.

The model explains each prediction by its TreeSHAP contributions (LightGBM ``pred_contrib``); the three features
pushing hardest towards "late" become ``reason_1..3`` in these words. The phrasebook is saved inside every logged
model (``reasons.json``), so a served model speaks the words it was trained with, and a feature without a phrase
is still named (never silently dropped). A test checks every contract feature has a phrase.

Each entry: ``text`` (``{value}`` is the formatted value, ``{abs}`` its absolute value), optional ``negative``
(used when the value is below 0), ``missing`` (the value is unknown: usually "no history yet") and ``format``:
pct (share as a percentage), days, count, amount, month, flag, text.
"""

from __future__ import annotations

from typing import Any

REASON_PHRASES: dict[str, dict[str, Any]] = {
    "amount": {"text": "Invoice amount {value}", "format": "amount"},
    "open_amount": {"text": "Still {value} open on this invoice", "format": "amount"},
    "open_share": {"text": "{value} of the invoice still open", "format": "pct"},
    "payment_terms_days": {"text": "Payment terms of {value} days", "format": "days"},
    "is_end_of_month_terms": {"text": "End-of-month payment terms", "format": "flag"},
    "days_to_due": {"text": "Due in {value} days", "negative": "{abs} days overdue", "format": "days"},
    "invoice_age_days": {"text": "Invoice issued {value} days ago", "format": "days"},
    "issue_month": {"text": "Issued in {value}", "format": "month"},
    "due_month": {"text": "Due in {value}", "format": "month"},
    "invoice_payment_count": {"text": "{value} partial payment(s) so far on this invoice", "format": "count"},
    "is_disputed": {"text": "A dispute is open on this invoice", "format": "flag"},
    "dispute_count": {"text": "{value} dispute(s) raised on this invoice", "format": "count"},
    "cust_settled_invoice_count": {
        "text": "Only {value} invoice(s) of this customer settled so far",
        "format": "count",
    },
    "cust_late_invoice_count": {"text": "Customer paid {value} past invoice(s) late", "format": "count"},
    "cust_late_share": {
        "text": "Customer paid {value} of past invoices late",
        "missing": "No payment history for this customer yet",
        "format": "pct",
    },
    "cust_mean_days_late": {
        "text": "Customer pays {value} days late on average",
        "negative": "Customer pays {abs} days early on average",
        "missing": "No payment history for this customer yet",
        "format": "days",
    },
    "cust_median_days_late_365d": {
        "text": "Customer's typical delay this past year: {value} days",
        "missing": "No invoice of this customer settled in the past year",
        "format": "days",
    },
    "cust_ew_mean_days_late": {
        "text": "Customer's recent-weighted delay: {value} days",
        "missing": "No payment history for this customer yet",
        "format": "days",
    },
    "cust_recent_mean_days_late": {
        "text": "Customer paid {value} days late on average in the last 90 days",
        "missing": "No invoice of this customer settled in the last 90 days",
        "format": "days",
    },
    "cust_days_late_trend": {
        "text": "Customer is paying {value} days later than before",
        "negative": "Customer is paying {abs} days sooner than before",
        "missing": "No recent trend for this customer",
        "format": "days",
    },
    "cust_partial_payment_share": {
        "text": "Customer settles {value} of invoices in several payments",
        "missing": "No payment history for this customer yet",
        "format": "pct",
    },
    "cust_days_since_last_payment": {
        "text": "No payment from this customer for {value} days",
        "missing": "This customer has never paid yet",
        "format": "days",
    },
    "cust_open_amount": {"text": "Customer owes {value} in total", "format": "amount"},
    "cust_open_invoice_count": {"text": "Customer has {value} open invoice(s)", "format": "count"},
    "cust_overdue_invoice_count": {"text": "Customer has {value} overdue invoice(s)", "format": "count"},
    "cust_credit_limit_usage": {
        "text": "Customer uses {value} of its credit limit",
        "missing": "No credit limit set for this customer",
        "format": "pct",
    },
    "cust_tenure_days": {
        "text": "Customer for {value} days",
        "missing": "Customer creation date unknown",
        "format": "days",
    },
    "reminder_count": {"text": "{value} reminder(s) already sent for this invoice", "format": "count"},
    "reminder_email_count": {"text": "{value} e-mail reminder(s) already sent", "format": "count"},
    "reminder_sms_count": {"text": "{value} SMS reminder(s) already sent", "format": "count"},
    "reminder_letter_count": {"text": "{value} letter(s) already sent", "format": "count"},
    "reminder_call_count": {"text": "{value} call(s) already made", "format": "count"},
    "reminder_preventive_count": {"text": "{value} preventive reminder(s) sent", "format": "count"},
    "reminder_cordial_count": {"text": "{value} cordial reminder(s) sent", "format": "count"},
    "reminder_firm_count": {"text": "{value} firm reminder(s) sent", "format": "count"},
    "days_since_last_reminder": {
        "text": "Last reminder {value} days ago",
        "missing": "No reminder sent yet",
        "format": "days",
    },
    "promise_count": {"text": "{value} promise(s) to pay on this invoice", "format": "count"},
    "broken_promise_count": {"text": "{value} broken promise(s) to pay", "format": "count"},
    "sector_late_share": {
        "text": "Sector pays {value} of invoices late",
        "missing": "No history for this sector yet",
        "format": "pct",
    },
    "sector_mean_days_late": {
        "text": "Sector pays {value} days late on average",
        "missing": "No history for this sector yet",
        "format": "days",
    },
    "size_late_share": {
        "text": "Companies of this size pay {value} of invoices late",
        "missing": "No history for this company size yet",
        "format": "pct",
    },
    "size_mean_days_late": {
        "text": "Companies of this size pay {value} days late on average",
        "missing": "No history for this company size yet",
        "format": "days",
    },
    "risk_collective_procedure": {"text": "Insolvency proceedings published", "format": "flag"},
    "risk_closure": {"text": "Company closure published", "format": "flag"},
    "risk_open_procedure": {"text": "Insolvency proceedings open", "format": "flag"},
    "risk_recent_director_change": {"text": "Management changed recently", "format": "flag"},
    "risk_recent_head_office_move": {"text": "Head office moved recently", "format": "flag"},
    "risk_accounts_overdue": {"text": "Annual accounts overdue", "format": "flag"},
    "risk_headcount_band": {"text": "At least {value} employees", "missing": "Headcount unknown", "format": "count"},
    "risk_event_count_365d": {"text": "{value} company-risk event(s) in the past year", "format": "count"},
    "risk_days_since_last_event": {
        "text": "Company-risk event published {value} days ago",
        "missing": "No company-risk event known",
        "format": "days",
    },
    "invoice_currency": {"text": "Invoiced in {value}", "format": "text"},
    "document_type": {"text": "Document type {value}", "format": "text"},
    "customer_type": {"text": "{value} customer", "missing": "Customer type unknown", "format": "text"},
    "sector_section": {"text": "Sector {value}", "missing": "Sector unknown", "format": "text"},
    "size_band": {"text": "Company size {value}", "missing": "Company size unknown", "format": "text"},
    "last_reminder_response": {"text": "Last reminder response: {value}", "format": "text"},
}
