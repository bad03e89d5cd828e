-- Collection effectiveness index per currency for each of the 13 complete weeks (Monday to Sunday) that end on the
-- last Sunday on or before the run's as_of_date, and for those 13 weeks as one period. See _serving__finance.yml.
-- CEI = (beginning receivables + sales - ending receivables) / (beginning receivables + sales - ending current
-- receivables) * 100; receivables from report_receivables_by_week_end (the Sundays of its grid), sales = amounts of
-- invoices issued in the period (the same sales as report_dso and report_dso_trend).
with

week_ends as (
    select * from {{ ref('report_receivables_by_week_end') }}
    where is_week_end
),

daily_sales as (
    select
        currency,
        issue_date,
        sum(amount) as sales
    from {{ ref('stg_invoices') }}
    where document_type = 'invoice' and issue_date <= {{ as_of_date() }}
    group by currency, issue_date
),

-- each week: from the Sunday before (its beginning balance) to its own Sunday
weeks as (
    select
        'week' as period,
        currency,
        beginning_date,
        balance_date as end_date
    from (
        select
            currency,
            balance_date,
            lag(balance_date) over (partition by currency order by balance_date) as beginning_date
        from week_ends
    ) as consecutive
    where beginning_date is not null
),

whole_period as (
    select
        'last_13_weeks' as period,
        currency,
        min(balance_date) as beginning_date,
        max(balance_date) as end_date
    from week_ends
    group by currency
),

periods as (
    select * from weeks
    union all
    select * from whole_period
),

period_sales as (
    select
        periods.period,
        periods.currency,
        periods.end_date,
        coalesce(sum(daily_sales.sales), 0) as sales
    from periods
    left join daily_sales
        on
            periods.currency = daily_sales.currency
            and periods.beginning_date < daily_sales.issue_date
            and periods.end_date >= daily_sales.issue_date
    group by periods.period, periods.currency, periods.end_date
),

measured as (
    select
        periods.period,
        periods.currency,
        {{ add_days('periods.beginning_date', 1) }} as period_start,
        periods.end_date as period_end,
        beginning.receivables as beginning_receivables,
        cast(period_sales.sales as decimal(18, 2)) as sales,
        ending.receivables as ending_receivables,
        ending.current_receivables as ending_current_receivables
    from periods
    inner join week_ends as beginning
        on
            periods.currency = beginning.currency
            and periods.beginning_date = beginning.balance_date
    inner join week_ends as ending
        on
            periods.currency = ending.currency
            and periods.end_date = ending.balance_date
    inner join period_sales
        on
            periods.period = period_sales.period
            and periods.currency = period_sales.currency
            and periods.end_date = period_sales.end_date
),

final as (
    select
        {{ as_of_date() }} as as_of_date,
        currency,
        period,
        period_start,
        period_end,
        beginning_receivables,
        sales,
        ending_receivables,
        ending_current_receivables,
        cast(beginning_receivables + sales - ending_receivables as decimal(18, 2)) as collections,
        cast(beginning_receivables + sales - ending_receivables as {{ float_type() }})
        / nullif(cast(beginning_receivables + sales - ending_current_receivables as {{ float_type() }}), 0)
        * 100 as cei_pct
    from measured
)

select * from final
