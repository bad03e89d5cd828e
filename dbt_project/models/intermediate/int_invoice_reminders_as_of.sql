-- One row per (open invoice, as_of_date): reminder history known on that date. Reminders count if
-- sent_at < as_of_date (midnight UTC), promises if responded_at < as_of_date; a promise is broken when
-- its promised_date is before as_of_date and the invoice is still open (it is: only open rows are kept).
with

open_invoices as (
    select
        invoice_id,
        as_of_date
    from {{ ref('int_invoice_balances_as_of') }}
    where is_open
),

reminders as (
    select * from {{ ref('stg_reminders') }}
),

aggregated as (
    select
        open_invoices.invoice_id,
        open_invoices.as_of_date,
        count(reminders.reminder_id) as reminder_count,
        max(reminders.sent_at) as last_reminder_sent_at,
        count(
            case
                when
                    reminders.response = 'promise_to_pay'
                    and reminders.responded_at < cast(open_invoices.as_of_date as timestamp)
                    then 1
            end
        ) as promise_count,
        count(
            case
                when
                    reminders.response = 'promise_to_pay'
                    and reminders.responded_at < cast(open_invoices.as_of_date as timestamp)
                    and reminders.promised_date < open_invoices.as_of_date
                    then 1
            end
        ) as broken_promise_count
    from open_invoices
    left join reminders
        on
            open_invoices.invoice_id = reminders.invoice_id
            and reminders.sent_at < cast(open_invoices.as_of_date as timestamp)
    group by open_invoices.invoice_id, open_invoices.as_of_date
),

final as (
    select
        invoice_id,
        as_of_date,
        cast(reminder_count as integer) as reminder_count,
        {{ days_between('cast(last_reminder_sent_at as date)', 'as_of_date') }} as days_since_last_reminder,
        cast(promise_count as integer) as promise_count,
        cast(broken_promise_count as integer) as broken_promise_count
    from aggregated
)

select * from final
