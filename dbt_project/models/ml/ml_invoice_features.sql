{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[
            "{% if is_incremental() %}delete from {{ this }} where as_of_date in (select as_of_date from "
            ~ "{{ ref('int_feature_dates') }} where needs_build){% endif %}"
        ]
    )
}}
-- depends_on: {{ ref('int_feature_dates') }}
-- Training and scoring rows: one per (invoice, as_of_date) for every invoice open on the date. Incremental:
-- each run appends the dates of int_feature_dates that need a build (new grid dates and the run's scoring
-- date, whose old rows the pre-hook deletes first); dates built earlier stay as they were built, so a past
-- scoring date keeps the exact rows its predictions were made from. Training reads the grid dates (through
-- ml_invoice_labels), scoring the run's date. Same SQL for both: the date is the only parameter.
-- Every feature uses only facts known on the row's as_of_date: a fact at its business date when it came with the
-- history import (the first batch of its source), else from the load date of the batch that brought it when that
-- is later (a payment booked late, a reminder answered late); customer attributes and invoice amendments in the
-- version known on the date (stg_*_versions, macro raw_versions). The columns are the contract in
-- models/contract.py (enforced in _ml__models.yml). Counts are 0 and means null when there is no history.
with

open_rows as (
    select * from {{ ref('int_invoice_open_as_of') }}
),

customers as (
    select * from {{ ref('int_customers_as_of') }}
),

history as (
    select * from {{ ref('int_customer_history_as_of') }}
),

reminders as (
    select * from {{ ref('int_invoice_reminders_as_of') }}
),

priors as (
    select * from {{ ref('int_segment_priors_as_of') }}
),

risk as (
    select * from {{ ref('int_customer_risk_as_of') }}
),

final as (
    select
        -- keys
        open_rows.invoice_id,
        open_rows.customer_id,
        open_rows.as_of_date,
        -- context (not features)
        open_rows.currency,
        open_rows.issue_date,
        open_rows.due_date,
        cast(open_rows.open_amount as decimal(18, 2)) as open_amount_ccy,
        -- invoice
        cast(open_rows.amount as {{ float_type() }}) as amount,
        cast(open_rows.open_amount as {{ float_type() }}) as open_amount,
        cast(open_rows.open_amount / nullif(open_rows.amount, 0) as {{ float_type() }}) as open_share,
        cast(open_rows.payment_terms_days as {{ float_type() }}) as payment_terms_days,
        cast(case when open_rows.is_end_of_month_terms then 1 else 0 end as {{ float_type() }})
            as is_end_of_month_terms,
        cast({{ days_between('open_rows.as_of_date', 'open_rows.due_date') }} as {{ float_type() }})
            as days_to_due,
        cast({{ days_between('open_rows.issue_date', 'open_rows.as_of_date') }} as {{ float_type() }})
            as invoice_age_days,
        cast(extract(month from open_rows.issue_date) as {{ float_type() }}) as issue_month,
        cast(extract(month from open_rows.due_date) as {{ float_type() }}) as due_month,
        cast(open_rows.payment_count as {{ float_type() }}) as invoice_payment_count,
        cast(case when open_rows.is_disputed then 1 else 0 end as {{ float_type() }}) as is_disputed,
        cast(open_rows.dispute_count as {{ float_type() }}) as dispute_count,
        -- customer history
        cast(history.settled_invoice_count as {{ float_type() }}) as cust_settled_invoice_count,
        cast(history.late_invoice_count as {{ float_type() }}) as cust_late_invoice_count,
        cast(history.late_share as {{ float_type() }}) as cust_late_share,
        cast(history.mean_days_late as {{ float_type() }}) as cust_mean_days_late,
        cast(history.median_days_late_365d as {{ float_type() }}) as cust_median_days_late_365d,
        cast(history.ew_mean_days_late as {{ float_type() }}) as cust_ew_mean_days_late,
        cast(history.recent_mean_days_late as {{ float_type() }}) as cust_recent_mean_days_late,
        cast(history.days_late_trend as {{ float_type() }}) as cust_days_late_trend,
        cast(history.partial_payment_share as {{ float_type() }}) as cust_partial_payment_share,
        cast(
            {{ days_between('history.last_payment_date', 'open_rows.as_of_date') }} as {{ float_type() }}
        ) as cust_days_since_last_payment,
        cast(history.open_amount as {{ float_type() }}) as cust_open_amount,
        cast(history.open_invoice_count as {{ float_type() }}) as cust_open_invoice_count,
        cast(history.overdue_invoice_count as {{ float_type() }}) as cust_overdue_invoice_count,
        cast(history.open_amount / nullif(customers.credit_limit, 0) as {{ float_type() }})
            as cust_credit_limit_usage,
        cast(
            {{ days_between('customers.created_date', 'open_rows.as_of_date') }} as {{ float_type() }}
        ) as cust_tenure_days,
        -- reminder history of this invoice
        cast(reminders.reminder_count as {{ float_type() }}) as reminder_count,
        cast(reminders.email_count as {{ float_type() }}) as reminder_email_count,
        cast(reminders.sms_count as {{ float_type() }}) as reminder_sms_count,
        cast(reminders.letter_count as {{ float_type() }}) as reminder_letter_count,
        cast(reminders.call_count as {{ float_type() }}) as reminder_call_count,
        cast(reminders.preventive_count as {{ float_type() }}) as reminder_preventive_count,
        cast(reminders.cordial_count as {{ float_type() }}) as reminder_cordial_count,
        cast(reminders.firm_count as {{ float_type() }}) as reminder_firm_count,
        cast(reminders.days_since_last_reminder as {{ float_type() }}) as days_since_last_reminder,
        cast(reminders.promise_count as {{ float_type() }}) as promise_count,
        cast(reminders.broken_promise_count as {{ float_type() }}) as broken_promise_count,
        -- sector and size priors
        cast(sector_prior.late_share as {{ float_type() }}) as sector_late_share,
        cast(sector_prior.mean_days_late as {{ float_type() }}) as sector_mean_days_late,
        cast(size_prior.late_share as {{ float_type() }}) as size_late_share,
        cast(size_prior.mean_days_late as {{ float_type() }}) as size_mean_days_late,
        -- external company risk (int_customer_risk_as_of; 0 / null while the risk tables are empty)
        cast(case when risk.collective_procedure_count > 0 then 1 else 0 end as {{ float_type() }})
            as risk_collective_procedure,
        cast(case when risk.closure_count > 0 then 1 else 0 end as {{ float_type() }}) as risk_closure,
        cast(risk.event_count_365d as {{ float_type() }}) as risk_event_count_365d,
        cast(
            {{ days_between('risk.last_event_published_date', 'open_rows.as_of_date') }} as {{ float_type() }}
        ) as risk_days_since_last_event,
        cast(case when risk.has_open_procedure then 1 else 0 end as {{ float_type() }}) as risk_open_procedure,
        cast(case when risk.has_recent_director_change then 1 else 0 end as {{ float_type() }})
            as risk_recent_director_change,
        cast(case when risk.has_recent_head_office_move then 1 else 0 end as {{ float_type() }})
            as risk_recent_head_office_move,
        cast(case when risk.is_accounts_overdue then 1 else 0 end as {{ float_type() }}) as risk_accounts_overdue,
        cast({{ headcount_band_employees('risk.headcount_band') }} as {{ float_type() }}) as risk_headcount_band,
        -- categorical features
        cast(open_rows.currency as varchar) as invoice_currency,
        cast(open_rows.document_type as varchar) as document_type,
        cast(customers.customer_type as varchar) as customer_type,
        cast(customers.sector_section as varchar) as sector_section,
        cast(customers.size_band as varchar) as size_band,
        cast(reminders.last_response as varchar) as last_reminder_response,
        -- lineage
        cast('{{ invocation_id }}' as varchar) as dbt_invocation_id
    from open_rows
    left join customers
        on
            open_rows.customer_id = customers.customer_id
            and open_rows.as_of_date = customers.as_of_date
    inner join history
        on
            open_rows.customer_id = history.customer_id
            and open_rows.as_of_date = history.as_of_date
    inner join reminders
        on
            open_rows.invoice_id = reminders.invoice_id
            and open_rows.as_of_date = reminders.as_of_date
    left join priors as sector_prior
        on
            sector_prior.segment = 'sector_section'
            and coalesce(customers.sector_section, '(none)') = sector_prior.segment_value
            and open_rows.as_of_date = sector_prior.as_of_date
    left join priors as size_prior
        on
            size_prior.segment = 'size_band'
            and coalesce(customers.size_band, '(none)') = size_prior.segment_value
            and open_rows.as_of_date = size_prior.as_of_date
    inner join risk
        on
            open_rows.customer_id = risk.customer_id
            and open_rows.as_of_date = risk.as_of_date
)

select * from final
