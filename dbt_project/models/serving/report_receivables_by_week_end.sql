-- Open receivables per currency on each balance date of the finance report's trend grid: the run's as_of_date and
-- the 14 Sundays up to it (the last Sunday on or before as_of_date, then 13 more, a week apart). Each date's
-- balance is the state marts.invoices would show with that date as its as_of_date (macro invoice_state_as_of, the
-- same definition, over current rows): invoices issued by then, minus the payments and credit notes dated by then
-- (int_invoice_settlement_events), open when above the settlement tolerance. current_receivables: the part not yet
-- due (due_date on or after the date, the aged balance's 'not_due' bucket). Read by report_dso_trend and
-- report_cei; on as_of_date, receivables equals the open amount of marts.invoices (a data test checks it).
{%- set as_of = as_of_date() %}
{%- set last_sunday = add_days(as_of, '-cast(extract(dow from ' ~ as_of ~ ') as integer)') %}
with

invoices as (
    select * from {{ ref('stg_invoices') }}
    where document_type = 'invoice' and issue_date <= {{ as_of }}
),

currencies as (
    select distinct currency from invoices
),

grid as (
    select
        {{ add_days(last_sunday, '-7 * week_ends.weeks_back') }} as balance_date
    from (
        values
        {%- for weeks_back in range(14) %}
            ({{ weeks_back }}){{ "," if not loop.last }}
        {%- endfor %}
    ) as week_ends (weeks_back)
    union
    select {{ as_of }} as balance_date
),

-- an invoice whose last settlement is dated on or before the first grid date and which it settled is closed on
-- every grid date: left out (exact, and it keeps the build proportional to the invoices active in the window)
settlement_totals as (
    select
        invoice_id,
        sum(amount) as settled_amount,
        max(event_date) as last_event_date
    from {{ ref('int_invoice_settlement_events') }}
    group by invoice_id
),

candidates as (
    select invoices.*
    from invoices
    left join settlement_totals
        on invoices.invoice_id = settlement_totals.invoice_id
    where
        coalesce(
            settlement_totals.last_event_date > (select min(grid.balance_date) from grid)
            or invoices.amount - settlement_totals.settled_amount > {{ settlement_tolerance() }},
            true
        )
),

invoice_dates as (
    select
        candidates.*,
        grid.balance_date as as_of_date
    from candidates
    inner join grid
        on candidates.issue_date <= grid.balance_date
),

state as (
    {{ invoice_state_as_of('invoice_dates') }}
),

open_by_date as (
    select
        currency,
        as_of_date as balance_date,
        count(*) as open_invoice_count,
        sum(open_amount) as receivables,
        sum(case when due_date >= as_of_date then open_amount else 0 end) as current_receivables
    from state
    where open_amount > {{ settlement_tolerance() }}
    group by currency, as_of_date
),

final as (
    select
        {{ as_of }} as as_of_date,
        currencies.currency,
        grid.balance_date,
        grid.balance_date = {{ as_of }} as is_as_of_date,
        cast(extract(dow from grid.balance_date) as integer) = 0 as is_week_end,
        cast(coalesce(open_by_date.open_invoice_count, 0) as integer) as open_invoice_count,
        cast(coalesce(open_by_date.receivables, 0) as decimal(18, 2)) as receivables,
        cast(coalesce(open_by_date.current_receivables, 0) as decimal(18, 2)) as current_receivables,
        cast(
            coalesce(open_by_date.receivables, 0) - coalesce(open_by_date.current_receivables, 0) as decimal(18, 2)
        ) as overdue_receivables
    from currencies
    cross join grid
    left join open_by_date
        on
            currencies.currency = open_by_date.currency
            and grid.balance_date = open_by_date.balance_date
)

select * from final
