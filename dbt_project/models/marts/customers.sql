-- Every customer (current version) with its open exposure on the run's as_of_date.
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

final as (
    select
        customers.customer_id,
        {{ as_of_date() }} as as_of_date,
        customers.customer_name,
        customers.customer_type,
        customers.siren,
        customers.naf_code,
        customers.sector_section,
        customers.size_band,
        customers.region,
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
        customers.raw_batch_id
    from customers
    left join exposure
        on customers.customer_id = exposure.customer_id
)

select * from final
