-- Every accepted version of raw.payments, with the span of as-of dates it is known on
-- ([known_from, known_until), macro raw_versions): what the point-in-time features read.
-- stg_payments is the current version.
with

source as (
    {{ raw_versions('payments', ['payment_id']) }}
),

renamed as (
    select
        cast(payment_id as varchar) as payment_id,
        cast(customer_id as varchar) as customer_id,
        cast(payment_date as date) as payment_date,
        cast(amount as decimal(18, 2)) as amount,
        cast(currency as varchar) as currency,
        cast(payment_method as varchar) as payment_method,
        is_deleted,
        known_from,
        known_until,
        _batch_id as raw_batch_id,
        _loaded_at as loaded_at
    from source
)

select * from renamed
