-- Customers who pay on fixed days of the month (a payment run on the 10th and the 25th, say), as known on each
-- feature snapshot date of the 400 days up to the run's as_of_date: the cash-in forecast (models/cashflow.py)
-- moves such a customer's predicted payments to the nearest of its run days, and its backtest reads the rows of
-- past snapshots. One row per (as_of_date, customer_id, payment_day) for the run-day payers only.
--
-- From the customer's payments (stg_payment_versions: a payment counts once, however many invoices it settles)
-- dated in the 365 days up to the snapshot and known on it (known_from, the later of its date and its load, on or
-- before the date, and not replaced by then). A customer is a run-day payer on a date when it made at least
-- min_payments such payments and the days of the month that each hold at least a fifth of them hold at least half
-- of them together; those days are its payment days. Fewer payments, and chance makes a "pattern" (two of four on
-- the same day). The shares are compared in integers (count x 5 >= total), so both targets draw the same line.
{%- set window_days = 365 %}
{%- set min_payments = 6 %}

with

snapshot_dates as (
    select distinct as_of_date from {{ ref('ml_invoice_features') }}
    where
        as_of_date > {{ add_days(as_of_date(), -400) }}
        and as_of_date <= {{ as_of_date() }}
),

payments as (
    select
        payment_id,
        customer_id,
        payment_date,
        greatest(payment_date, known_from) as known_from,
        known_until
    from {{ ref('stg_payment_versions') }}
    where not is_deleted
),

known_payments as (
    select
        snapshot_dates.as_of_date,
        payments.customer_id,
        payments.payment_id,
        cast(extract(day from payments.payment_date) as integer) as payment_day
    from snapshot_dates
    inner join payments
        on
            snapshot_dates.as_of_date >= payments.known_from
            and snapshot_dates.as_of_date < payments.known_until
            and {{ add_days('snapshot_dates.as_of_date', -window_days) }} < payments.payment_date
),

by_day as (
    select
        as_of_date,
        customer_id,
        payment_day,
        count(*) as day_payment_count
    from known_payments
    group by as_of_date, customer_id, payment_day
),

by_customer as (
    select
        as_of_date,
        customer_id,
        sum(day_payment_count) as payment_count
    from by_day
    group by as_of_date, customer_id
),

day_shares as (
    select
        by_day.as_of_date,
        by_day.customer_id,
        by_day.payment_day,
        by_day.day_payment_count,
        by_customer.payment_count,
        cast(by_day.day_payment_count as {{ float_type() }})
        / cast(by_customer.payment_count as {{ float_type() }}) as day_share
    from by_day
    inner join by_customer
        on
            by_day.as_of_date = by_customer.as_of_date
            and by_day.customer_id = by_customer.customer_id
    where by_customer.payment_count >= {{ min_payments }}
),

run_days as (
    select * from day_shares
    where day_payment_count * 5 >= payment_count
),

cover as (
    select
        as_of_date,
        customer_id,
        sum(day_payment_count) as run_day_payment_count,
        cast(sum(day_payment_count) as {{ float_type() }})
        / cast(max(payment_count) as {{ float_type() }}) as run_day_cover
    from run_days
    group by as_of_date, customer_id
),

final as (
    select
        run_days.as_of_date,
        run_days.customer_id,
        run_days.payment_day,
        cast(run_days.day_payment_count as integer) as day_payment_count,
        cast(run_days.payment_count as integer) as payment_count,
        run_days.day_share,
        cover.run_day_cover
    from run_days
    inner join cover
        on
            run_days.as_of_date = cover.as_of_date
            and run_days.customer_id = cover.customer_id
    where cover.run_day_payment_count * 2 >= run_days.payment_count
)

select * from final
