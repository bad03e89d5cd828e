{{ config(materialized='table') }}
-- Sector and size priors: one row per (segment, segment_value, as_of_date) for the segments of the customers
-- with an open invoice on a date this run builds. The prior is the payment behaviour of every customer of the
-- segment (current attributes) over the invoices settled strictly before as_of_date, by the same running-sum
-- timeline as int_customer_history_as_of. A customer without a sector or size (B2C) falls in '(none)'.
with

customers as (
    select * from {{ ref('stg_customers') }}
),

customer_segments as (
    select
        customer_id,
        'sector_section' as segment,
        coalesce(sector_section, '(none)') as segment_value
    from customers
    union all
    select
        customer_id,
        'size_band' as segment,
        coalesce(size_band, '(none)') as segment_value
    from customers
),

open_rows as (
    select * from {{ ref('int_invoice_open_as_of') }}
),

settled as (
    select
        settlement.customer_id,
        settlement.settled_date,
        cast(settlement.days_late as {{ float_type() }}) as days_late,
        case when settlement.days_late > 0 then 1 else 0 end as is_late
    from {{ ref('int_invoice_settlement_dates') }} as settlement
    -- payment behaviour: invoices cancelled by credit notes alone (or of amount 0) are not history
    where settlement.settled_date is not null and settlement.settling_payment_count > 0
),

timeline as (
    -- probes sort first on their day: invoices settled on as_of_date are not history yet
    select
        customer_segments.segment,
        customer_segments.segment_value,
        open_rows.as_of_date as event_date,
        0 as event_order,
        1 as is_probe,
        0 as settled_n,
        0 as late_n,
        cast(0 as {{ float_type() }}) as days_late_sum
    from open_rows
    inner join customer_segments
        on open_rows.customer_id = customer_segments.customer_id
    group by customer_segments.segment, customer_segments.segment_value, open_rows.as_of_date
    union all
    select
        customer_segments.segment,
        customer_segments.segment_value,
        settled.settled_date as event_date,
        1 as event_order,
        0 as is_probe,
        count(*) as settled_n,
        sum(settled.is_late) as late_n,
        sum(settled.days_late) as days_late_sum
    from settled
    inner join customer_segments
        on settled.customer_id = customer_segments.customer_id
    group by customer_segments.segment, customer_segments.segment_value, settled.settled_date
),

running as (
    select
        segment,
        segment_value,
        event_date as as_of_date,
        is_probe,
        sum(settled_n) over segment_timeline as settled_n,
        sum(late_n) over segment_timeline as late_n,
        sum(days_late_sum) over segment_timeline as days_late_sum
    from timeline
    window segment_timeline as (
        partition by segment, segment_value
        order by event_date, event_order
        rows between unbounded preceding and current row
    )
),

final as (
    select
        segment,
        segment_value,
        as_of_date,
        cast(settled_n as integer) as settled_invoice_count,
        cast(late_n as {{ float_type() }}) / nullif(settled_n, 0) as late_share,
        cast(days_late_sum as {{ float_type() }}) / nullif(settled_n, 0) as mean_days_late
    from running
    where is_probe = 1
)

select * from final
