-- Days sales outstanding on the run's as_of_date, per currency, by the simple (average) method:
-- receivables / invoiced sales of the last 90 days * 90. See _serving__models.yml.
with

invoices as (
    select * from {{ ref('invoices') }}
),

per_currency as (
    select
        currency,
        sum(case when is_open then open_amount else 0 end) as receivables,
        sum(
            case
                when issue_date > {{ as_of_date() }} - 90 then amount
                else 0
            end
        ) as sales_90d
    from invoices
    group by currency
),

final as (
    select
        {{ as_of_date() }} as as_of_date,
        currency,
        cast(receivables as decimal(18, 2)) as receivables,
        cast(sales_90d as decimal(18, 2)) as sales_90d,
        cast(receivables as {{ float_type() }}) / nullif(cast(sales_90d as {{ float_type() }}), 0) * 90 as dso_days
    from per_currency
)

select * from final
