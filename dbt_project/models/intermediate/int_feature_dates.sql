{{ config(materialized='table') }}
-- The as-of grid: first invoice issue_date + history_start_days, then every snapshot_interval_days, strictly
-- before the run's as_of_date (the training snapshots); plus as_of_date itself (the scoring snapshot).
-- needs_build: the dates this run computes. ml_invoice_features is incremental, so a grid date already in it
-- is not rebuilt; the scoring date always is. Every *_as_of model computes only the dates that need a build.
{%- set history_start_days = positive_int_var('history_start_days') %}
{%- set snapshot_interval_days = positive_int_var('snapshot_interval_days') | int %}
{#- enough steps for 40 years of history at any interval; the series is filtered to the as-of date below -#}
{%- set max_steps = (40 * 366) // snapshot_interval_days + 1 %}
{%- set built = built_features_relation() %}

with

first_invoice as (
    select
        {{ add_days('min(issue_date)', history_start_days) }} as first_as_of_date
    from {{ ref('stg_invoices') }}
    where document_type = 'invoice'
),

steps as (
    {{ dbt.generate_series(max_steps) }}
),

grid_steps as (
    select
        {{ add_days(
            'first_invoice.first_as_of_date',
            '(steps.generated_number - 1) * ' ~ snapshot_interval_days
        ) }} as as_of_date
    from first_invoice
    cross join steps
    where first_invoice.first_as_of_date is not null
),

history_dates as (
    select as_of_date from grid_steps
    where as_of_date < {{ as_of_date() }}
),

all_dates as (
    select
        as_of_date,
        false as is_scoring_date
    from history_dates
    union all
    select
        {{ as_of_date() }} as as_of_date,
        true as is_scoring_date
),

built_dates as (
    {% if built is not none -%}
        select distinct as_of_date from {{ built }}
    {%- else -%}
        select cast(null as date) as as_of_date
        where 1 = 0
    {%- endif %}
),

final as (
    select
        all_dates.as_of_date,
        all_dates.is_scoring_date,
        all_dates.is_scoring_date or built_dates.as_of_date is null as needs_build
    from all_dates
    left join built_dates
        on all_dates.as_of_date = built_dates.as_of_date
)

select * from final
