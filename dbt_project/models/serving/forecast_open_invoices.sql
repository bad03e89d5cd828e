-- The input of the 13-week cash-in forecast (models/cashflow.py): every invoice open on the run's as_of_date,
-- what is still due on it and when it falls due, with the prediction written to ops.predictions for that date
-- (p_late under target_name and the days-late quantiles; null when the invoice was not scored, or the model gives
-- no quantiles). Python turns each row into a distribution of its payment date; nothing is summed here.
with

invoices as (
    select * from {{ ref('invoices') }}
    where is_open
),

predictions as (
    select * from {{ ref('stg_predictions') }}
    where as_of_date = {{ as_of_date() }}
),

final as (
    select
        invoices.as_of_date,
        invoices.invoice_id,
        invoices.customer_id,
        invoices.currency,
        invoices.issue_date,
        invoices.due_date,
        invoices.amount,
        invoices.open_amount,
        invoices.days_overdue,
        invoices.is_disputed,
        predictions.p_late,
        predictions.target_name,
        predictions.days_late_p10,
        predictions.days_late_p50,
        predictions.days_late_p90,
        predictions.model_name,
        predictions.model_version,
        predictions.model_run_id,
        predictions.invoice_id is not null as is_scored
    from invoices
    left join predictions
        on invoices.invoice_id = predictions.invoice_id
)

select * from final
