-- The as-of grid: first invoice issue_date + history_start_days, then every snapshot_interval_days,
-- strictly before the run's as_of_date; plus as_of_date itself (the scoring date).
{%- set history_start_days = positive_int_var('history_start_days') %}
{%- set snapshot_interval_days = positive_int_var('snapshot_interval_days') %}

with

first_invoice as (
    select
        min(issue_date) + {{ history_start_days }} as first_as_of_date
    from {{ ref('stg_invoices') }}
    where document_type = 'invoice'
),

history_dates as (
    select
        cast(
            first_as_of_date + cast(
                unnest(
                    range(
                        0,
                        greatest(date_diff('day', first_as_of_date, {{ as_of_date() }}), 0),
                        {{ snapshot_interval_days }}
                    )
                ) as integer
            ) as date
        ) as as_of_date
    from first_invoice
    where first_as_of_date is not null
),

all_dates as (
    select as_of_date from history_dates
    union
    select {{ as_of_date() }} as as_of_date
),

final as (
    select
        as_of_date,
        as_of_date = {{ as_of_date() }} as is_scoring_date
    from all_dates
)

select * from final
