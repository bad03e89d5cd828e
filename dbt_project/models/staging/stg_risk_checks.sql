with

source as (
    select * from {{ source('ops', 'risk_checks') }}
),

renamed as (
    select
        cast(publisher as varchar) as publisher,
        cast(registry as varchar) as registry,
        cast(company_id as varchar) as company_id,
        cast(last_attempt_at as timestamp) as last_attempt_at,
        cast(last_success_at as timestamp) as last_success_at,
        cast(last_error as varchar) as last_error,
        cast(watermark_date as date) as watermark_date
    from source
)

select * from renamed
