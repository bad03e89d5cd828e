{{ config(materialized='table') }}
-- One row per (customer, as_of_date) with an open invoice on a date this run builds: payment behaviour known
-- on that date. History = the customer's invoices known on as_of_date to be SETTLED strictly before it (the span of
-- int_invoice_states_known holding the date is settled, on a settled_date < as_of_date: a payment booked late
-- settles the invoice from its load date on, an amendment that reopens it takes it out of the history from its own);
-- last payment = the latest payment_date known by as_of_date; exposure = the customer's invoices open on it. No
-- history -> null means, 0 counts.
--
-- Running sums instead of a range join: each settled span is an event adding the invoice to the history on the
-- first as-of date that counts it (the day after its settled_date, or the span's start when that is later) and one
-- removing it when the span ends; a third leaves the recent window (settled_date >= as_of_date -
-- recent_window_days) recent_window_days + 1 days after settled_date. Each (customer, as_of_date) is a probe
-- sorted AFTER the events of its own day, and window sums over the customer's timeline give the history of every
-- probe in one sort. The cost is linear in settled spans + probes, whatever the number of dates. Only the median
-- needs the facts themselves, so it looks at a trailing window (median_window_days).
with

open_rows as (
    select * from {{ ref('int_invoice_open_as_of') }}
),

probes as (
    select distinct
        customer_id,
        as_of_date
    from open_rows
),

settled as (
    select
        customer_id,
        invoice_id,
        known_from,
        settled_date,
        counted_from,
        known_until as counted_until,
        -- the recent window holds the span from counted_from until it ends or the settlement is no longer recent
        least(known_until, {{ add_days('settled_date', recent_window_days() ~ ' + 1') }}) as recent_until,
        cast(days_late as {{ float_type() }}) as days_late,
        case when days_late > 0 then 1 else 0 end as is_late,
        case when settling_payment_count > 1 then 1 else 0 end as is_partial,
        {{ ew_weight('settled_date') }} as ew_weight
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

timeline as (
    -- a probe sorts after the events of its day (event_order 1): an event dated as_of_date applies to it
    select
        customer_id,
        as_of_date as event_date,
        1 as event_order,
        '' as event_key,
        as_of_date as event_span,
        0 as event_kind,
        1 as is_probe,
        0 as settled_n,
        0 as late_n,
        0 as partial_n,
        cast(0 as {{ float_type() }}) as days_late_sum,
        cast(0 as {{ float_type() }}) as ew_weight_sum,
        cast(0 as {{ float_type() }}) as ew_weighted_sum,
        0 as recent_n,
        cast(0 as {{ float_type() }}) as recent_days_late_sum
    from probes
    union all
    -- enters the history (and the recent window, unless it has already left it)
    select
        customer_id,
        counted_from as event_date,
        0 as event_order,
        invoice_id as event_key,
        known_from as event_span,
        0 as event_kind,
        0 as is_probe,
        1 as settled_n,
        is_late as late_n,
        is_partial as partial_n,
        days_late as days_late_sum,
        ew_weight as ew_weight_sum,
        ew_weight * days_late as ew_weighted_sum,
        case when counted_from < recent_until then 1 else 0 end as recent_n,
        case when counted_from < recent_until then days_late else 0 end as recent_days_late_sum
    from settled
    union all
    -- leaves the history: the span ends (a later version or event changes what is known about the invoice)
    select
        customer_id,
        counted_until as event_date,
        0 as event_order,
        invoice_id as event_key,
        known_from as event_span,
        1 as event_kind,
        0 as is_probe,
        -1 as settled_n,
        -is_late as late_n,
        -is_partial as partial_n,
        -days_late as days_late_sum,
        -ew_weight as ew_weight_sum,
        -ew_weight * days_late as ew_weighted_sum,
        0 as recent_n,
        cast(0 as {{ float_type() }}) as recent_days_late_sum
    from settled
    where counted_until < date '9999-12-31'
    union all
    -- leaves the recent window
    select
        customer_id,
        recent_until as event_date,
        0 as event_order,
        invoice_id as event_key,
        known_from as event_span,
        2 as event_kind,
        0 as is_probe,
        0 as settled_n,
        0 as late_n,
        0 as partial_n,
        cast(0 as {{ float_type() }}) as days_late_sum,
        cast(0 as {{ float_type() }}) as ew_weight_sum,
        cast(0 as {{ float_type() }}) as ew_weighted_sum,
        -1 as recent_n,
        -days_late as recent_days_late_sum
    from settled
    where counted_from < recent_until and recent_until < date '9999-12-31'
),

running as (
    select
        customer_id,
        event_date as as_of_date,
        is_probe,
        sum(settled_n) over customer_timeline as settled_n,
        sum(late_n) over customer_timeline as late_n,
        sum(partial_n) over customer_timeline as partial_n,
        sum(days_late_sum) over customer_timeline as days_late_sum,
        sum(ew_weight_sum) over customer_timeline as ew_weight_sum,
        sum(ew_weighted_sum) over customer_timeline as ew_weighted_sum,
        sum(recent_n) over customer_timeline as recent_n,
        sum(recent_days_late_sum) over customer_timeline as recent_days_late_sum
    from timeline
    -- a total order (event_key breaks ties): float sums then add up in the same order on every build
    window customer_timeline as (
        partition by customer_id
        order by event_date, event_order, event_key, event_span, event_kind
        rows between unbounded preceding and current row
    )
),

history as (
    select
        customer_id,
        as_of_date,
        settled_n,
        late_n,
        partial_n,
        days_late_sum,
        ew_weight_sum,
        ew_weighted_sum,
        recent_n,
        recent_days_late_sum,
        settled_n - recent_n as prior_n,
        days_late_sum - recent_days_late_sum as prior_days_late_sum
    from running
    where is_probe = 1
),

payment_timeline as (
    -- a payment is known from its payment_date, or from the load of its version when that is later; it sorts
    -- first on its day (event_order 0): payments known on as_of_date count on it. A running max: a version later
    -- replaced (re-dated, deleted) still counts on the dates it was known, never on earlier ones
    select
        customer_id,
        greatest(payment_date, known_from) as event_date,
        0 as event_order,
        0 as is_probe,
        payment_date
    from {{ ref('stg_payment_versions') }}
    where not is_deleted and greatest(payment_date, known_from) < known_until
    union all
    select
        customer_id,
        as_of_date as event_date,
        1 as event_order,
        1 as is_probe,
        cast(null as date) as payment_date
    from probes
),

last_payment as (
    select
        customer_id,
        as_of_date,
        last_payment_date
    from (
        select
            customer_id,
            event_date as as_of_date,
            is_probe,
            max(payment_date) over (
                partition by customer_id
                order by event_date, event_order
                rows between unbounded preceding and current row
            ) as last_payment_date
        from payment_timeline
    ) as running_payments
    where is_probe = 1
),

median_window as (
    select
        probes.customer_id,
        probes.as_of_date,
        percentile_cont(0.5) within group (order by settled.days_late) as median_days_late
    from probes
    inner join settled
        on
            probes.customer_id = settled.customer_id
            and probes.as_of_date >= settled.counted_from
            and probes.as_of_date < settled.counted_until
            and {{ add_days('probes.as_of_date', '-' ~ median_window_days()) }} <= settled.settled_date
    group by probes.customer_id, probes.as_of_date
),

exposure as (
    select
        customer_id,
        as_of_date,
        sum(open_amount) as open_amount,
        count(*) as open_invoice_count,
        count(case when days_overdue > 0 then 1 end) as overdue_invoice_count
    from open_rows
    group by customer_id, as_of_date
),

final as (
    select
        probes.customer_id,
        probes.as_of_date,
        cast(history.settled_n as integer) as settled_invoice_count,
        cast(history.late_n as integer) as late_invoice_count,
        cast(history.late_n as {{ float_type() }}) / nullif(history.settled_n, 0) as late_share,
        history.days_late_sum / nullif(history.settled_n, 0) as mean_days_late,
        -- guarded by the count: a float sum that had a span added and removed may not return to exactly 0
        case
            when history.settled_n > 0 then history.ew_weighted_sum / nullif(history.ew_weight_sum, 0)
        end as ew_mean_days_late,
        history.recent_days_late_sum / nullif(history.recent_n, 0) as recent_mean_days_late,
        history.prior_days_late_sum / nullif(history.prior_n, 0) as prior_mean_days_late,
        history.recent_days_late_sum / nullif(history.recent_n, 0)
        - history.prior_days_late_sum / nullif(history.prior_n, 0) as days_late_trend,
        cast(median_window.median_days_late as {{ float_type() }}) as median_days_late_365d,
        cast(history.partial_n as {{ float_type() }}) / nullif(history.settled_n, 0) as partial_payment_share,
        last_payment.last_payment_date,
        cast(coalesce(exposure.open_amount, 0) as decimal(18, 2)) as open_amount,
        cast(coalesce(exposure.open_invoice_count, 0) as integer) as open_invoice_count,
        cast(coalesce(exposure.overdue_invoice_count, 0) as integer) as overdue_invoice_count
    from probes
    inner join history
        on
            probes.customer_id = history.customer_id
            and probes.as_of_date = history.as_of_date
    left join last_payment
        on
            probes.customer_id = last_payment.customer_id
            and probes.as_of_date = last_payment.as_of_date
    left join median_window
        on
            probes.customer_id = median_window.customer_id
            and probes.as_of_date = median_window.as_of_date
    left join exposure
        on
            probes.customer_id = exposure.customer_id
            and probes.as_of_date = exposure.as_of_date
)

select * from final
