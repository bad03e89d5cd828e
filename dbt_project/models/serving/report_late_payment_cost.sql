-- What late payment costs, per currency, at the annual rate of var late_payment_cost_rate (relance passes
-- Settings.late_payment_cost_rate): money not collected when due is financed at that rate for every day it is late.
-- cost_to_date: the open overdue invoices of marts.invoices on the run's as_of_date, open_amount * days_overdue *
-- rate / 365. cost_last_13_weeks: the payments dated in the 91 days ending on as_of_date that came after their
-- invoice's due date (int_invoice_settlement_events, payments only), allocated amount * (payment_date - due_date) *
-- rate / 365. See _serving__finance.yml.
{%- set raw_rate = var('late_payment_cost_rate', none) %}
{%- if execute and raw_rate is none %}
    {{ exceptions.raise_compiler_error(
        "var 'late_payment_cost_rate' is required (an annual rate such as 0.08); run dbt through `relance dbt`, "
        ~ "which passes every var from the settings") }}
{%- endif %}
{%- set rate = (raw_rate if raw_rate is not none else 0) | float(-1) %}
{%- if execute and rate < 0 %}
    {{ exceptions.raise_compiler_error(
        "var 'late_payment_cost_rate' must be a number >= 0 (an annual rate such as 0.08), got '"
        ~ raw_rate ~ "'") }}
{%- endif %}
{%- set as_of = as_of_date() %}
with

invoices as (
    select * from {{ ref('invoices') }}
),

currencies as (
    select distinct currency from invoices
),

open_overdue as (
    select
        currency,
        count(*) as overdue_invoice_count,
        sum(open_amount) as overdue_amount,
        sum(open_amount * days_overdue) as amount_days_overdue
    from invoices
    where is_open and days_overdue > 0
    group by currency
),

late_payments as (
    select
        invoices.currency,
        count(distinct events.invoice_id) as paid_late_invoice_count,
        sum(events.amount) as paid_late_amount,
        sum(events.amount * {{ days_between('invoices.due_date', 'events.event_date') }}) as paid_late_amount_days
    from {{ ref('int_invoice_settlement_events') }} as events
    inner join invoices
        on events.invoice_id = invoices.invoice_id
    where
        events.event_type = 'payment'
        and events.event_date > {{ add_days(as_of, -91) }}
        and events.event_date <= {{ as_of }}
        and events.event_date > invoices.due_date
    group by invoices.currency
),

final as (
    select
        {{ as_of }} as as_of_date,
        currencies.currency,
        cast({{ rate }} as {{ float_type() }}) as annual_rate,
        cast(coalesce(open_overdue.overdue_invoice_count, 0) as integer) as overdue_invoice_count,
        cast(coalesce(open_overdue.overdue_amount, 0) as decimal(18, 2)) as overdue_amount,
        cast(coalesce(open_overdue.amount_days_overdue, 0) as decimal(18, 2)) as amount_days_overdue,
        cast(
            cast(coalesce(open_overdue.amount_days_overdue, 0) as {{ float_type() }}) * {{ rate }} / 365
            as decimal(18, 2)
        ) as cost_to_date,
        {{ add_days(as_of, -90) }} as period_start,
        {{ as_of }} as period_end,
        cast(coalesce(late_payments.paid_late_invoice_count, 0) as integer) as paid_late_invoice_count,
        cast(coalesce(late_payments.paid_late_amount, 0) as decimal(18, 2)) as paid_late_amount,
        cast(coalesce(late_payments.paid_late_amount_days, 0) as decimal(18, 2)) as paid_late_amount_days,
        cast(
            cast(coalesce(late_payments.paid_late_amount_days, 0) as {{ float_type() }}) * {{ rate }} / 365
            as decimal(18, 2)
        ) as cost_last_13_weeks
    from currencies
    left join open_overdue
        on currencies.currency = open_overdue.currency
    left join late_payments
        on currencies.currency = late_payments.currency
)

select * from final
