{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook=[
            "{% if is_incremental() %}delete from {{ this }} where as_of_date = {{ as_of_date() }}{% endif %}"
        ]
    )
}}
-- One risk grade per customer per scored day, A (best) to E (worst), from the invoice predictions of that day
-- and the customer's payment behaviour known on it. Incremental: each run replaces its own as_of_date (the
-- pre-hook deletes it first) and keeps every earlier day, so the grade's history stays as it was computed.
--
-- Over the customer's invoices open on as_of_date and scored for it (ops.predictions, open_amount > 0):
--   weighted_p_late         = sum(open_amount * p_late) / sum(open_amount)
--   weighted_days_late_p50  = sum(open_amount * days_late_p50) / sum(open_amount), over rows with a p50
--   late_share              = cust_late_share of ml_invoice_features on as_of_date (settled before it, late)
-- Components in [0, 1]: p = weighted_p_late; delay = weighted_days_late_p50 clipped to [0, 60] / 60;
-- behaviour = late_share. risk_score = (0.60 p + 0.15 delay + 0.25 behaviour) / (sum of the weights of the
-- components that are not null): a customer without history or a model without quantiles is graded on what is
-- known. Grades: A < 0.15 <= B < 0.30 <= C < 0.50 <= D < 0.70 <= E.
-- Weights are open amounts in each invoice's currency (relance holds no exchange rates). p_late means what
-- target_name says, so grades are comparable between days scored for the same target only.
with

open_invoices as (
    select * from {{ ref('invoices') }}
    where is_open and open_amount > 0
),

predictions as (
    select * from {{ ref('stg_predictions') }}
    where as_of_date = {{ as_of_date() }}
),

behaviour as (
    select
        customer_id,
        max(cust_late_share) as late_share,
        max(cust_settled_invoice_count) as settled_invoice_count
    from {{ ref('ml_invoice_features') }}
    where as_of_date = {{ as_of_date() }}
    group by customer_id
),

scored as (
    select
        open_invoices.customer_id,
        cast(open_invoices.open_amount as {{ float_type() }}) as weight,
        predictions.p_late,
        predictions.days_late_p50,
        predictions.target_name,
        predictions.model_version
    from open_invoices
    inner join predictions
        on open_invoices.invoice_id = predictions.invoice_id
    where predictions.p_late is not null
),

exposure as (
    select
        customer_id,
        count(*) as scored_invoice_count,
        sum(weight) as scored_open_amount,
        sum(weight * p_late) / sum(weight) as weighted_p_late,
        sum(case when days_late_p50 is not null then weight * days_late_p50 end)
        / nullif(sum(case when days_late_p50 is not null then weight end), 0) as weighted_days_late_p50,
        max(target_name) as target_name,
        max(model_version) as model_version
    from scored
    group by customer_id
),

components as (
    select
        exposure.*,
        behaviour.late_share,
        coalesce(behaviour.settled_invoice_count, 0) as settled_invoice_count,
        -- greatest() and least() skip nulls: without quantiles there is no delay component
        case
            when exposure.weighted_days_late_p50 is not null
                then least(greatest(exposure.weighted_days_late_p50, 0), 60) / 60.0
        end as delay_component
    from exposure
    left join behaviour
        on exposure.customer_id = behaviour.customer_id
),

scores as (
    -- rounded to 6 decimals before the thresholds: 0.6 * 0.5 / 0.6 is 0.5, not 0.49999999999999994
    select
        *,
        cast(
            (
                0.60 * weighted_p_late
                + 0.15 * coalesce(delay_component, 0)
                + 0.25 * coalesce(late_share, 0)
            ) / (
                0.60
                + case when delay_component is null then 0 else 0.15 end
                + case when late_share is null then 0 else 0.25 end
            ) as decimal(9, 6)
        ) as risk_score
    from components
),

final as (
    select
        customer_id,
        {{ as_of_date() }} as as_of_date,
        case
            when risk_score < 0.15 then 'A'
            when risk_score < 0.30 then 'B'
            when risk_score < 0.50 then 'C'
            when risk_score < 0.70 then 'D'
            else 'E'
        end as risk_grade,
        cast(risk_score as {{ float_type() }}) as risk_score,
        cast(weighted_p_late as {{ float_type() }}) as weighted_p_late,
        cast(weighted_days_late_p50 as {{ float_type() }}) as weighted_days_late_p50,
        cast(late_share as {{ float_type() }}) as late_share,
        cast(settled_invoice_count as integer) as settled_invoice_count,
        cast(scored_invoice_count as integer) as scored_invoice_count,
        cast(scored_open_amount as decimal(18, 2)) as scored_open_amount,
        target_name,
        model_version
    from scores
)

select * from final
