{{ config(materialized='table') }}
-- One row per (customer, as_of_date) with an invoice on the grid: payment behaviour known on that date.
-- History = the customer's invoices SETTLED strictly before as_of_date; last payment = payment_date <= it;
-- exposure = the customer's invoices open on it. No history -> null ratios/means, 0 counts.
with

balances as (
    select * from {{ ref('int_invoice_balances_as_of') }}
),

settlement as (
    select * from {{ ref('int_invoice_settlement_dates') }}
),

payments as (
    select * from {{ ref('stg_payments') }}
),

customer_dates as (
    select distinct
        customer_id,
        as_of_date
    from balances
),

settled_history as (
    select
        customer_dates.customer_id,
        customer_dates.as_of_date,
        count(*) as settled_invoice_count,
        avg(case when settlement.days_late > 0 then 1.0 else 0.0 end) as late_share,
        avg(settlement.days_late) as mean_days_late,
        median(settlement.days_late) as median_days_late,
        avg(case when settlement.settling_payment_count > 1 then 1.0 else 0.0 end) as partial_payment_share
    from customer_dates
    inner join settlement
        on
            customer_dates.customer_id = settlement.customer_id
            and customer_dates.as_of_date > settlement.settled_date
    group by customer_dates.customer_id, customer_dates.as_of_date
),

last_payment as (
    select
        customer_dates.customer_id,
        customer_dates.as_of_date,
        max(payments.payment_date) as last_payment_date
    from customer_dates
    inner join payments
        on
            customer_dates.customer_id = payments.customer_id
            and customer_dates.as_of_date >= payments.payment_date
    group by customer_dates.customer_id, customer_dates.as_of_date
),

exposure as (
    select
        customer_id,
        as_of_date,
        sum(open_amount) as open_amount,
        count(*) as open_invoice_count
    from balances
    where is_open
    group by customer_id, as_of_date
),

final as (
    select
        customer_dates.customer_id,
        customer_dates.as_of_date,
        cast(coalesce(settled_history.settled_invoice_count, 0) as integer) as settled_invoice_count,
        cast(settled_history.late_share as double) as late_share,
        cast(settled_history.mean_days_late as double) as mean_days_late,
        cast(settled_history.median_days_late as double) as median_days_late,
        cast(settled_history.partial_payment_share as double) as partial_payment_share,
        last_payment.last_payment_date,
        cast(coalesce(exposure.open_amount, 0) as decimal(18, 2)) as open_amount,
        cast(coalesce(exposure.open_invoice_count, 0) as integer) as open_invoice_count
    from customer_dates
    left join settled_history
        on
            customer_dates.customer_id = settled_history.customer_id
            and customer_dates.as_of_date = settled_history.as_of_date
    left join last_payment
        on
            customer_dates.customer_id = last_payment.customer_id
            and customer_dates.as_of_date = last_payment.as_of_date
    left join exposure
        on
            customer_dates.customer_id = exposure.customer_id
            and customer_dates.as_of_date = exposure.as_of_date
)

select * from final
