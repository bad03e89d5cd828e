with

source as (
    {{ current_raw_rows('payment_allocations', ['payment_id', 'invoice_id']) }}
),

renamed as (
    select
        cast(payment_id as varchar) as payment_id,
        cast(invoice_id as varchar) as invoice_id,
        cast(allocated_amount as decimal(18, 2)) as allocated_amount,
        _batch_id as raw_batch_id,
        _loaded_at as loaded_at
    from source
)

select * from renamed
