-- Scored open invoices ranked by expected amount at risk (open_amount * p_late) within currency, with the
-- customer's risk grade, the predicted payment date and the main reason; has_open_procedure: the debtor is in a
-- collective procedure (no reminder; the claim is declared instead). latest_risk_event_*: the customer's latest company
-- event published on or before as_of_date (customer_risk_events; by published date, then event date, then id).
with

worklist as (
    select * from {{ ref('collection_worklist') }}
    where p_late is not null
),

risk_events as (
    select
        customer_id,
        event_type,
        event_date,
        published_date,
        row_number() over (
            partition by customer_id
            order by published_date desc, event_date desc, event_id desc
        ) as event_rank
    from {{ ref('customer_risk_events') }}
    where published_date <= {{ as_of_date() }}
),

priced as (
    select
        worklist.as_of_date,
        worklist.invoice_id,
        worklist.customer_id,
        worklist.customer_name,
        worklist.currency,
        worklist.open_amount,
        worklist.days_overdue,
        worklist.p_late,
        worklist.target_name,
        worklist.risk_grade,
        worklist.predicted_payment_date,
        worklist.reason_1,
        cast(cast(worklist.open_amount as {{ float_type() }}) * worklist.p_late as decimal(18, 2)) as expected_at_risk,
        worklist.has_open_procedure,
        risk_events.event_type as latest_risk_event_type,
        risk_events.event_date as latest_risk_event_date,
        risk_events.published_date as latest_risk_event_published_date
    from worklist
    left join risk_events
        on
            worklist.customer_id = risk_events.customer_id
            and risk_events.event_rank = 1
),

final as (
    select
        as_of_date,
        invoice_id,
        customer_id,
        customer_name,
        currency,
        open_amount,
        days_overdue,
        p_late,
        target_name,
        risk_grade,
        predicted_payment_date,
        reason_1,
        expected_at_risk,
        cast(
            row_number() over (
                partition by currency order by expected_at_risk desc, invoice_id asc
            ) as integer
        ) as risk_rank,
        has_open_procedure,
        latest_risk_event_type,
        latest_risk_event_date,
        latest_risk_event_published_date
    from priced
)

select * from final
