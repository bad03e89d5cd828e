-- Every invoice issued on or before the run's as_of_date, in its state on that date (macro
-- invoice_state_as_of, the same definition the feature rows use).
with

invoices as (
    select * from {{ ref('stg_invoices') }}
    where document_type = 'invoice'
),

invoice_dates as (
    select
        *,
        {{ as_of_date() }} as as_of_date
    from invoices
    where issue_date <= {{ as_of_date() }}
),

state as (
    {{ invoice_state_as_of('invoice_dates') }}
),

final as (
    select
        invoice_id,
        customer_id,
        as_of_date,
        currency,
        issue_date,
        due_date,
        payment_terms_days,
        is_end_of_month_terms,
        amount,
        credited_amount,
        paid_amount,
        open_amount,
        open_amount > {{ settlement_tolerance() }} as is_open,
        settled_date,
        case
            when open_amount > {{ settlement_tolerance() }} then {{ days_between('due_date', 'as_of_date') }}
        end as days_overdue,
        {{ aging_bucket(
            'case when open_amount > ' ~ settlement_tolerance() ~ ' then '
            ~ days_between('due_date', 'as_of_date') ~ ' end'
        ) }} as aging_bucket,
        is_disputed,
        raw_batch_id
    from state
)

select * from final
