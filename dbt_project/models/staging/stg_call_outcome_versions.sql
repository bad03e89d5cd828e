-- Every accepted version of raw.call_outcomes, with the span of as-of dates it is known on
-- ([known_from, known_until), macro raw_versions). stg_call_outcomes is the current version.
with

source as (
    {{ raw_versions('call_outcomes', ['call_id']) }}
),

renamed as (
    select
        cast(call_id as varchar) as call_id,
        cast(reminder_key as varchar) as reminder_key,
        cast(customer_id as varchar) as customer_id,
        cast(called_at as timestamp) as called_at,
        cast(outcome as varchar) as outcome,
        cast(promised_date as date) as promised_date,
        cast(promised_amount as decimal(18, 2)) as promised_amount,
        cast(collector as varchar) as collector,
        cast(note as varchar) as note,
        is_deleted,
        known_from,
        known_until,
        _batch_id as raw_batch_id,
        _loaded_at as loaded_at
    from source
)

select * from renamed
