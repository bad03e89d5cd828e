-- The aged balance by customer adds up, per currency, to the open receivables of marts.invoices and to
-- report_aged_balance, bucket by bucket; its overdue part to report_late_payment_cost.overdue_amount. Returns the
-- currencies where any of them differ (a failing row names the figures).
with

by_customer as (
    select
        currency,
        sum(total_open) as total_open,
        sum(not_due) as not_due,
        sum(d1_30) as d1_30,
        sum(d31_60) as d31_60,
        sum(d61_90) as d61_90,
        sum(d90_plus) as d90_plus,
        sum(overdue_amount) as overdue_amount,
        sum(invoice_count) as invoice_count
    from {{ ref('report_aged_balance_by_customer') }}
    group by currency
),

ledger as (
    select
        currency,
        sum(open_amount) as open_amount,
        count(*) as invoice_count
    from {{ ref('invoices') }}
    where is_open
    group by currency
),

by_bucket as (
    select
        currency,
        sum(open_amount) as total_open,
        sum(case when aging_bucket = 'not_due' then open_amount else 0 end) as not_due,
        sum(case when aging_bucket = '1-30' then open_amount else 0 end) as d1_30,
        sum(case when aging_bucket = '31-60' then open_amount else 0 end) as d31_60,
        sum(case when aging_bucket = '61-90' then open_amount else 0 end) as d61_90,
        sum(case when aging_bucket = '90+' then open_amount else 0 end) as d90_plus
    from {{ ref('report_aged_balance') }}
    group by currency
),

late_cost as (
    select * from {{ ref('report_late_payment_cost') }}
),

compared as (
    select
        coalesce(by_bucket.currency, ledger.currency, by_customer.currency) as currency,
        coalesce(by_customer.total_open, 0) as by_customer_total_open,
        coalesce(ledger.open_amount, 0) as ledger_open_amount,
        coalesce(by_bucket.total_open, 0) as by_bucket_total_open,
        coalesce(by_customer.invoice_count, 0) as by_customer_invoice_count,
        coalesce(ledger.invoice_count, 0) as ledger_invoice_count,
        coalesce(by_customer.not_due, 0) = coalesce(by_bucket.not_due, 0)
        and coalesce(by_customer.d1_30, 0) = coalesce(by_bucket.d1_30, 0)
        and coalesce(by_customer.d31_60, 0) = coalesce(by_bucket.d31_60, 0)
        and coalesce(by_customer.d61_90, 0) = coalesce(by_bucket.d61_90, 0)
        and coalesce(by_customer.d90_plus, 0) = coalesce(by_bucket.d90_plus, 0) as buckets_match,
        coalesce(by_customer.overdue_amount, 0) as by_customer_overdue_amount,
        coalesce(late_cost.overdue_amount, 0) as late_cost_overdue_amount
    from by_bucket
    full outer join ledger
        on by_bucket.currency = ledger.currency
    full outer join by_customer
        on coalesce(by_bucket.currency, ledger.currency) = by_customer.currency
    left join late_cost
        on coalesce(by_bucket.currency, ledger.currency, by_customer.currency) = late_cost.currency
)

select * from compared
where
    by_customer_total_open <> ledger_open_amount
    or by_customer_total_open <> by_bucket_total_open
    or by_customer_invoice_count <> ledger_invoice_count
    or not buckets_match
    or by_customer_overdue_amount <> late_cost_overdue_amount
