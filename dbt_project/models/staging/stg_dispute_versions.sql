-- Every accepted version of raw.disputes, with the span of as-of dates it is known on
-- ([known_from, known_until), macro raw_versions): what the point-in-time features read.
-- stg_disputes is the current version.
with

source as (
    {{ raw_versions('disputes', ['dispute_id']) }}
),

renamed as (
    select
        cast(dispute_id as varchar) as dispute_id,
        cast(invoice_id as varchar) as invoice_id,
        cast(opened_date as date) as opened_date,
        cast(resolved_date as date) as resolved_date,
        cast(reason as varchar) as reason,
        is_deleted,
        known_from,
        known_until,
        _batch_id as raw_batch_id,
        _loaded_at as loaded_at
    from source
)

select * from renamed
