-- The reminder plan (ops.reminders_planned, written by the reminder flow): one row per planned message, with
-- its tone and, for a grouped message, every invoice it covers (invoice_ids, a JSON list as text).
with

source as (
    select * from {{ source('ops', 'reminders_planned') }}
),

renamed as (
    select
        cast(reminder_key as varchar) as reminder_key,
        cast(invoice_id as varchar) as invoice_id,
        cast(customer_id as varchar) as customer_id,
        cast(as_of_date as date) as as_of_date,
        cast(step as varchar) as step,
        cast(channel as varchar) as channel,
        cast(tone as varchar) as tone,
        cast(invoice_ids as varchar) as invoice_ids,
        cast(scenario as varchar) as scenario,
        cast(arm as varchar) as arm,
        cast(open_amount as decimal(18, 2)) as open_amount,
        cast(currency as varchar) as currency,
        cast(planned_at as timestamp) as planned_at
    from source
)

select * from renamed
