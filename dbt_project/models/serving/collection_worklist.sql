-- One row per invoice open on the run's as_of_date, with its customer's contact details and the score
-- written to ops.predictions for that date (null when not scored). Input of the reminder policy.
with

invoices as (
    select * from {{ ref('invoices') }}
    where is_open
),

customers as (
    select * from {{ ref('customers') }}
),

predictions as (
    select * from {{ ref('stg_predictions') }}
    where as_of_date = {{ as_of_date() }}
),

final as (
    select
        invoices.invoice_id,
        invoices.customer_id,
        customers.customer_name,
        customers.customer_type,
        customers.sector_section,
        customers.email,
        customers.phone,
        invoices.currency,
        invoices.amount,
        invoices.open_amount,
        invoices.issue_date,
        invoices.due_date,
        invoices.days_overdue,
        invoices.aging_bucket,
        invoices.is_disputed,
        predictions.p_late,
        predictions.model_version,
        predictions.model_run_id,
        invoices.as_of_date,
        invoices.raw_batch_id
    from invoices
    left join customers
        on invoices.customer_id = customers.customer_id
    left join predictions
        on invoices.invoice_id = predictions.invoice_id
)

select * from final
