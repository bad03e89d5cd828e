{{ config(materialized='table') }}
-- One row per (open invoice, as_of_date) of the dates this run builds: the invoice's reminder history known
-- on that date. Two kinds of reminders count side by side:
-- * the legacy history (raw.reminders), each reminder in the version known on the date (stg_reminder_versions: a
--   reminder, or its answer, loaded in a later batch is known from that batch's load date);
-- * relance's own sends (ops.reminder_sends status 'sent', int_reminder_sends_expanded_to_invoices: a grouped
--   message counts once for every invoice it covers), known from their sent_at; their tone is the plan's.
-- A reminder counts if sent_at < as_of_date (midnight UTC: the date's reminders go out during it), its response if
-- responded_at < as_of_date; a reminder answered later looks exactly like an unanswered one ('none'), as it does to
-- the scoring run on that date (relance's own sends carry no response here: answers to them are call outcomes and
-- provider events, read by serving.customer_contact_state). A promise is broken when its promised_date is before
-- as_of_date and the invoice is still open (it is: only open rows are kept).
with

open_rows as (
    select
        invoice_id,
        as_of_date
    from {{ ref('int_invoice_open_as_of') }}
),

reminders as (
    select * from {{ ref('stg_reminder_versions') }}
    where not is_deleted
),

legacy_sent as (
    select
        open_rows.invoice_id,
        open_rows.as_of_date,
        reminders.reminder_id as contact_id,
        reminders.sent_at,
        reminders.channel,
        reminders.tone,
        case
            when reminders.response = 'none' or reminders.responded_at is null then 'none'
            when reminders.responded_at < cast(open_rows.as_of_date as timestamp) then reminders.response
            else 'none'
        end as known_response,
        reminders.promised_date
    from open_rows
    inner join reminders
        on
            open_rows.invoice_id = reminders.invoice_id
            and open_rows.as_of_date >= reminders.known_from
            and open_rows.as_of_date < reminders.known_until
            and reminders.sent_at < cast(open_rows.as_of_date as timestamp)
),

own_sends as (
    select * from {{ ref('int_reminder_sends_expanded_to_invoices') }}
),

relance_sent as (
    select
        open_rows.invoice_id,
        open_rows.as_of_date,
        own_sends.reminder_key as contact_id,
        own_sends.sent_at,
        own_sends.channel,
        own_sends.tone,
        'none' as known_response,
        cast(null as date) as promised_date
    from open_rows
    inner join own_sends
        on
            open_rows.invoice_id = own_sends.invoice_id
            and own_sends.sent_at < cast(open_rows.as_of_date as timestamp)
),

sent as (
    select
        *,
        row_number() over (
            partition by invoice_id, as_of_date
            order by sent_at desc, contact_id desc
        ) as recency_rank
    from (
        select * from legacy_sent
        union all
        select * from relance_sent
    ) as all_sent
),

aggregated as (
    select
        invoice_id,
        as_of_date,
        count(*) as reminder_count,
        count(case when channel = 'email' then 1 end) as email_count,
        count(case when channel = 'sms' then 1 end) as sms_count,
        count(case when channel = 'letter' then 1 end) as letter_count,
        count(case when channel = 'call' then 1 end) as call_count,
        count(case when tone = 'preventive' then 1 end) as preventive_count,
        count(case when tone = 'cordial' then 1 end) as cordial_count,
        count(case when tone = 'firm' then 1 end) as firm_count,
        count(case when tone = 'formal_notice' then 1 end) as formal_notice_count,
        max(sent_at) as last_reminder_sent_at,
        count(case when known_response = 'promise_to_pay' then 1 end) as promise_count,
        count(
            case
                when known_response = 'promise_to_pay' and promised_date < as_of_date then 1
            end
        ) as broken_promise_count,
        max(case when recency_rank = 1 then known_response end) as last_response
    from sent
    group by invoice_id, as_of_date
),

final as (
    select
        open_rows.invoice_id,
        open_rows.as_of_date,
        cast(coalesce(aggregated.reminder_count, 0) as integer) as reminder_count,
        cast(coalesce(aggregated.email_count, 0) as integer) as email_count,
        cast(coalesce(aggregated.sms_count, 0) as integer) as sms_count,
        cast(coalesce(aggregated.letter_count, 0) as integer) as letter_count,
        cast(coalesce(aggregated.call_count, 0) as integer) as call_count,
        cast(coalesce(aggregated.preventive_count, 0) as integer) as preventive_count,
        cast(coalesce(aggregated.cordial_count, 0) as integer) as cordial_count,
        cast(coalesce(aggregated.firm_count, 0) as integer) as firm_count,
        cast(coalesce(aggregated.formal_notice_count, 0) as integer) as formal_notice_count,
        {{ days_between('cast(aggregated.last_reminder_sent_at as date)', 'open_rows.as_of_date') }}
            as days_since_last_reminder,
        coalesce(aggregated.last_response, 'no_reminder') as last_response,
        cast(coalesce(aggregated.promise_count, 0) as integer) as promise_count,
        cast(coalesce(aggregated.broken_promise_count, 0) as integer) as broken_promise_count
    from open_rows
    left join aggregated
        on
            open_rows.invoice_id = aggregated.invoice_id
            and open_rows.as_of_date = aggregated.as_of_date
)

select * from final
