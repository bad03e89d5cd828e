{#- the reasons, in words with their figures (one decimal) #}
{% set paying_later_sentence %}
    'paid ' || cast(cast(hist_mean_days_late as decimal(18, 1)) as varchar)
    || ' days late on average over ' || cast(hist_invoice_count as varchar)
    || ' invoices, now ' || cast(cast(recent_mean_days_late as decimal(18, 1)) as varchar)
    || ' days over ' || cast(recent_invoice_count as varchar)
{% endset %}
{% set grade_drop_sentence %}
    'risk grade fell from ' || grade_30d_ago || ' to ' || grade_now || ' in 30 days'
{% endset %}
-- One row per customer with an open invoice on the run's as_of_date: does a payer with a reliable history pay
-- clearly later than it used to, or did its risk grade fall? Windows, from the invoices mart (days late =
-- settled_date - due_date; invoices settled by credit notes alone, with nothing paid, are not payment behaviour):
--   history = invoices settled in [as_of_date - 455, as_of_date - 90)
--   recent  = invoices settled in [as_of_date - 90, as_of_date], plus invoices still open and overdue on
--             as_of_date counted with days_late = as_of_date - due_date (a degrading payer's latest invoices are
--             unpaid, not settled late)
-- is_reliable_history: hist_invoice_count >= 5 and hist_late_share <= 0.25.
-- is_degrading: a reliable history, recent_invoice_count >= 2 and recent_mean_days_late - hist_mean_days_late >=
-- greatest(var degrading_min_days, 2 * hist_std_days_late) (compared to 6 decimals); or the risk grade fell by
-- 2 letters or more from A or B within 30 days (grade_30d_ago: the grade of the latest scored day on or before
-- as_of_date - 30, in the customer_risk_grades history).
with

invoices as (
    select * from {{ ref('invoices') }}
),

grades as (
    select * from {{ ref('customer_risk_grades') }}
    where as_of_date <= {{ as_of_date() }}
),

customers as (
    select distinct customer_id
    from invoices
    where is_open
),

settled as (
    select
        customer_id,
        settled_date,
        cast({{ days_between('due_date', 'settled_date') }} as {{ float_type() }}) as days_late
    from invoices
    where settled_date is not null and paid_amount > 0
),

history as (
    select
        customer_id,
        count(*) as hist_invoice_count,
        avg(days_late) as hist_mean_days_late,
        stddev_samp(days_late) as hist_std_days_late,
        avg(case when days_late > 0 then 1.0 else 0.0 end) as hist_late_share
    from settled
    where
        settled_date >= {{ add_days(as_of_date(), -455) }}
        and settled_date < {{ add_days(as_of_date(), -90) }}
    group by customer_id
),

recent_facts as (
    select
        customer_id,
        days_late
    from settled
    where settled_date >= {{ add_days(as_of_date(), -90) }}
    union all
    select
        customer_id,
        cast(days_overdue as {{ float_type() }}) as days_late
    from invoices
    where is_open and days_overdue > 0
),

recent as (
    select
        customer_id,
        count(*) as recent_invoice_count,
        avg(days_late) as recent_mean_days_late
    from recent_facts
    group by customer_id
),

grade_dates as (
    select
        customer_id,
        max(case when as_of_date = {{ as_of_date() }} then as_of_date end) as date_now,
        max(case when as_of_date <= {{ add_days(as_of_date(), -30) }} then as_of_date end) as date_30d_ago
    from grades
    group by customer_id
),

grade_pairs as (
    select
        grade_dates.customer_id,
        grades_now.risk_grade as grade_now,
        grades_before.risk_grade as grade_30d_ago
    from grade_dates
    left join grades as grades_now
        on
            grade_dates.customer_id = grades_now.customer_id
            and grade_dates.date_now = grades_now.as_of_date
    left join grades as grades_before
        on
            grade_dates.customer_id = grades_before.customer_id
            and grade_dates.date_30d_ago = grades_before.as_of_date
),

joined as (
    select
        customers.customer_id,
        cast(coalesce(history.hist_invoice_count, 0) as integer) as hist_invoice_count,
        cast(history.hist_mean_days_late as {{ float_type() }}) as hist_mean_days_late,
        cast(history.hist_std_days_late as {{ float_type() }}) as hist_std_days_late,
        cast(history.hist_late_share as {{ float_type() }}) as hist_late_share,
        cast(coalesce(recent.recent_invoice_count, 0) as integer) as recent_invoice_count,
        cast(recent.recent_mean_days_late as {{ float_type() }}) as recent_mean_days_late,
        grade_pairs.grade_now,
        grade_pairs.grade_30d_ago
    from customers
    left join history
        on customers.customer_id = history.customer_id
    left join recent
        on customers.customer_id = recent.customer_id
    left join grade_pairs
        on customers.customer_id = grade_pairs.customer_id
),

rules as (
    select
        *,
        coalesce(hist_invoice_count >= 5 and hist_late_share <= 0.25, false) as is_reliable_history,
        coalesce(
            hist_invoice_count >= 5
            and hist_late_share <= 0.25
            and recent_invoice_count >= 2
            -- to 6 decimals: means of whole days must not miss the threshold by a float's last bit
            and cast(recent_mean_days_late - hist_mean_days_late as decimal(18, 6))
            >= cast(
                greatest({{ positive_int_var('degrading_min_days') }}, 2 * hist_std_days_late) as decimal(18, 6)
            ),
            false
        ) as is_paying_later,
        coalesce(
            grade_30d_ago in ('A', 'B')
            and strpos('ABCDE', grade_now) - strpos('ABCDE', grade_30d_ago) >= 2,
            false
        ) as is_grade_drop
    from joined
),

final as (
    select
        customer_id,
        hist_invoice_count,
        hist_mean_days_late,
        hist_std_days_late,
        hist_late_share,
        recent_invoice_count,
        recent_mean_days_late,
        grade_now,
        grade_30d_ago,
        is_reliable_history,
        is_paying_later or is_grade_drop as is_degrading,
        case
            when is_paying_later and is_grade_drop
                then {{ paying_later_sentence }} || '; ' || {{ grade_drop_sentence }}
            when is_paying_later then {{ paying_later_sentence }}
            when is_grade_drop then {{ grade_drop_sentence }}
        end as degradation_reason,
        {{ as_of_date() }} as as_of_date
    from rules
)

select * from final
