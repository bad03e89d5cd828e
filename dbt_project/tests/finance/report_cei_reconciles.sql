-- The 13 weeks of report_cei chain into the whole period: per currency there are 13 weeks, each beginning where the
-- one before ended, their sales add up to the period's and their collections too (collections telescope:
-- sum(BR + sales - ER) over the weeks = BR of the first + all sales - ER of the last); each week's ending
-- receivables are the trend's on that Sunday. Returns the currencies (or weeks) that break it.
with

weeks as (
    select * from {{ ref('report_cei') }}
    where period = 'week'
),

whole_period as (
    select * from {{ ref('report_cei') }}
    where period = 'last_13_weeks'
),

week_totals as (
    select
        currency,
        count(*) as week_count,
        min(period_start) as first_start,
        max(period_end) as last_end,
        sum(sales) as sales,
        sum(collections) as collections
    from weeks
    group by currency
),

broken_totals as (
    select
        whole_period.currency,
        cast(null as date) as period_end,
        'totals' as what
    from whole_period
    left join week_totals
        on whole_period.currency = week_totals.currency
    where
        coalesce(week_totals.week_count, 0) <> 13
        or week_totals.first_start <> whole_period.period_start
        or week_totals.last_end <> whole_period.period_end
        or week_totals.sales <> whole_period.sales
        or week_totals.collections <> whole_period.collections
),

broken_chain as (
    select
        weeks.currency,
        weeks.period_end,
        'chain' as what
    from weeks
    left join {{ ref('report_receivables_by_week_end') }} as balances
        on
            weeks.currency = balances.currency
            and weeks.period_end = balances.balance_date
    where
        balances.currency is null
        or weeks.ending_receivables <> balances.receivables
        or weeks.period_end - weeks.period_start <> 6
)

select * from broken_totals
union all
select * from broken_chain
