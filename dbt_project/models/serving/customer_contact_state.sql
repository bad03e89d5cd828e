{{ config(materialized='view') }}
-- One row per customer (stg_customers): how it reacted to being contacted, as of the run's as_of_date. A VIEW, so
-- a call outcome, a provider event or a suppression loaded after the dbt build counts when the engine and the
-- check just before a send read it (the as_of_date of the build is fixed in the view).
--
-- Contacts: the legacy reminders (raw.reminders), relance's own sends that went out (ops.reminder_sends status
-- 'sent'; 'call' sends are call-list tasks, not contacts: the call made is the call outcome) and every call made
-- (raw.call_outcomes, whatever the outcome). Facts count when they happened before as_of_date (midnight UTC), the
-- rule of the features: contacts, answers, calls and provider events with a timestamp < as_of_date, payments dated
-- on or before it (as in the marts). Opt-outs are the exception: they count whenever received, the as-of day
-- included, because they apply from the moment they arrive. So do, up to the end of the as-of day, what a
-- collector's call brought (a promise, a dispute: the last call outcome) and hard bounces: a promise made at 10:00
-- stops the 14:00 send, and a bounce switches channel the same day (the send gate reads this view).
--
-- Promise: the latest one made before as_of_date, a legacy reminder answered 'promise_to_pay' (made at
-- responded_at, amount null) or a call outcome 'promise' (made at called_at, promised_amount); ties go to the call.
-- 'kept' when the customer's payments dated from the day it was made to promise_date + var promise_grace_days (and
-- not after as_of_date) add up to promise_amount (any payment when it is null); 'active' when not kept and
-- promise_date + grace >= as_of_date; 'broken' otherwise. broken_promise_count: promises made in the 365 days
-- before as_of_date that are broken by the same rule.
--
-- Suppressed channels: provider opt-outs (unsubscribe, group_unsubscribe, spamreport -> email; stop -> sms), call
-- outcomes (wrong_contact -> call, do_not_contact -> '*') unless an ops.contact_suppressions row of the customer
-- and channel was lifted at or after the signal (a person decided contact may resume), plus every unlifted
-- ops.contact_suppressions row. '*' alone when any suppression is '*'.
with

customers as (
    select customer_id from {{ ref('stg_customers') }}
),

legacy_reminders as (
    select * from {{ ref('stg_reminders') }}
),

own_messages as (
    -- one row per message (a grouped message covers several invoices)
    select distinct
        reminder_key,
        customer_id,
        sent_at,
        channel
    from {{ ref('int_reminder_sends_expanded_to_invoices') }}
    where channel <> 'call'
),

calls as (
    select * from {{ ref('stg_call_outcomes') }}
),

events as (
    select * from {{ ref('stg_message_events') }}
),

suppressions as (
    select * from {{ ref('stg_contact_suppressions') }}
),

payments as (
    select * from {{ ref('stg_payments') }}
    where payment_date <= {{ as_of_date() }}
),

invoices as (
    select * from {{ ref('invoices') }}
),

disputes as (
    select * from {{ ref('stg_disputes') }}
),

invoice_customers as (
    select
        invoice_id,
        customer_id
    from {{ ref('stg_invoices') }}
),

-- ------------------------------------------------------------------------------------------------ contacts
contacts as (
    select
        customer_id,
        'legacy' as contact_source,
        reminder_id as contact_id,
        sent_at as contacted_at,
        channel
    from legacy_reminders
    where sent_at < cast({{ as_of_date() }} as timestamp)
    union all
    select
        customer_id,
        'relance' as contact_source,
        reminder_key as contact_id,
        sent_at as contacted_at,
        channel
    from own_messages
    where sent_at < cast({{ as_of_date() }} as timestamp)
    union all
    select
        customer_id,
        'call' as contact_source,
        call_id as contact_id,
        called_at as contacted_at,
        'call' as channel
    from calls
    where called_at < cast({{ as_of_date() }} as timestamp)
),

ranked_contacts as (
    select
        *,
        row_number() over (
            partition by customer_id
            order by contacted_at desc, contact_source asc, contact_id desc
        ) as recency_rank
    from contacts
),

contact_summary as (
    select
        customer_id,
        max(case when recency_rank = 1 then contacted_at end) as last_contact_at,
        max(case when recency_rank = 1 then channel end) as last_contact_channel,
        count(
            case when contacted_at >= cast({{ as_of_date() }} as timestamp) - interval '7 day' then 1 end
        ) as contacts_last_7d
    from ranked_contacts
    group by customer_id
),

-- ------------------------------------------------------------------------------------------------ promises
promises as (
    select
        customer_id,
        'reminder' as promise_source,
        reminder_id as promise_id,
        responded_at as promise_made_at,
        promised_date as promise_date,
        cast(null as decimal(18, 2)) as promise_amount
    from legacy_reminders
    where
        response = 'promise_to_pay'
        and responded_at < cast({{ as_of_date() }} as timestamp)
        and promised_date is not null
    union all
    select
        customer_id,
        'call' as promise_source,
        call_id as promise_id,
        called_at as promise_made_at,
        promised_date as promise_date,
        promised_amount as promise_amount
    from calls
    where
        outcome = 'promise'
        and called_at < cast({{ add_days(as_of_date(), 1) }} as timestamp)
        and promised_date is not null
),

promise_payments as (
    select
        promises.promise_source,
        promises.promise_id,
        count(*) as payment_count,
        sum(payments.amount) as paid_amount
    from promises
    inner join payments
        on
            promises.customer_id = payments.customer_id
            and payments.payment_date >= cast(promises.promise_made_at as date)
            and payments.payment_date <= {{ add_days('promises.promise_date', promise_grace_days()) }}
    group by promises.promise_source, promises.promise_id
),

promise_states as (
    select
        promises.*,
        case
            when
                promise_payments.payment_count > 0
                and (promises.promise_amount is null or promise_payments.paid_amount >= promises.promise_amount)
                then 'kept'
            when {{ add_days('promises.promise_date', promise_grace_days()) }} >= {{ as_of_date() }} then 'active'
            else 'broken'
        end as promise_status,
        row_number() over (
            partition by promises.customer_id
            order by
                promises.promise_made_at desc,
                case when promises.promise_source = 'call' then 0 else 1 end,
                promises.promise_id desc
        ) as recency_rank
    from promises
    left join promise_payments
        on
            promises.promise_source = promise_payments.promise_source
            and promises.promise_id = promise_payments.promise_id
),

latest_promises as (
    select * from promise_states
    where recency_rank = 1
),

broken_promises as (
    select
        customer_id,
        count(*) as broken_promise_count
    from promise_states
    where
        promise_status = 'broken'
        and promise_made_at >= cast({{ as_of_date() }} as timestamp) - interval '365 day'
    group by customer_id
),

-- ------------------------------------------------------------------------------------------------ calls
last_calls as (
    select
        customer_id,
        outcome as last_call_outcome,
        called_at as last_call_at
    from (
        select
            customer_id,
            outcome,
            called_at,
            row_number() over (partition by customer_id order by called_at desc, call_id desc) as recency_rank
        from calls
        where called_at < cast({{ add_days(as_of_date(), 1) }} as timestamp)
    ) as ranked_calls
    where recency_rank = 1
),

-- ------------------------------------------------------------------------------------------------ disputes
open_invoice_disputes as (
    select distinct customer_id
    from invoices
    where is_open and is_disputed
),

last_dispute_resolutions as (
    select
        invoice_customers.customer_id,
        max(disputes.resolved_date) as last_resolved_date
    from disputes
    inner join invoice_customers
        on disputes.invoice_id = invoice_customers.invoice_id
    where disputes.resolved_date <= {{ as_of_date() }}
    group by invoice_customers.customer_id
),

-- a dispute heard on the phone stands while it is the latest call and no dispute was resolved since
call_disputes as (
    select last_calls.customer_id
    from last_calls
    left join last_dispute_resolutions
        on last_calls.customer_id = last_dispute_resolutions.customer_id
    where
        last_calls.last_call_outcome = 'dispute'
        and (
            last_dispute_resolutions.last_resolved_date is null
            or last_dispute_resolutions.last_resolved_date < cast(last_calls.last_call_at as date)
        )
),

-- ------------------------------------------------------------------------------------------------ payments
last_payments as (
    select
        customer_id,
        max(payment_date) as last_payment_date
    from payments
    group by customer_id
),

overdue_customers as (
    select distinct customer_id
    from invoices
    where is_open and days_overdue > 0
),

-- ------------------------------------------------------------------------------------------------ provider events
opened_since_contact as (
    select distinct events.customer_id
    from events
    inner join contact_summary
        on events.customer_id = contact_summary.customer_id
    where
        events.event_type in {{ sql_in_list(engagement_events()) }}
        and events.occurred_at > contact_summary.last_contact_at
        and events.occurred_at < cast({{ as_of_date() }} as timestamp)
),

bounces as (
    select
        customer_id,
        count(case when channel = 'email' then 1 end) > 0 as has_email_bounce,
        count(case when channel = 'sms' then 1 end) > 0 as has_sms_bounce
    from events
    where
        event_type in {{ sql_in_list(hard_failure_events()) }}
        and occurred_at >= cast({{ as_of_date() }} as timestamp) - interval '{{ bounce_window_days() }} day'
        and occurred_at < cast({{ add_days(as_of_date(), 1) }} as timestamp)
    group by customer_id
),

-- ------------------------------------------------------------------------------------------------ suppressions
suppression_signals as (
    select
        customer_id,
        'email' as channel,
        occurred_at as signalled_at
    from events
    where event_type in {{ sql_in_list(email_opt_out_events()) }}
    union all
    select
        customer_id,
        'sms' as channel,
        occurred_at as signalled_at
    from events
    where event_type = 'stop'
    union all
    select
        customer_id,
        'call' as channel,
        called_at as signalled_at
    from calls
    where outcome = 'wrong_contact'
    union all
    select
        customer_id,
        '*' as channel,
        called_at as signalled_at
    from calls
    where outcome = 'do_not_contact'
),

active_suppressions as (
    select
        signals.customer_id,
        signals.channel
    from suppression_signals as signals
    where
        not exists (
            select 1
            from suppressions as lifted
            where
                lifted.customer_id = signals.customer_id
                and lifted.channel = signals.channel
                and lifted.lifted_at >= signals.signalled_at
        )
    union all
    select
        customer_id,
        channel
    from suppressions
    where lifted_at is null
),

suppressed as (
    select
        customer_id,
        count(case when channel = '*' then 1 end) > 0 as is_all_suppressed,
        count(case when channel = 'call' then 1 end) > 0 as is_call_suppressed,
        count(case when channel = 'email' then 1 end) > 0 as is_email_suppressed,
        count(case when channel = 'letter' then 1 end) > 0 as is_letter_suppressed,
        count(case when channel = 'sms' then 1 end) > 0 as is_sms_suppressed
    from active_suppressions
    group by customer_id
),

final as (
    select
        customers.customer_id,
        contact_summary.last_contact_at,
        contact_summary.last_contact_channel,
        cast(coalesce(contact_summary.contacts_last_7d, 0) as integer) as contacts_last_7d,
        latest_promises.promise_made_at,
        latest_promises.promise_date,
        latest_promises.promise_amount,
        latest_promises.promise_source,
        latest_promises.promise_status,
        cast(coalesce(broken_promises.broken_promise_count, 0) as integer) as broken_promise_count,
        (
            open_invoice_disputes.customer_id is not null or call_disputes.customer_id is not null
        ) as has_open_dispute,
        last_payments.last_payment_date,
        coalesce(
            last_payments.last_payment_date >= cast(contact_summary.last_contact_at as date), false
        ) as is_paid_since_last_contact,
        coalesce(
            last_payments.last_payment_date >= cast(contact_summary.last_contact_at as date)
            and overdue_customers.customer_id is not null,
            false
        ) as is_partial_payment_since_last_contact,
        opened_since_contact.customer_id is not null as is_opened_since_last_contact,
        nullif(
            concat_ws(
                ',',
                case when bounces.has_email_bounce then 'email' end,
                case when bounces.has_sms_bounce then 'sms' end
            ),
            ''
        ) as bounced_channels,
        case
            when suppressed.is_all_suppressed then '*'
            else
                nullif(
                    concat_ws(
                        ',',
                        case when suppressed.is_call_suppressed then 'call' end,
                        case when suppressed.is_email_suppressed then 'email' end,
                        case when suppressed.is_letter_suppressed then 'letter' end,
                        case when suppressed.is_sms_suppressed then 'sms' end
                    ),
                    ''
                )
        end as suppressed_channels,
        last_calls.last_call_outcome,
        last_calls.last_call_at,
        {{ as_of_date() }} as as_of_date
    from customers
    left join contact_summary
        on customers.customer_id = contact_summary.customer_id
    left join latest_promises
        on customers.customer_id = latest_promises.customer_id
    left join broken_promises
        on customers.customer_id = broken_promises.customer_id
    left join open_invoice_disputes
        on customers.customer_id = open_invoice_disputes.customer_id
    left join call_disputes
        on customers.customer_id = call_disputes.customer_id
    left join last_payments
        on customers.customer_id = last_payments.customer_id
    left join overdue_customers
        on customers.customer_id = overdue_customers.customer_id
    left join opened_since_contact
        on customers.customer_id = opened_since_contact.customer_id
    left join bounces
        on customers.customer_id = bounces.customer_id
    left join suppressed
        on customers.customer_id = suppressed.customer_id
    left join last_calls
        on customers.customer_id = last_calls.customer_id
)

select * from final
