-- Every customer (current version) with its open exposure on the run's as_of_date, and what it has paid or
-- been credited that no invoice absorbs (money on account), so that net_open_amount is its ledger balance.
with

customers as (
    select * from {{ ref('stg_customers') }}
),

invoices as (
    select * from {{ ref('invoices') }}
),

exposure as (
    select
        customer_id,
        count(*) as open_invoice_count,
        sum(open_amount) as open_amount,
        sum(case when days_overdue > 0 then open_amount else 0 end) as overdue_amount
    from invoices
    where is_open
    group by customer_id
),

payments as (
    select * from {{ ref('stg_payments') }}
    where payment_date <= {{ as_of_date() }}
),

credit_notes as (
    select * from {{ ref('stg_invoices') }}
    where document_type = 'credit_note' and issue_date <= {{ as_of_date() }}
),

-- allocations count as applied only when their invoice is in the mart (issued by as_of_date)
applied_payments as (
    select
        allocated.payment_id,
        sum(allocated.allocated_amount) as applied_amount
    from {{ ref('int_payments_allocated_to_invoices') }} as allocated
    inner join invoices
        on allocated.invoice_id = invoices.invoice_id
    where allocated.payment_date <= {{ as_of_date() }}
    group by allocated.payment_id
),

unallocated_credits as (
    -- the part of each payment no invoice absorbs
    select
        payments.customer_id,
        payments.amount - coalesce(applied_payments.applied_amount, 0) as amount
    from payments
    left join applied_payments
        on payments.payment_id = applied_payments.payment_id
    union all
    -- credit notes that credit no invoice of the mart
    select
        credit_notes.customer_id,
        -credit_notes.amount as amount
    from credit_notes
    left join invoices
        on credit_notes.credited_invoice_id = invoices.invoice_id
    where invoices.invoice_id is null
    union all
    -- what an over-settled invoice received beyond its amount
    select
        customer_id,
        -open_amount as amount
    from invoices
    where open_amount < 0
),

unallocated as (
    select
        customer_id,
        sum(amount) as unallocated_credit_amount
    from unallocated_credits
    group by customer_id
),

final as (
    select
        customers.customer_id,
        {{ as_of_date() }} as as_of_date,
        customers.customer_name,
        customers.customer_type,
        customers.siren,
        customers.company_number,
        customers.naf_code,
        customers.sector_section,
        customers.size_band,
        customers.region,
        customers.address_line1,
        customers.address_line2,
        customers.postal_code,
        customers.city,
        customers.language,  -- noqa: RF04
        customers.country_code,
        customers.email,
        customers.phone,
        customers.credit_limit,
        customers.currency,
        customers.payment_terms_days,
        customers.is_end_of_month_terms,
        customers.created_date,
        cast(coalesce(exposure.open_invoice_count, 0) as integer) as open_invoice_count,
        cast(coalesce(exposure.open_amount, 0) as decimal(18, 2)) as open_amount,
        cast(coalesce(exposure.overdue_amount, 0) as decimal(18, 2)) as overdue_amount,
        coalesce(exposure.open_amount, 0) > customers.credit_limit as is_over_credit_limit,
        cast(coalesce(unallocated.unallocated_credit_amount, 0) as decimal(18, 2)) as unallocated_credit_amount,
        cast(
            coalesce(exposure.open_amount, 0) - coalesce(unallocated.unallocated_credit_amount, 0)
            as decimal(18, 2)
        ) as net_open_amount,
        customers.raw_batch_id
    from customers
    left join exposure
        on customers.customer_id = exposure.customer_id
    left join unallocated
        on customers.customer_id = unallocated.customer_id
)

select * from final
