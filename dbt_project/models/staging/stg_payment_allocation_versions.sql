-- Every accepted version of raw.payment_allocations, with the span of as-of dates it is known on
-- ([known_from, known_until), macro raw_versions): what the point-in-time features read.
-- stg_payment_allocations is the current version.
with

source as (
    {{ raw_versions('payment_allocations', ['payment_id', 'invoice_id']) }}
),

renamed as (
    select
        cast(payment_id as varchar) as payment_id,
        cast(invoice_id as varchar) as invoice_id,
        cast(allocated_amount as decimal(18, 2)) as allocated_amount,
        is_deleted,
        known_from,
        known_until,
        _batch_id as raw_batch_id,
        _loaded_at as loaded_at
    from source
)

select * from renamed
