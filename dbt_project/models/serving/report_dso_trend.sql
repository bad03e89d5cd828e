-- Days sales outstanding per currency on the run's as_of_date and on the 13 Sundays before it (14 rows a currency),
-- by the countback method over calendar months, with the simple method beside it. See _serving__finance.yml.
--
-- Countback on a date D with receivables R: month 1 is (D - 1 month, D], month k is (D - k months, D - (k-1)
-- months] (macro add_months, clamped to the month's end), k = 1..24. Walking back from month 1, a month whose
-- sales the remaining receivables cover in full adds all its days; the month where they run out adds its days
-- times the share of its sales still needed; older months add nothing. Sales: amounts of invoices issued
-- (document_type 'invoice', tax included, gross of credit notes: the same sales as report_dso).
{%- set as_of = as_of_date() %}
{%- set countback_months = 24 %}
with

balances as (
    select * from {{ ref('report_receivables_by_week_end') }}
    where
        is_as_of_date
        or (is_week_end and balance_date < {{ as_of }} and balance_date >= {{ add_days(as_of, -91) }})
),

daily_sales as (
    select
        currency,
        issue_date,
        sum(amount) as sales
    from {{ ref('stg_invoices') }}
    where document_type = 'invoice' and issue_date <= {{ as_of }}
    group by currency, issue_date
),

months as (
    select
        balances.currency,
        balances.balance_date,
        month_numbers.months_back,
        {{ add_months('balances.balance_date', '-month_numbers.months_back') }} as month_start_exclusive,
        {{ add_months('balances.balance_date', '-(month_numbers.months_back - 1)') }} as month_end
    from balances
    cross join (
        values
        {%- for months_back in range(1, countback_months + 1) %}
            ({{ months_back }}){{ "," if not loop.last }}
        {%- endfor %}
    ) as month_numbers (months_back)
),

month_sales as (
    select
        months.currency,
        months.balance_date,
        months.months_back,
        {{ days_between('months.month_start_exclusive', 'months.month_end') }} as month_days,
        cast(coalesce(sum(daily_sales.sales), 0) as {{ float_type() }}) as sales
    from months
    left join daily_sales
        on
            months.currency = daily_sales.currency
            and months.month_start_exclusive < daily_sales.issue_date
            and months.month_end >= daily_sales.issue_date
    group by months.currency, months.balance_date, months.months_back, months.month_start_exclusive, months.month_end
),

-- the sales of the months more recent than each month
month_sales_before as (
    select
        currency,
        balance_date,
        months_back,
        month_days,
        sales,
        coalesce(
            sum(sales) over (
                partition by currency, balance_date
                order by months_back
                rows between unbounded preceding and 1 preceding
            ),
            0
        ) as sales_before
    from month_sales
),

receivables as (
    select
        currency,
        balance_date,
        cast(receivables as {{ float_type() }}) as amount
    from balances
),

countback as (
    select
        month_sales_before.currency,
        month_sales_before.balance_date,
        sum(
            case
                when receivables.amount <= month_sales_before.sales_before then 0
                when receivables.amount >= month_sales_before.sales_before + month_sales_before.sales
                    then month_sales_before.month_days
                else
                    (receivables.amount - month_sales_before.sales_before) / month_sales_before.sales
                    * month_sales_before.month_days
            end
        ) as dso_countback_days,
        max(receivables.amount) > sum(month_sales_before.sales) as is_dso_countback_capped
    from month_sales_before
    inner join receivables
        on
            month_sales_before.currency = receivables.currency
            and month_sales_before.balance_date = receivables.balance_date
    group by month_sales_before.currency, month_sales_before.balance_date
),

sales_90d as (
    select
        balances.currency,
        balances.balance_date,
        coalesce(sum(daily_sales.sales), 0) as sales_90d
    from balances
    left join daily_sales
        on
            balances.currency = daily_sales.currency
            and {{ add_days('balances.balance_date', -90) }} < daily_sales.issue_date
            and balances.balance_date >= daily_sales.issue_date
    group by balances.currency, balances.balance_date
),

final as (
    select
        {{ as_of }} as as_of_date,
        balances.currency,
        balances.balance_date as week_end_date,
        balances.is_as_of_date,
        balances.receivables,
        balances.current_receivables,
        balances.overdue_receivables,
        cast(sales_90d.sales_90d as decimal(18, 2)) as sales_90d,
        cast(balances.receivables as {{ float_type() }})
        / nullif(cast(sales_90d.sales_90d as {{ float_type() }}), 0) * 90 as dso_simple_days,
        cast(countback.dso_countback_days as {{ float_type() }}) as dso_countback_days,
        countback.is_dso_countback_capped
    from balances
    inner join sales_90d
        on
            balances.currency = sales_90d.currency
            and balances.balance_date = sales_90d.balance_date
    inner join countback
        on
            balances.currency = countback.currency
            and balances.balance_date = countback.balance_date
)

select * from final
