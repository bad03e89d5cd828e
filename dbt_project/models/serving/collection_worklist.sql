-- One row per invoice open on the run's as_of_date, with its customer's contact details, the prediction
-- written to ops.predictions for that date (null when not scored) and why: the three reasons towards late, the
-- predicted payment date with its p10..p90 range, and the customer's risk grade of the day. Input of the
-- reminder policy and the call list. has_open_procedure / procedure_published_date: the customer is in a
-- collective procedure (customer_risk_status, current state when this table was built; the last check before a
-- send reads that view again); is_degrading: payer_degradation; risk_checked_at / is_risk_data_stale: when a
-- company-risk source last answered about the customer's company (stg_risk_checks), and whether that is older
-- than var risk_stale_after_hours before the as-of date. language: 'fr' for customers in a French-speaking country
-- (FR, BE, LU, CH, MC: macro french_speaking_countries), else 'en' (no country included).
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

checks as (
    select * from {{ ref('stg_risk_checks') }}
),

-- the last complete answer of any risk source about each customer's company: a per-company check (live mode)
-- or a whole-source one (a notice file of the files mode covers every company)
company_checks as (
    select
        customers.customer_id,
        max(checks.last_success_at) as last_success_at
    from customers
    inner join checks
        on
            (customers.siren = checks.company_id and checks.registry = 'FR-SIREN')
            or (customers.company_number = checks.company_id and checks.registry = 'GB-CRN')
    group by customers.customer_id
),

source_checks as (
    select max(last_success_at) as last_success_at
    from checks
    where registry = '*'
),

risk_checks as (
    select
        customers.customer_id,
        greatest(company_checks.last_success_at, source_checks.last_success_at) as risk_checked_at
    from customers
    cross join source_checks
    left join company_checks
        on customers.customer_id = company_checks.customer_id
    where customers.siren is not null or customers.company_number is not null
),

final as (
    select
        invoices.invoice_id,
        invoices.customer_id,
        customers.customer_name,
        customers.customer_type,
        customers.sector_section,
        customers.size_band,
        customers.country_code,
        -- the language of the customer's messages (relance's templates: French or English): the customer's own
        -- when its data says it, else French for a French-speaking country, English elsewhere
        case
            when lower(customers.language) in ('fr', 'en') then lower(customers.language)
            when upper(customers.country_code) in {{ sql_in_list(french_speaking_countries()) }} then 'fr'
            else 'en'
        -- a keyword to sqlfluff, the design's column name
        end as language,  -- noqa: RF04
        customers.email,
        customers.phone,
        -- the postal address a letter is sent to (null when the customer master has none)
        customers.address_line1,
        customers.address_line2,
        customers.postal_code,
        customers.city,
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
        coalesce(degradation.is_degrading, false) as is_degrading,
        risk_checks.risk_checked_at,
        -- a company-risk source that has not answered for risk_stale_after_hours before the as-of date: the
        -- stop and the alerts work on the last known data (customers without a SIREN or number: never stale)
        coalesce(
            risk_checks.customer_id is not null
            and (
                risk_checks.risk_checked_at is null
                or risk_checks.risk_checked_at
                < cast(invoices.as_of_date as timestamp)
                - interval '{{ positive_int_var('risk_stale_after_hours') }} hour'
            ),
            false
        ) as is_risk_data_stale
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
    left join risk_checks
        on invoices.customer_id = risk_checks.customer_id
)

select * from final
