{{ config(materialized='table') }}
-- One row per (invoice, as_of_date) for every grid date and every invoice issued on or before it:
-- the balance as known on that date. Payments count if payment_date <= as_of_date, credit notes if
-- issued <= as_of_date, disputes if opened <= as_of_date and not resolved by then.
with

feature_dates as (
    select as_of_date from {{ ref('int_feature_dates') }}
),

invoices as (
    select * from {{ ref('stg_invoices') }}
    where document_type = 'invoice'
),

events as (
    select * from {{ ref('int_invoice_settlement_events') }}
),

disputes as (
    select * from {{ ref('stg_disputes') }}
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
        feature_dates.as_of_date
    from invoices
    inner join feature_dates
        on invoices.issue_date <= feature_dates.as_of_date
),

settled_as_of as (
    select
        invoice_dates.invoice_id,
        invoice_dates.as_of_date,
        sum(case when events.event_type = 'payment' then events.amount else 0 end) as paid_amount,
        sum(case when events.event_type = 'credit_note' then events.amount else 0 end) as credited_amount
    from invoice_dates
    inner join events
        on
            invoice_dates.invoice_id = events.invoice_id
            and invoice_dates.as_of_date >= events.event_date
    group by invoice_dates.invoice_id, invoice_dates.as_of_date
),

disputed_as_of as (
    select distinct
        invoice_dates.invoice_id,
        invoice_dates.as_of_date
    from invoice_dates
    inner join disputes
        on
            invoice_dates.invoice_id = disputes.invoice_id
            and invoice_dates.as_of_date >= disputes.opened_date
            and (disputes.resolved_date is null or invoice_dates.as_of_date < disputes.resolved_date)
),

balances as (
    select
        invoice_dates.invoice_id,
        invoice_dates.as_of_date,
        invoice_dates.customer_id,
        invoice_dates.currency,
        invoice_dates.issue_date,
        invoice_dates.due_date,
        invoice_dates.payment_terms_days,
        invoice_dates.is_end_of_month_terms,
        invoice_dates.amount,
        cast(coalesce(settled_as_of.credited_amount, 0) as decimal(18, 2)) as credited_amount,
        cast(coalesce(settled_as_of.paid_amount, 0) as decimal(18, 2)) as paid_amount,
        cast(
            invoice_dates.amount
            - coalesce(settled_as_of.credited_amount, 0)
            - coalesce(settled_as_of.paid_amount, 0)
            as decimal(18, 2)
        ) as open_amount,
        disputed_as_of.invoice_id is not null as is_disputed,
        case
            when settlement.settled_date <= invoice_dates.as_of_date then settlement.settled_date
        end as settled_date,
        invoice_dates.raw_batch_id
    from invoice_dates
    left join settled_as_of
        on
            invoice_dates.invoice_id = settled_as_of.invoice_id
            and invoice_dates.as_of_date = settled_as_of.as_of_date
    left join disputed_as_of
        on
            invoice_dates.invoice_id = disputed_as_of.invoice_id
            and invoice_dates.as_of_date = disputed_as_of.as_of_date
    left join settlement
        on invoice_dates.invoice_id = settlement.invoice_id
),

final as (
    select
        *,
        open_amount > {{ settlement_tolerance() }} as is_open,
        case
            when open_amount > {{ settlement_tolerance() }}
                then {{ days_between('due_date', 'as_of_date') }}
        end as days_overdue,
        {{ aging_bucket(
            'case when open_amount > ' ~ settlement_tolerance() ~ ' then '
            ~ days_between('due_date', 'as_of_date') ~ ' end'
        ) }} as aging_bucket
    from balances
)

select * from final
