-- relance's own sends that went out (ops.reminder_sends status 'sent' with a sent_at), one row per (send, invoice
-- it covers). A grouped message (one message for several invoices of a customer) is recorded in the send ledger
-- with its lead invoice only; the plan lists them all (ops.reminders_planned.invoice_ids, a JSON list of ids):
-- the send covers the lead invoice and every listed one. A send without a plan row, or a plan without the list
-- (planned before the reminder engine), covers its lead invoice only. Tone from the plan (null without a plan row).
-- Current state, no as-of filter: a send is known from its sent_at (relance knows what it sent when it sends), so
-- readers keep sent_at < their as-of date.
with

sends as (
    select * from {{ ref('stg_reminder_sends') }}
    where status = 'sent' and sent_at is not null
),

planned as (
    select * from {{ ref('stg_reminders_planned') }}
),

messages as (
    select
        sends.reminder_key,
        sends.sent_at,
        sends.channel,
        planned.tone,
        planned.invoice_ids,
        coalesce(sends.customer_id, planned.customer_id) as customer_id,
        coalesce(sends.invoice_id, planned.invoice_id) as lead_invoice_id,
        coalesce(sends.step, planned.step) as step
    from sends
    left join planned
        on sends.reminder_key = planned.reminder_key
),

listed_invoices as (
    select
        reminder_key,
        {{ json_text_array_elements("nullif(trim(invoice_ids), '')") }} as invoice_id
    from messages
    where invoice_ids is not null
),

covered as (
    select
        reminder_key,
        lead_invoice_id as invoice_id
    from messages
    where lead_invoice_id is not null
    union distinct
    select
        reminder_key,
        invoice_id
    from listed_invoices
    where invoice_id is not null
),

final as (
    select
        messages.reminder_key,
        covered.invoice_id,
        messages.customer_id,
        messages.sent_at,
        messages.channel,
        messages.tone,
        messages.step,
        coalesce(covered.invoice_id = messages.lead_invoice_id, false) as is_lead_invoice
    from messages
    inner join covered
        on messages.reminder_key = covered.reminder_key
)

select * from final
