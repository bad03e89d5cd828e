-- Everything that reduces what is due on an invoice, as dated events (all data, no as-of filter):
-- payment allocations on the payment date, credit notes on their issue date against the credited invoice.
with

allocations as (
    select * from {{ ref('int_payments_allocated_to_invoices') }}
),

credit_notes as (
    select * from {{ ref('stg_invoices') }}
    where document_type = 'credit_note' and credited_invoice_id is not null
),

payment_events as (
    select
        invoice_id,
        'payment' as event_type,
        payment_id as event_id,
        payment_date as event_date,
        allocated_amount as amount
    from allocations
),

credit_note_events as (
    select
        credited_invoice_id as invoice_id,
        'credit_note' as event_type,
        invoice_id as event_id,
        issue_date as event_date,
        cast(-amount as decimal(18, 2)) as amount
    from credit_notes
),

events as (
    select * from payment_events
    union all
    select * from credit_note_events
)

select * from events
