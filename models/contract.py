"""The columns Python relies on in the dbt ML relations.

dbt enforces these with model contracts (dbt_project/models/ml/_ml__models.yml, kept equal to this module by
``tests/integration/test_dbt_project.py``); models/ reads only the columns named here, so an outcome column can
never slip into training by accident. Python never computes a feature: it reads ``ml_invoice_features`` as dbt
built it, for training and scoring alike.

Every feature is known on its row's ``as_of_date``: payments and credit notes dated on or before it, reminders
sent and responses received before it (midnight UTC), history from invoices settled strictly before it, risk
events published on or before it and registry profiles observed on or before it (each loaded by then, unless it came
with its source's first load). Counts are 0 and means/ratios null when there is nothing to count.
"""

from __future__ import annotations

from relance.targets import (  # noqa: F401 -- re-exported: the target is part of the ML contract
    DEFAULT_TARGET_KIND,
    TARGET_KIND_DOCS,
    TARGET_KINDS,
    target_name,
)

FEATURES_RELATION = "ml.ml_invoice_features"
LABELS_RELATION = "ml.ml_invoice_labels"

KEY_COLUMNS: tuple[str, ...] = ("invoice_id", "customer_id", "as_of_date")

# Not features: carried along so predictions can be priced and traced.
CONTEXT_COLUMNS: tuple[str, ...] = ("currency", "issue_date", "due_date", "open_amount_ccy")

# name -> what it is. Numeric features are float8 (0/1 flags included).
NUMERIC_FEATURE_DOCS: dict[str, str] = {
    # invoice
    "amount": "Invoice amount (tax incl.).",
    "open_amount": "Still due on as_of_date, after the payments and credit notes dated on or before it.",
    "open_share": "open_amount / amount.",
    "payment_terms_days": "Payment terms in days.",
    "is_end_of_month_terms": "1 for end-of-month terms ('45 jours fin de mois'), else 0.",
    "days_to_due": "due_date - as_of_date; negative when overdue.",
    "invoice_age_days": "as_of_date - issue_date.",
    "issue_month": "Month of the issue date, 1..12 (seasonality: August, year end).",
    "due_month": "Month of the due date, 1..12 (seasonality of the payment run).",
    "invoice_payment_count": "Payments allocated to this invoice on or before as_of_date (partial payments).",
    "is_disputed": "1 if a dispute is open on as_of_date, else 0.",
    "dispute_count": "Disputes opened on this invoice on or before as_of_date.",
    # customer history
    "cust_settled_invoice_count": "Customer invoices fully settled before as_of_date (0 when none).",
    "cust_late_invoice_count": "Of those, settled after their due date.",
    "cust_late_share": "cust_late_invoice_count / cust_settled_invoice_count; null without history.",
    "cust_mean_days_late": "Mean days late (settled_date - due_date) of those invoices; null without history.",
    "cust_median_days_late_365d": "Median days late of the invoices settled in the 365 days before as_of_date.",
    "cust_ew_mean_days_late": "Exponentially weighted mean days late (half-life 90 days by settled date).",
    "cust_recent_mean_days_late": "Mean days late of the invoices settled in the 90 days before as_of_date.",
    "cust_days_late_trend": "Recent (90 days) minus prior mean days late; > 0 means paying later lately.",
    "cust_partial_payment_share": "Share of settled invoices settled by more than one payment; null without history.",
    "cust_days_since_last_payment": "as_of_date - the customer's last payment_date on or before it; null if none.",
    "cust_open_amount": "Customer's open amount on as_of_date (this invoice included).",
    "cust_open_invoice_count": "Customer's open invoices on as_of_date (this invoice included).",
    "cust_overdue_invoice_count": "Of those, past their due date.",
    "cust_credit_limit_usage": "cust_open_amount / credit_limit; null without a credit limit.",
    "cust_tenure_days": "as_of_date - customer created_date.",
    # reminder history of the invoice
    "reminder_count": "Reminders on this invoice sent before as_of_date.",
    "reminder_email_count": "Of those, by e-mail.",
    "reminder_sms_count": "Of those, by SMS.",
    "reminder_letter_count": "Of those, by letter.",
    "reminder_call_count": "Of those, by phone call.",
    "reminder_preventive_count": "Of those, in the preventive tone.",
    "reminder_cordial_count": "Of those, in the cordial tone.",
    "reminder_firm_count": "Of those, in the firm tone.",
    "days_since_last_reminder": "as_of_date - date of the last of those reminders; null if none.",
    "promise_count": "Promises to pay on this invoice received before as_of_date.",
    "broken_promise_count": "Of those, promises whose promised date is before as_of_date (the invoice is still open).",
    # priors
    "sector_late_share": "Late share of all invoices of the customer's NAF section settled before as_of_date.",
    "sector_mean_days_late": "Mean days late of those invoices.",
    "size_late_share": "Late share of all invoices of the customer's size band settled before as_of_date.",
    "size_mean_days_late": "Mean days late of those invoices.",
    # external company risk
    "risk_collective_procedure": (
        "1 if a collective procedure judgment (opening or conversion) on the customer was published on or "
        "before as_of_date."
    ),
    "risk_closure": "1 if a closure (strike-off, dissolution) of the customer was published on or before as_of_date.",
    "risk_event_count_365d": "Company-risk events published in the 365 days up to as_of_date.",
    "risk_days_since_last_event": "as_of_date - publication date of the last risk event; null if none.",
    "risk_open_procedure": (
        "1 if a collective procedure is open on as_of_date: the latest opening, conversion or plan published "
        "by then is later than the latest closing judgment, else 0."
    ),
    "risk_recent_director_change": (
        "1 if a director change was published in the risk_recent_days days up to as_of_date, else 0."
    ),
    "risk_recent_head_office_move": (
        "1 if a head-office move was published in the risk_recent_days days up to as_of_date, else 0."
    ),
    "risk_accounts_overdue": (
        "1 if the customer's accounts are overdue as known on as_of_date (registry profile, overdue notice "
        "newer than the last filing, or last fiscal year filed ended over 18 months before), else 0."
    ),
    "risk_headcount_band": (
        "Employees, the lower bound of the INSEE headcount band of the latest registry profile observed on or "
        "before as_of_date; null for 'NN' or unknown."
    ),
}
CATEGORICAL_FEATURE_DOCS: dict[str, str] = {
    "invoice_currency": "ISO 4217 currency of the invoice.",
    "document_type": "Document type ('invoice'; credit notes are netted, not scored).",
    "customer_type": "'B2B' | 'B2C'.",
    "sector_section": "NAF section letter; null for B2C.",
    "size_band": "Company size band; null for B2C.",
    "last_reminder_response": (
        "Response to the latest reminder sent before as_of_date as known then: 'none' (also when answered "
        "later), 'promise_to_pay', 'dispute', 'paid', 'no_reminder'."
    ),
}
NUMERIC_FEATURES: tuple[str, ...] = tuple(NUMERIC_FEATURE_DOCS)
CATEGORICAL_FEATURES: tuple[str, ...] = tuple(CATEGORICAL_FEATURE_DOCS)
FEATURE_COLUMNS: tuple[str, ...] = NUMERIC_FEATURES + CATEGORICAL_FEATURES
LINEAGE_COLUMNS: tuple[str, ...] = ("dbt_invocation_id",)

# What "late" means is a setting; relance/targets.py names it (target_name) for labels, MLflow and predictions.

LABEL_COLUMNS: tuple[str, ...] = (
    "invoice_id",
    "as_of_date",
    "target_name",  # target_name(kind, days) of the run that built the labels
    "is_late",  # 0/1 under that target, as observable on label_observed_date
    "days_late",  # settled_date - due_date once settled (null while unsettled; negative when paid early)
    "settled_date",
    "days_to_settle",  # settled_date - as_of_date (null while unsettled)
    "is_paid_within_horizon",  # 0/1: fully settled within horizon_days after as_of_date
    "amount_paid_within_horizon",  # payments dated in (as_of_date, as_of_date + horizon_days]
    "open_amount_at_as_of",  # what was open on as_of_date (the denominator of amount_paid_within_horizon)
    "label_observed_date",  # the day is_late becomes known whatever happens (see ml_invoice_labels.sql)
    "is_label_known",  # label_observed_date <= the run's as-of date: only these rows may train
)
TARGET = "is_late"
DAYS_LATE = "days_late"  # the regression label: only settled rows, known from settled_date

# What a model returns for each row (the pyfunc's output, ops.predictions, the worklist):
PREDICTION = "p_late"  # calibrated probability of the positive class of the model's target
QUANTILES: tuple[float, ...] = (0.1, 0.5, 0.9)
QUANTILE_COLUMNS: tuple[str, ...] = ("days_late_p10", "days_late_p50", "days_late_p90")  # settled - due, days
REASON_COLUMNS: tuple[str, ...] = ("reason_1", "reason_2", "reason_3")  # top drivers towards late, plain words
OUTPUT_COLUMNS: tuple[str, ...] = (PREDICTION, *QUANTILE_COLUMNS, *REASON_COLUMNS)
