-- Every accepted version of raw.reminders, with the span of as-of dates it is known on
-- ([known_from, known_until), macro raw_versions): what the point-in-time features read.
-- stg_reminders is the current version.
with

source as (
    {{ raw_versions('reminders', ['reminder_id']) }}
),

renamed as (
    select
        cast(reminder_id as varchar) as reminder_id,
        cast(invoice_id as varchar) as invoice_id,
        cast(customer_id as varchar) as customer_id,
        cast(sent_at as timestamp) as sent_at,
        cast(channel as varchar) as channel,
        cast(tone as varchar) as tone,
        cast(response as varchar) as response,
        cast(responded_at as timestamp) as responded_at,
        cast(promised_date as date) as promised_date,
        is_deleted,
        known_from,
        known_until,
        _batch_id as raw_batch_id,
        _loaded_at as loaded_at
    from source
)

select * from renamed
