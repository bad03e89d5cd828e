-- relance's own sends: the warehouse copy of the durable send ledger (relance.send_ledger mirrors it into
-- ops.reminder_sends after every delivery). One row per reminder_key, its last status.
with

source as (
    select * from {{ source('ops', 'reminder_sends') }}
),

renamed as (
    select
        cast(reminder_key as varchar) as reminder_key,
        cast(invoice_id as varchar) as invoice_id,
        cast(customer_id as varchar) as customer_id,
        cast(step as varchar) as step,
        cast(channel as varchar) as channel,
        cast(status as varchar) as status,
        cast(sent_at as timestamp) as sent_at,
        cast(attempts as integer) as attempts,
        cast(provider_message_id as varchar) as provider_message_id,
        cast(origin as varchar) as origin,
        cast(flow_run_id as varchar) as flow_run_id
    from source
)

select * from renamed
