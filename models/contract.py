"""The columns Python relies on in the dbt ML relations.

dbt enforces these with model contracts (dbt_project/models/ml/_ml__models.yml); models/ reads only the
columns named here, so an outcome column can never slip into training by accident. Python never computes a
feature: it reads ``ml_invoice_features`` as dbt built it, for training and scoring alike.
"""

from __future__ import annotations

FEATURES_RELATION = "ml.ml_invoice_features"
LABELS_RELATION = "ml.ml_invoice_labels"

KEY_COLUMNS: tuple[str, ...] = ("invoice_id", "customer_id", "as_of_date")

# Not features: carried along so predictions can be priced and traced.
CONTEXT_COLUMNS: tuple[str, ...] = ("currency", "issue_date", "due_date", "open_amount_ccy")

NUMERIC_FEATURES: tuple[str, ...] = (
    "amount",  # invoice amount (tax incl.)
    "open_amount",  # still due as of the date, after payments and credit notes known then
    "open_share",  # open_amount / amount
    "payment_terms_days",
    "is_end_of_month_terms",  # 0/1
    "days_to_due",  # due_date - as_of_date; negative when overdue
    "invoice_age_days",  # as_of_date - issue_date
    "issue_month",  # 1..12 (seasonality: August, year end)
    "is_disputed",  # 0/1, a dispute open on the date
    "cust_settled_invoice_count",  # customer invoices fully paid before the date
    "cust_late_share",  # share of those paid after their due date
    "cust_mean_days_late",
    "cust_median_days_late",
    "cust_days_since_last_payment",
    "cust_open_amount",
    "cust_open_invoice_count",
    "cust_credit_limit_usage",  # cust_open_amount / credit_limit
    "cust_partial_payment_share",  # share of settled invoices paid in more than one payment
    "cust_tenure_days",
    "reminder_count",  # reminders on this invoice sent before the date
    "days_since_last_reminder",
    "promise_count",
    "broken_promise_count",  # promised date passed before the date with the invoice still open
)
CATEGORICAL_FEATURES: tuple[str, ...] = ("customer_type", "sector_section", "size_band")
FEATURE_COLUMNS: tuple[str, ...] = NUMERIC_FEATURES + CATEGORICAL_FEATURES

LABEL_COLUMNS: tuple[str, ...] = (
    "invoice_id",
    "as_of_date",
    "is_late_30d",  # 0/1: not fully paid by label_observed_date
    "days_late",  # settled_date - due_date once settled (null while unsettled)
    "settled_date",
    "label_observed_date",  # greatest(due_date, as_of_date) + horizon_days: when the label becomes known
    "is_label_known",  # label_observed_date <= the run's as-of date: only these rows may train
)
TARGET = "is_late_30d"
PREDICTION = "p_late_30d"
