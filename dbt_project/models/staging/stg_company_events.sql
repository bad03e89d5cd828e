with

source as (
    {{ current_raw_rows('company_events', ['event_id']) }}
),

renamed as (
    select
        cast(event_id as varchar) as event_id,
        cast(registry as varchar) as registry,
        cast(company_id as varchar) as company_id,
        cast(event_type as varchar) as event_type,
        cast(event_subtype as varchar) as event_subtype,
        cast(event_date as date) as event_date,
        cast(published_date as date) as published_date,
        cast(publisher as varchar) as publisher,
        cast(detail as varchar) as detail,
        cast(is_confidential as boolean) as is_confidential,
        cast(court as varchar) as court,
        cast(source_url as varchar) as source_url,
        _batch_id as raw_batch_id,
        _loaded_at as loaded_at
    from source
)

select * from renamed
