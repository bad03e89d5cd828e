-- Channels a customer must not be contacted on (ops.contact_suppressions, relance.ops its one owner): set by
-- hand, by a call outcome or by a provider event; lifted_at ends one.
with

suppressions as (
    -- not named `source`: the table has a column of that name
    select * from {{ source('ops', 'contact_suppressions') }}
),

renamed as (
    select
        cast(customer_id as varchar) as customer_id,
        cast(channel as varchar) as channel,
        cast(reason as varchar) as reason,
        cast(source as varchar) as suppression_source,
        cast(created_at as timestamp) as created_at,
        cast(lifted_at as timestamp) as lifted_at
    from suppressions
)

select * from renamed
