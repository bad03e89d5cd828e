-- Aged balance on the run's as_of_date per currency and customer: the open amount of its open invoices
-- (marts.invoices) in each aging bucket, with the customer's segment (customer_type, size_band) and sector
-- (sector_section) from marts.customers so that the report can group it. Only customers with an open invoice.
-- Per currency, total_open adds up to report_aged_balance and to the open invoices of marts.invoices (data test).
with

invoices as (
    select * from {{ ref('invoices') }}
    where is_open
),

customers as (
    select * from {{ ref('customers') }}
),

per_customer as (
    select
        currency,
        customer_id,
        count(*) as invoice_count,
        sum(case when aging_bucket = 'not_due' then open_amount else 0 end) as not_due,
        sum(case when aging_bucket = '1-30' then open_amount else 0 end) as d1_30,
        sum(case when aging_bucket = '31-60' then open_amount else 0 end) as d31_60,
        sum(case when aging_bucket = '61-90' then open_amount else 0 end) as d61_90,
        sum(case when aging_bucket = '90+' then open_amount else 0 end) as d90_plus,
        sum(open_amount) as total_open,
        sum(case when is_disputed then open_amount else 0 end) as disputed_amount,
        max(days_overdue) as max_days_overdue
    from invoices
    group by currency, customer_id
),

final as (
    select
        {{ as_of_date() }} as as_of_date,
        per_customer.currency,
        per_customer.customer_id,
        customers.customer_name,
        customers.customer_type,
        customers.size_band,
        customers.sector_section,
        customers.country_code,
        cast(per_customer.not_due as decimal(18, 2)) as not_due,
        cast(per_customer.d1_30 as decimal(18, 2)) as d1_30,
        cast(per_customer.d31_60 as decimal(18, 2)) as d31_60,
        cast(per_customer.d61_90 as decimal(18, 2)) as d61_90,
        cast(per_customer.d90_plus as decimal(18, 2)) as d90_plus,
        cast(per_customer.total_open as decimal(18, 2)) as total_open,
        cast(per_customer.total_open - per_customer.not_due as decimal(18, 2)) as overdue_amount,
        cast(per_customer.disputed_amount as decimal(18, 2)) as disputed_amount,
        cast(per_customer.invoice_count as integer) as invoice_count,
        cast(per_customer.max_days_overdue as integer) as max_days_overdue
    from per_customer
    left join customers
        on per_customer.customer_id = customers.customer_id
)

select * from final
