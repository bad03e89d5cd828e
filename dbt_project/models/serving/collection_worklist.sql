-- One row per invoice open on the run's as_of_date, with its customer's contact details, the prediction
-- written to ops.predictions for that date (null when not scored) and why: the three reasons towards late, the
-- predicted payment date with its p10..p90 range, and the customer's risk grade of the day. Input of the
-- reminder policy and the call list. has_open_procedure / procedure_published_date: the customer is in a
-- collective procedure (customer_risk_status, current state when this table was built; the last check before a
-- send reads that view again); is_degrading: payer_degradation.
--
-- predicted_payment_date(_p10, _p90) = due_date + days_late_p50 (p10, p90) rounded to whole days (halves up, the
-- same on both targets), never before the day after as_of_date: the invoice is open on it, so paid after it.
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

grades as (
    select * from {{ ref('customer_risk_grades') }}
    where as_of_date = {{ as_of_date() }}
),

risk_status as (
    select * from {{ ref('customer_risk_status') }}
),

degradation as (
    select * from {{ ref('payer_degradation') }}
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
        predictions.target_name,
        predictions.reason_1,
        predictions.reason_2,
        predictions.reason_3,
        predictions.days_late_p10,
        predictions.days_late_p50,
        predictions.days_late_p90,
        -- the payment dates: greatest() skips nulls, so each is null without its quantile
        case
            when predictions.days_late_p10 is not null
                then greatest(
                    {{ add_days('invoices.due_date', 'floor(predictions.days_late_p10 + 0.5)') }},
                    {{ add_days('invoices.as_of_date', 1) }}
                )
        end as predicted_payment_date_p10,
        case
            when predictions.days_late_p50 is not null
                then greatest(
                    {{ add_days('invoices.due_date', 'floor(predictions.days_late_p50 + 0.5)') }},
                    {{ add_days('invoices.as_of_date', 1) }}
                )
        end as predicted_payment_date,
        case
            when predictions.days_late_p90 is not null
                then greatest(
                    {{ add_days('invoices.due_date', 'floor(predictions.days_late_p90 + 0.5)') }},
                    {{ add_days('invoices.as_of_date', 1) }}
                )
        end as predicted_payment_date_p90,
        grades.risk_grade,
        grades.risk_score,
        predictions.model_version,
        predictions.model_run_id,
        invoices.as_of_date,
        invoices.raw_batch_id,
        coalesce(risk_status.has_open_procedure, false) as has_open_procedure,
        risk_status.procedure_published_date,
        coalesce(degradation.is_degrading, false) as is_degrading
    from invoices
    left join customers
        on invoices.customer_id = customers.customer_id
    left join predictions
        on invoices.invoice_id = predictions.invoice_id
    left join grades
        on invoices.customer_id = grades.customer_id
    left join risk_status
        on invoices.customer_id = risk_status.customer_id
    left join degradation
        on invoices.customer_id = degradation.customer_id
)

select * from final
