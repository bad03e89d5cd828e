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
        cast(p_late_30d as {{ float_type() }}) as p_late_30d,
        cast(model_name as varchar) as model_name,
        cast(model_version as varchar) as model_version,
        cast(model_run_id as varchar) as model_run_id,
        cast(dbt_invocation_id as varchar) as dbt_invocation_id,
        cast(scored_at as timestamp) as scored_at,
        cast(flow_run_id as varchar) as flow_run_id
    from source
)

select * from renamed
