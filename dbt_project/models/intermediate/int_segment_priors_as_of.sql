{{ config(materialized='table') }}
-- Sector and size priors: one row per (segment, segment_value, as_of_date) for the segments of the customers
-- with an open invoice on a date this run builds (their attributes as known on it, int_customers_as_of). The prior
-- is the payment behaviour of the segment's invoices known on as_of_date to be settled strictly before it (the
-- settled spans of int_invoice_states_known, as int_customer_history_as_of counts them), each in the segment of its
-- customer as known when it entered the history (the version of stg_customer_versions holding that date: a later
-- change of sector does not move past invoices). Running sums over the segment's timeline: linear in settled spans +
-- probes. A customer without a sector or size (B2C) falls in '(none)'.
with

probe_segments as (
    select distinct
        'sector_section' as segment,
        coalesce(sector_section, '(none)') as segment_value,
        as_of_date
    from {{ ref('int_customers_as_of') }}
    union
    select distinct
        'size_band' as segment,
        coalesce(size_band, '(none)') as segment_value,
        as_of_date
    from {{ ref('int_customers_as_of') }}
),

settled as (
    -- counted from the day after settled_date, or from the span's start when that is later, until the span ends
    select
        customer_id,
        counted_from,
        known_until as counted_until,
        cast(days_late as {{ float_type() }}) as days_late,
        case when days_late > 0 then 1 else 0 end as is_late
    from (
        select
            *,
            case
                when known_from > settled_date then known_from
                else {{ add_days('settled_date', 1) }}
            end as counted_from
        from {{ ref('int_invoice_states_known') }}
        -- payment behaviour: invoices cancelled by credit notes alone (or of amount 0) are not history
        where settled_date is not null and settling_payment_count > 0
    ) as settled_spans
    where counted_from < known_until
),

settled_segments as (
    select
        'sector_section' as segment,
        coalesce(versions.sector_section, '(none)') as segment_value,
        settled.*
    from settled
    inner join {{ ref('stg_customer_versions') }} as versions
        on
            settled.customer_id = versions.customer_id
            and settled.counted_from >= versions.known_from
            and settled.counted_from < versions.known_until
    where not versions.is_deleted
    union all
    select
        'size_band' as segment,
        coalesce(versions.size_band, '(none)') as segment_value,
        settled.*
    from settled
    inner join {{ ref('stg_customer_versions') }} as versions
        on
            settled.customer_id = versions.customer_id
            and settled.counted_from >= versions.known_from
            and settled.counted_from < versions.known_until
    where not versions.is_deleted
),

timeline as (
    -- probes sort after the events of their day (event_order 1)
    select
        segment,
        segment_value,
        as_of_date as event_date,
        1 as event_order,
        1 as is_probe,
        0 as settled_n,
        0 as late_n,
        cast(0 as {{ float_type() }}) as days_late_sum
    from probe_segments
    union all
    select
        segment,
        segment_value,
        counted_from as event_date,
        0 as event_order,
        0 as is_probe,
        count(*) as settled_n,
        sum(is_late) as late_n,
        sum(days_late) as days_late_sum
    from settled_segments
    group by segment, segment_value, counted_from
    union all
    select
        segment,
        segment_value,
        counted_until as event_date,
        0 as event_order,
        0 as is_probe,
        -count(*) as settled_n,
        -sum(is_late) as late_n,
        -sum(days_late) as days_late_sum
    from settled_segments
    where counted_until < date '9999-12-31'
    group by segment, segment_value, counted_until
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
