{{ config(materialized='table') }}
-- The state of every invoice as it was known over time: one row per (invoice, known_from), the span of as-of dates
-- [known_from, known_until) over which nothing known about the invoice changes. Within a span the invoice's version
-- (amount, due date, customer... as amended: stg_invoice_versions) and its settlement events
-- (int_invoice_settlement_events_known) are fixed, so its paid and credited amounts, and whether and when it was
-- settled (the first event date at which the events known then add up to its amount, as
-- int_invoice_settlement_dates does over all data), are those known on every date of the span.
-- The point-in-time models read these spans: the invoices open on a date (int_invoice_open_as_of) and the settled
-- history of customers and segments. Linear: a span starts where a version or an event starts or ends.
with

invoice_versions as (
    select * from {{ ref('stg_invoice_versions') }}
    where not is_deleted and document_type = 'invoice'
),

events as (
    select * from {{ ref('int_invoice_settlement_events_known') }}
),

change_points as (
    select
        invoice_id,
        known_from as change_date
    from invoice_versions
    union
    select
        invoice_id,
        known_until as change_date
    from invoice_versions
    union
    select
        invoice_id,
        known_from as change_date
    from events
    union
    select
        invoice_id,
        known_until as change_date
    from events
),

spans as (
    select
        invoice_id,
        change_date as known_from,
        lead(change_date, 1, date '9999-12-31') over (
            partition by invoice_id
            order by change_date
        ) as known_until
    from change_points
    where change_date < date '9999-12-31'
),

span_invoices as (
    select
        spans.invoice_id,
        spans.known_from,
        spans.known_until,
        invoice_versions.customer_id,
        invoice_versions.document_type,
        invoice_versions.currency,
        invoice_versions.issue_date,
        invoice_versions.due_date,
        invoice_versions.payment_terms_days,
        invoice_versions.is_end_of_month_terms,
        invoice_versions.amount,
        invoice_versions.raw_batch_id
    from spans
    inner join invoice_versions
        on
            spans.invoice_id = invoice_versions.invoice_id
            and spans.known_from >= invoice_versions.known_from
            and spans.known_from < invoice_versions.known_until
),

daily_events as (
    -- the events known on the span's first day (so on all its days), summed per event date
    select
        span_invoices.invoice_id,
        span_invoices.known_from,
        events.event_date,
        sum(events.amount) as settled_amount,
        sum(case when events.event_type = 'payment' then events.amount else 0 end) as paid_amount,
        sum(case when events.event_type = 'credit_note' then events.amount else 0 end) as credited_amount,
        count(distinct case when events.event_type = 'payment' then events.event_id end) as payment_count
    from span_invoices
    inner join events
        on
            span_invoices.invoice_id = events.invoice_id
            and span_invoices.known_from >= events.known_from
            and span_invoices.known_from < events.known_until
    group by span_invoices.invoice_id, span_invoices.known_from, events.event_date
),

cumulative as (
    select
        invoice_id,
        known_from,
        event_date,
        paid_amount,
        credited_amount,
        payment_count,
        sum(settled_amount) over span_timeline as cumulative_settled_amount,
        sum(payment_count) over span_timeline as cumulative_payment_count
    from daily_events
    window span_timeline as (
        partition by invoice_id, known_from
        order by event_date
        rows between unbounded preceding and current row
    )
),

totals as (
    select
        invoice_id,
        known_from,
        sum(paid_amount) as paid_amount,
        sum(credited_amount) as credited_amount,
        sum(payment_count) as payment_count
    from cumulative
    group by invoice_id, known_from
),

first_settlement as (
    select
        invoice_id,
        known_from,
        event_date as settled_date,
        cumulative_payment_count as settling_payment_count
    from (
        select
            cumulative.invoice_id,
            cumulative.known_from,
            cumulative.event_date,
            cumulative.cumulative_payment_count,
            row_number() over (
                partition by cumulative.invoice_id, cumulative.known_from
                order by cumulative.event_date
            ) as settling_rank
        from cumulative
        inner join span_invoices
            on
                cumulative.invoice_id = span_invoices.invoice_id
                and cumulative.known_from = span_invoices.known_from
        where cumulative.cumulative_settled_amount >= span_invoices.amount - {{ settlement_tolerance() }}
    ) as settling_events
    where settling_rank = 1
),

final as (
    select
        span_invoices.invoice_id,
        span_invoices.known_from,
        span_invoices.known_until,
        span_invoices.customer_id,
        span_invoices.document_type,
        span_invoices.currency,
        span_invoices.issue_date,
        span_invoices.due_date,
        span_invoices.payment_terms_days,
        span_invoices.is_end_of_month_terms,
        span_invoices.amount,
        cast(coalesce(totals.credited_amount, 0) as decimal(18, 2)) as credited_amount,
        cast(coalesce(totals.paid_amount, 0) as decimal(18, 2)) as paid_amount,
        cast(coalesce(totals.payment_count, 0) as integer) as payment_count,
        cast(
            span_invoices.amount - coalesce(totals.credited_amount, 0) - coalesce(totals.paid_amount, 0)
            as decimal(18, 2)
        ) as open_amount,
        -- a zero (or negative) invoice is settled on issue
        case
            when span_invoices.amount <= {{ settlement_tolerance() }} then span_invoices.issue_date
            else first_settlement.settled_date
        end as settled_date,
        cast(coalesce(first_settlement.settling_payment_count, 0) as integer) as settling_payment_count,
        span_invoices.raw_batch_id
    from span_invoices
    left join totals
        on
            span_invoices.invoice_id = totals.invoice_id
            and span_invoices.known_from = totals.known_from
    left join first_settlement
        on
            span_invoices.invoice_id = first_settlement.invoice_id
            and span_invoices.known_from = first_settlement.known_from
)

select
    *,
    {{ days_between('due_date', 'settled_date') }} as days_late
from final
