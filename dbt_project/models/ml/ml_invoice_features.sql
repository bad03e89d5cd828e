-- Training and scoring rows: one per (invoice, as_of_date) for every grid date and every invoice open on
-- it (open_amount > tolerance). Each feature uses only facts known on the row's as_of_date; the columns are
-- the contract in models/contract.py (enforced in _ml__models.yml).
with

open_invoices as (
    select * from {{ ref('int_invoice_balances_as_of') }}
    where is_open
),

customers as (
    select * from {{ ref('stg_customers') }}
),

history as (
    select * from {{ ref('int_customer_history_as_of') }}
),

reminders as (
    select * from {{ ref('int_invoice_reminders_as_of') }}
),

final as (
    select
        -- keys
        open_invoices.invoice_id,
        open_invoices.customer_id,
        open_invoices.as_of_date,
        -- context (not features)
        open_invoices.currency,
        open_invoices.issue_date,
        open_invoices.due_date,
        cast(open_invoices.open_amount as decimal(18, 2)) as open_amount_ccy,
        -- numeric features
        cast(open_invoices.amount as double) as amount,
        cast(open_invoices.open_amount as double) as open_amount,
        cast(open_invoices.open_amount / nullif(open_invoices.amount, 0) as double) as open_share,
        cast(open_invoices.payment_terms_days as double) as payment_terms_days,
        cast(cast(open_invoices.is_end_of_month_terms as integer) as double) as is_end_of_month_terms,
        cast({{ days_between('open_invoices.as_of_date', 'open_invoices.due_date') }} as double) as days_to_due,
        cast(
            {{ days_between('open_invoices.issue_date', 'open_invoices.as_of_date') }} as double
        ) as invoice_age_days,
        cast(month(open_invoices.issue_date) as double) as issue_month,
        cast(cast(open_invoices.is_disputed as integer) as double) as is_disputed,
        cast(coalesce(history.settled_invoice_count, 0) as double) as cust_settled_invoice_count,
        history.late_share as cust_late_share,
        history.mean_days_late as cust_mean_days_late,
        history.median_days_late as cust_median_days_late,
        cast(
            {{ days_between('history.last_payment_date', 'open_invoices.as_of_date') }} as double
        ) as cust_days_since_last_payment,
        cast(history.open_amount as double) as cust_open_amount,
        cast(history.open_invoice_count as double) as cust_open_invoice_count,
        cast(history.open_amount / nullif(customers.credit_limit, 0) as double) as cust_credit_limit_usage,
        history.partial_payment_share as cust_partial_payment_share,
        cast(
            {{ days_between('customers.created_date', 'open_invoices.as_of_date') }} as double
        ) as cust_tenure_days,
        cast(coalesce(reminders.reminder_count, 0) as double) as reminder_count,
        cast(reminders.days_since_last_reminder as double) as days_since_last_reminder,
        cast(coalesce(reminders.promise_count, 0) as double) as promise_count,
        cast(coalesce(reminders.broken_promise_count, 0) as double) as broken_promise_count,
        -- categorical features
        customers.customer_type,
        customers.sector_section,
        customers.size_band,
        -- lineage
        '{{ invocation_id }}' as dbt_invocation_id
    from open_invoices
    left join customers
        on open_invoices.customer_id = customers.customer_id
    left join history
        on
            open_invoices.customer_id = history.customer_id
            and open_invoices.as_of_date = history.as_of_date
    left join reminders
        on
            open_invoices.invoice_id = reminders.invoice_id
            and open_invoices.as_of_date = reminders.as_of_date
)

select * from final
