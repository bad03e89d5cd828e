-- Everything that reduces what is due on an invoice, as known over time: one row per version of a settlement event
-- with the span of as-of dates [known_from, known_until) on which it is known (stg_*_versions, macro raw_versions).
-- A payment allocation is known from the latest of the payment's date, the load of its allocation version and the
-- load of its payment version (a payment booked late is known from its load, not its value date), until either
-- version is replaced; a credit note from the latest of its issue date and the load of its version. Rows of the
-- history import are known from their business date. int_invoice_settlement_events is the same over current rows.
with

allocations as (
    select * from {{ ref('stg_payment_allocation_versions') }}
    where not is_deleted
),

payments as (
    select * from {{ ref('stg_payment_versions') }}
    where not is_deleted
),

credit_notes as (
    select * from {{ ref('stg_invoice_versions') }}
    where not is_deleted and document_type = 'credit_note' and credited_invoice_id is not null
),

payment_events as (
    select
        allocations.invoice_id,
        'payment' as event_type,
        allocations.payment_id as event_id,
        payments.payment_date as event_date,
        allocations.allocated_amount as amount,
        greatest(payments.payment_date, payments.known_from, allocations.known_from) as known_from,
        least(payments.known_until, allocations.known_until) as known_until
    from allocations
    inner join payments
        on
            allocations.payment_id = payments.payment_id
            and allocations.known_until > payments.known_from
            and allocations.known_from < payments.known_until
),

credit_note_events as (
    select
        credited_invoice_id as invoice_id,
        'credit_note' as event_type,
        invoice_id as event_id,
        issue_date as event_date,
        cast(-amount as decimal(18, 2)) as amount,
        greatest(issue_date, known_from) as known_from,
        known_until
    from credit_notes
),

events as (
    select * from payment_events
    union all
    select * from credit_note_events
)

select * from events
where known_from < known_until
