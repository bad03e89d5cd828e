-- Each allocation of a payment to an invoice, dated by the payment's value date.
with

allocations as (
    select * from {{ ref('stg_payment_allocations') }}
),

payments as (
    select * from {{ ref('stg_payments') }}
),

allocated as (
    select
        allocations.invoice_id,
        allocations.payment_id,
        payments.customer_id,
        payments.payment_date,
        allocations.allocated_amount
    from allocations
    inner join payments
        on allocations.payment_id = payments.payment_id
)

select * from allocated
