{{ config(materialized='table') }}
-- Outcomes of the training rows: every row of ml_invoice_features on a grid (training) date, rebuilt each run
-- because outcomes keep arriving. Uses ALL data on purpose, and nothing here is ever a feature.
-- is_late follows the target the settings name (vars target_kind, target_days; models/contract.py):
--   unpaid_after_due: not fully settled target_days after the later of the due date and the as-of date;
--   unpaid_after:     not fully settled target_days after the as-of date;
--   late_over:        settled more than target_days after the due date, or not at all.
-- label_observed_date is the day the label is known whatever happens: the end of its window (the day after it
-- for late_over, whose window includes due_date + N). It never depends on the outcome (an early payment does not
-- make a row known sooner), so choosing rows by it cannot favour one class. Only rows observed by the run's as-of
-- date may train; days_late may train a regression once settled_date is on or before the cutoff.
{%- set horizon_days = positive_int_var('horizon_days') %}
{%- set kind = target_kind_var() | trim %}
{%- set target_days = non_negative_int_var('target_days') | trim %}
{%- if kind == 'unpaid_after_due' %}
    {%- set label_end = add_days('greatest(features.due_date, features.as_of_date)', target_days) %}
    {%- set observed = label_end %}
{%- elif kind == 'unpaid_after' %}
    {%- set label_end = add_days('features.as_of_date', target_days) %}
    {%- set observed = label_end %}
{%- else %}
    {%- set label_end = add_days('features.due_date', target_days) %}
    {%- set observed = 'greatest(' ~ add_days('features.due_date', (target_days | int) + 1) ~ ', features.as_of_date)' %}
{%- endif %}

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
        {{ label_end }} as label_end_date,
        {{ observed }} as label_observed_date,
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
        cast('{{ target_name(kind, target_days) | trim }}' as varchar) as target_name,
        case
            when
                settlement.settled_date is null
                or settlement.settled_date > feature_rows.label_end_date
                then 1
            else 0
        end as is_late,
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
