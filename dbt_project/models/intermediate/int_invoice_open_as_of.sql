{{ config(materialized='table') }}
-- One row per (invoice, as_of_date) for the dates this run builds (int_feature_dates.needs_build) and every
-- invoice open on that date: issued on or before it and not settled by it. The bound is what keeps the build
-- linear: a long-settled invoice costs nothing on later dates. The state comes from facts known on the date
-- (macro invoice_state_as_of).
with

dates_to_build as (
    select as_of_date from {{ ref('int_feature_dates') }}
    where needs_build
),

invoices as (
    select * from {{ ref('stg_invoices') }}
    where document_type = 'invoice'
),

settlement as (
    select
        invoice_id,
        settled_date
    from {{ ref('int_invoice_settlement_dates') }}
),

invoice_dates as (
    select
        invoices.*,
        dates_to_build.as_of_date
    from invoices
    inner join settlement
        on invoices.invoice_id = settlement.invoice_id
    inner join dates_to_build
        on
            invoices.issue_date <= dates_to_build.as_of_date
            and coalesce(settlement.settled_date, date '9999-12-31') > dates_to_build.as_of_date
),

state as (
    {{ invoice_state_as_of('invoice_dates') }}
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
