-- Labels for the rows of ml_invoice_features (same grain, same rows). Uses ALL data on purpose: whether the
-- invoice was still not fully settled horizon_days after the later of its due date and the as-of date
-- (lateness for an invoice not yet due, "still unpaid in a month" for an overdue one). The label can be
-- observed on label_observed_date; only rows observed by the run's as-of date may train.
{%- set horizon_days = positive_int_var('horizon_days') %}

with

feature_rows as (
    select
        invoice_id,
        as_of_date,
        greatest(due_date, as_of_date) + {{ horizon_days }} as label_observed_date
    from {{ ref('ml_invoice_features') }}
),

settlement as (
    select * from {{ ref('int_invoice_settlement_dates') }}
),

final as (
    select
        feature_rows.invoice_id,
        feature_rows.as_of_date,
        case
            when
                settlement.settled_date is null
                or settlement.settled_date > feature_rows.label_observed_date
                then 1
            else 0
        end as is_late_30d,
        settlement.days_late,
        settlement.settled_date,
        feature_rows.label_observed_date,
        feature_rows.label_observed_date <= {{ as_of_date() }} as is_label_known
    from feature_rows
    left join settlement
        on feature_rows.invoice_id = settlement.invoice_id
)

select * from final
