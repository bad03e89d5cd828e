-- The trend's as-of row is report_dso's figure (the simple method, same receivables and sales), and every currency
-- has 14 points: as_of_date and the 13 Sundays before it. Returns the currencies that differ.
with

trend as (
    select
        currency,
        count(*) as points,
        count(case when is_as_of_date then 1 end) as as_of_points,
        max(case when is_as_of_date then receivables end) as receivables,
        max(case when is_as_of_date then sales_90d end) as sales_90d,
        max(case when is_as_of_date then dso_simple_days end) as dso_simple_days
    from {{ ref('report_dso_trend') }}
    group by currency
),

dso as (
    select * from {{ ref('report_dso') }}
)

select
    trend.*,
    dso.receivables as dso_receivables,
    dso.sales_90d as dso_sales_90d,
    dso.dso_days
from trend
full outer join dso
    on trend.currency = dso.currency
where
    trend.currency is null
    or dso.currency is null
    or trend.points <> 14
    or trend.as_of_points <> 1
    or trend.receivables <> dso.receivables
    or trend.sales_90d <> dso.sales_90d
    or not coalesce(abs(trend.dso_simple_days - dso.dso_days) <= 1e-9 * abs(dso.dso_days), dso.dso_days is null)
