{{ config(materialized='table') }}
-- Outcomes of the training rows: every row of ml_invoice_features on a grid (training) date, rebuilt each run
-- because outcomes keep arriving. Uses ALL data on purpose, and nothing here is ever a feature.
-- is_late_30d: the invoice was still not fully settled horizon_days after the later of its due date and the
-- as-of date (lateness for an invoice not yet due, "still unpaid in a month" for an overdue one). The label can
-- be observed on label_observed_date; only rows observed by the run's as-of date may train.
{%- set horizon_days = positive_int_var('horizon_days') %}

with

grid_dates as (
    select as_of_date from {{ ref('int_feature_dates') }}
    where not is_scoring_date
),

feature_rows as (
    select
        features.invoice_id,
        features.as_of_date,
        features.due_date,
        features.open_amount_ccy,
        {{ add_days('greatest(features.due_date, features.as_of_date)', horizon_days) }} as label_observed_date,
        {{ add_days('features.as_of_date', horizon_days) }} as horizon_end_date
    from {{ ref('ml_invoice_features') }} as features
    inner join grid_dates
        on features.as_of_date = grid_dates.as_of_date
),

settlement as (
    select * from {{ ref('int_invoice_settlement_dates') }}
),

paid_in_horizon as (
    select
        feature_rows.invoice_id,
        feature_rows.as_of_date,
        sum(events.amount) as amount
    from feature_rows
    inner join {{ ref('int_invoice_settlement_events') }} as events
        on
            feature_rows.invoice_id = events.invoice_id
            and events.event_type = 'payment'
            and feature_rows.as_of_date < events.event_date
            and feature_rows.horizon_end_date >= events.event_date
    group by feature_rows.invoice_id, feature_rows.as_of_date
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
        case
            when settlement.settled_date is not null
                then {{ days_between('feature_rows.as_of_date', 'settlement.settled_date') }}
        end as days_to_settle,
        case
            when settlement.settled_date <= feature_rows.horizon_end_date then 1 else 0
        end as is_paid_within_horizon,
        cast(coalesce(paid_in_horizon.amount, 0) as decimal(18, 2)) as amount_paid_within_horizon,
        feature_rows.open_amount_ccy as open_amount_at_as_of,
        feature_rows.label_observed_date,
        feature_rows.label_observed_date <= {{ as_of_date() }} as is_label_known
    from feature_rows
    left join settlement
        on feature_rows.invoice_id = settlement.invoice_id
    left join paid_in_horizon
        on
            feature_rows.invoice_id = paid_in_horizon.invoice_id
            and feature_rows.as_of_date = paid_in_horizon.as_of_date
)

select * from final
