with

source as (
    {{ current_raw_rows('disputes', ['dispute_id']) }}
),

renamed as (
    select
        cast(dispute_id as varchar) as dispute_id,
        cast(invoice_id as varchar) as invoice_id,
        cast(opened_date as date) as opened_date,
        cast(resolved_date as date) as resolved_date,
        cast(reason as varchar) as reason,
        _batch_id as raw_batch_id,
        _loaded_at as loaded_at
    from source
)

select * from renamed
