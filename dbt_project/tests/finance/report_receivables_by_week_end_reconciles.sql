-- On the run's as_of_date the trend's balance is the ledger's: per currency, receivables and invoice count equal the
-- open invoices of marts.invoices, and current_receivables their 'not_due' bucket. Returns the currencies that differ.
with

trend as (
    select * from {{ ref('report_receivables_by_week_end') }}
    where is_as_of_date
),

ledger as (
    select
        currency,
        sum(open_amount) as open_amount,
        sum(case when aging_bucket = 'not_due' then open_amount else 0 end) as not_due_amount,
        count(*) as invoice_count
    from {{ ref('invoices') }}
    where is_open
    group by currency
)

select
    trend.currency,
    trend.receivables,
    trend.current_receivables,
    trend.open_invoice_count,
    ledger.open_amount,
    ledger.not_due_amount,
    ledger.invoice_count
from trend
left join ledger
    on trend.currency = ledger.currency
where
    trend.receivables <> coalesce(ledger.open_amount, 0)
    or trend.current_receivables <> coalesce(ledger.not_due_amount, 0)
    or trend.open_invoice_count <> coalesce(ledger.invoice_count, 0)
