-- Every accepted version of raw.message_events, with the span of as-of dates it is known on
-- ([known_from, known_until), macro raw_versions). stg_message_events is the current version.
with

source as (
    {{ raw_versions('message_events', ['event_id']) }}
),

renamed as (
    select
        cast(event_id as varchar) as event_id,
        cast(reminder_key as varchar) as reminder_key,
        cast(customer_id as varchar) as customer_id,
        -- a keyword to sqlfluff, the raw column's name
        cast(provider as varchar) as provider,  -- noqa: RF04
        cast(channel as varchar) as channel,
        cast(event as varchar) as event_type,
        cast(occurred_at as timestamp) as occurred_at,
        cast(reason as varchar) as reason,
        is_deleted,
        known_from,
        known_until,
        _batch_id as raw_batch_id,
        _loaded_at as loaded_at
    from source
)

select * from renamed
