-- One row per (past contact, invoice it was about) whose 14-day outcome is known on the run's as_of_date: the
-- training rows of the response model (relance.reminders.response_model). A contact is a legacy reminder
-- (raw.reminders, its invoice), one of relance's own sends that went out (ops.reminder_sends status 'sent', every
-- invoice it covered: int_reminder_sends_expanded_to_invoices; 'call' sends are call-list tasks, their call is the
-- call outcome) or a call made (raw.call_outcomes, any outcome: the invoices of the call task it answers when the
-- task was sent, else the customer's invoices overdue on the call's day).
--
-- Kept when the contact's day is on or before as_of_date - 14 (the label's window then ends on or before
-- as_of_date) and the invoice was open at the start of that day (issued by then, amount - settlements dated before
-- it > 0.005). Every column but the label is what was true before the contact: days_overdue_at_send and amount
-- (the open amount) on the contact's day before its settlements, the customer's attributes in the version known on
-- that day (stg_customer_versions), prior_contacts = contacts on the invoice strictly before this one (any source,
-- any date). The label is_paid_within_14d: the invoice settled (int_invoice_settlement_dates) on or before the
-- contact's day + 14.
with

invoices as (
    select * from {{ ref('stg_invoices') }}
    where document_type = 'invoice'
),

own_sends as (
    select * from {{ ref('int_reminder_sends_expanded_to_invoices') }}
),

calls as (
    select * from {{ ref('stg_call_outcomes') }}
),

legacy_contacts as (
    select
        'legacy' as contact_source,
        reminder_id as contact_id,
        customer_id,
        invoice_id,
        sent_at,
        channel,
        tone
    from {{ ref('stg_reminders') }}
),

relance_contacts as (
    select
        'relance' as contact_source,
        reminder_key as contact_id,
        customer_id,
        invoice_id,
        sent_at,
        channel,
        tone
    from own_sends
    where channel <> 'call'
),

-- a call answering a call task relance sent: the task's invoices and tone
listed_call_contacts as (
    select
        'call' as contact_source,
        calls.call_id as contact_id,
        calls.customer_id,
        own_sends.invoice_id,
        calls.called_at as sent_at,
        'call' as channel,
        own_sends.tone
    from calls
    inner join own_sends
        on calls.reminder_key = own_sends.reminder_key
),

-- any other call: about the customer's invoices overdue on its day
customer_call_contacts as (
    select
        'call' as contact_source,
        calls.call_id as contact_id,
        calls.customer_id,
        invoices.invoice_id,
        calls.called_at as sent_at,
        'call' as channel,
        cast(null as varchar) as tone
    from calls
    inner join invoices
        on
            calls.customer_id = invoices.customer_id
            and invoices.due_date < cast(calls.called_at as date)
    where
        not exists (
            select 1
            from own_sends
            where own_sends.reminder_key = calls.reminder_key
        )
),

contacts as (
    select
        *,
        -- contacts on the invoice strictly before this one
        rank() over (partition by invoice_id order by sent_at) - 1 as prior_contacts
    from (
        select * from legacy_contacts
        union all
        select * from relance_contacts
        union all
        select * from listed_call_contacts
        union all
        select * from customer_call_contacts
    ) as all_contacts
),

settled_before as (
    select
        contacts.contact_source,
        contacts.contact_id,
        contacts.invoice_id,
        sum(events.amount) as settled_amount
    from contacts
    inner join {{ ref('int_invoice_settlement_events') }} as events
        on
            contacts.invoice_id = events.invoice_id
            and events.event_date < cast(contacts.sent_at as date)
    group by contacts.contact_source, contacts.contact_id, contacts.invoice_id
),

at_send as (
    select
        contacts.contact_source,
        contacts.contact_id,
        contacts.invoice_id,
        contacts.sent_at,
        contacts.channel,
        contacts.tone,
        contacts.prior_contacts,
        -- the invoice's customer (a legacy reminder may not name one)
        coalesce(invoices.customer_id, contacts.customer_id) as customer_id,
        cast(contacts.sent_at as date) as sent_date,
        invoices.due_date,
        invoices.currency,
        settlement.settled_date,
        cast(invoices.amount - coalesce(settled_before.settled_amount, 0) as decimal(18, 2)) as open_amount_at_send
    from contacts
    inner join invoices
        on contacts.invoice_id = invoices.invoice_id
    left join settled_before
        on
            contacts.contact_source = settled_before.contact_source
            and contacts.contact_id = settled_before.contact_id
            and contacts.invoice_id = settled_before.invoice_id
    left join {{ ref('int_invoice_settlement_dates') }} as settlement
        on contacts.invoice_id = settlement.invoice_id
    where
        cast(contacts.sent_at as date) <= {{ add_days(as_of_date(), '-' ~ (response_window_days() | trim)) }}
        and invoices.issue_date <= cast(contacts.sent_at as date)
),

final as (
    select
        at_send.contact_id,
        -- a keyword to sqlfluff, the design's column name
        at_send.contact_source as source,  -- noqa: RF04
        at_send.customer_id,
        at_send.invoice_id,
        at_send.sent_at,
        at_send.channel,
        at_send.tone,
        {{ days_between('at_send.due_date', 'at_send.sent_date') }} as days_overdue_at_send,
        at_send.open_amount_at_send as amount,
        at_send.currency,
        customer_versions.customer_type,
        customer_versions.sector_section,
        customer_versions.size_band,
        customer_versions.country_code,
        cast(at_send.prior_contacts as integer) as prior_contacts,
        coalesce(
            at_send.settled_date <= {{ add_days('at_send.sent_date', response_window_days()) }}, false
        ) as is_paid_within_14d
    from at_send
    left join {{ ref('stg_customer_versions') }} as customer_versions
        on
            at_send.customer_id = customer_versions.customer_id
            and not customer_versions.is_deleted
            and at_send.sent_date >= customer_versions.known_from
            and at_send.sent_date < customer_versions.known_until
    where at_send.open_amount_at_send > {{ settlement_tolerance() }}
)

select * from final
