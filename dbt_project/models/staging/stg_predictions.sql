{#- Tagged post_scoring: ops.predictions is written by the scoring flow between the two dbt builds. -#}
{{ config(tags=['post_scoring']) }}

with

source as (
    select * from {{ source('ops', 'predictions') }}
),

renamed as (
    select
        cast(invoice_id as varchar) as invoice_id,
        cast(as_of_date as date) as as_of_date,
        cast(p_late as {{ float_type() }}) as p_late,
        cast(target_name as varchar) as target_name,
        cast(days_late_p10 as {{ float_type() }}) as days_late_p10,
        cast(days_late_p50 as {{ float_type() }}) as days_late_p50,
        cast(days_late_p90 as {{ float_type() }}) as days_late_p90,
        cast(reason_1 as varchar) as reason_1,
        cast(reason_2 as varchar) as reason_2,
        cast(reason_3 as varchar) as reason_3,
        cast(model_name as varchar) as model_name,
        cast(model_version as varchar) as model_version,
        cast(model_run_id as varchar) as model_run_id,
        cast(dbt_invocation_id as varchar) as dbt_invocation_id,
        cast(scored_at as timestamp) as scored_at,
        cast(flow_run_id as varchar) as flow_run_id
    from source
)

select * from renamed
