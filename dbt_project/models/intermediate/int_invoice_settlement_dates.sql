-- One row per invoice: the first date its cumulative settled amount (payments + credit notes, ALL data)
-- reaches the invoice amount, and how late that was. Only facts dated before an as-of date may be read
-- from here: downstream as-of models filter on settled_date.
with

invoices as (
    select * from {{ ref('stg_invoices') }}
    where document_type = 'invoice'
),

events as (
    select * from {{ ref('int_invoice_settlement_events') }}
),

daily_events as (
    select
        invoice_id,
        event_date,
        sum(amount) as settled_amount,
        count(distinct case when event_type = 'payment' then event_id end) as payment_count
    from events
    group by invoice_id, event_date
),

cumulative as (
    select
        invoice_id,
        event_date,
        sum(settled_amount) over invoice_timeline as cumulative_settled_amount,
        sum(payment_count) over invoice_timeline as cumulative_payment_count
    from daily_events
    window invoice_timeline as (
        partition by invoice_id
        order by event_date
        rows between unbounded preceding and current row
    )
),

settling_events as (
    select
        cumulative.invoice_id,
        cumulative.event_date,
        cumulative.cumulative_payment_count,
        row_number() over (
            partition by cumulative.invoice_id
            order by cumulative.event_date
        ) as settling_rank
    from cumulative
    inner join invoices
        on cumulative.invoice_id = invoices.invoice_id
    where cumulative.cumulative_settled_amount >= invoices.amount - {{ settlement_tolerance() }}
),

first_settlement as (
    select
        invoice_id,
        event_date as settled_date,
        cumulative_payment_count as settling_payment_count
    from settling_events
    where settling_rank = 1
),

settlement as (
    select
        invoices.invoice_id,
        invoices.customer_id,
        invoices.issue_date,
        invoices.due_date,
        invoices.amount,
        -- a zero (or negative) invoice is settled on issue
        case
            when invoices.amount <= {{ settlement_tolerance() }} then invoices.issue_date
            else first_settlement.settled_date
        end as settled_date,
        cast(coalesce(first_settlement.settling_payment_count, 0) as integer) as settling_payment_count
    from invoices
    left join first_settlement
        on invoices.invoice_id = first_settlement.invoice_id
),

final as (
    select
        *,
        {{ days_between('due_date', 'settled_date') }} as days_late
    from settlement
)

select * from final
