-- Every invoice issued on or before the run's as_of_date, in its state on that date.
with

balances as (
    select * from {{ ref('int_invoice_balances_as_of') }}
    where as_of_date = {{ as_of_date() }}
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
        is_open,
        settled_date,
        days_overdue,
        aging_bucket,
        is_disputed,
        raw_batch_id
    from balances
)

select * from final
