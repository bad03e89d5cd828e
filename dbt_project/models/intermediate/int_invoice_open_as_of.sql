{{ config(materialized='table') }}
-- One row per (invoice, as_of_date) for the dates this run builds (int_feature_dates.needs_build) and every
-- invoice open on that date as it was known then: the span of int_invoice_states_known holding the date (the
-- invoice's version and settlement events known on it: amendments from their load date, a payment booked late
-- from its load), issued on or before it and not settled. Only open spans are joined with the dates: a settled
-- invoice costs nothing on later dates, so the build stays linear. Disputes known on the date through the macro
-- invoice_state_as_of (the same definition the marts use over current rows).
with

dates_to_build as (
    select as_of_date from {{ ref('int_feature_dates') }}
    where needs_build
),

open_spans as (
    select * from {{ ref('int_invoice_states_known') }}
    where settled_date is null and open_amount > {{ settlement_tolerance() }}
),

invoice_dates as (
    select
        open_spans.*,
        dates_to_build.as_of_date
    from open_spans
    inner join dates_to_build
        on
            open_spans.known_from <= dates_to_build.as_of_date
            and open_spans.known_until > dates_to_build.as_of_date
            and open_spans.issue_date <= dates_to_build.as_of_date
),

state as (
    {{ invoice_state_as_of('invoice_dates', known_from_loads=true) }}
),

final as (
    select
        *,
        {{ days_between('due_date', 'as_of_date') }} as days_overdue,
        {{ aging_bucket(days_between('due_date', 'as_of_date')) }} as aging_bucket
    from state
    where open_amount > {{ settlement_tolerance() }}
)

select * from final
