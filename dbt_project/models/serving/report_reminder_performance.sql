-- relance's own reminders of the last 13 weeks and what followed, per currency, scenario, channel and tone. See
-- _serving__finance.yml.
--
-- A message: a send of ops.reminder_sends that went out (int_reminder_sends_expanded_to_invoices, every invoice it
-- covered), dated by the run that planned it (stg_reminders_planned.as_of_date; the day of sent_at without a plan
-- row), kept when that date is in the 91 days ending on as_of_date. Its invoices: those it covered that were open on
-- that date (amount - payments and credit notes dated on or before it, as the planning run saw them). It is paid
-- within 14 days when every one of them settled (int_invoice_settlement_dates) by its date + 14, which is known only
-- once that day is on or before as_of_date (outcome known). days_to_pay: from its date to the settlement of its last
-- invoice, for messages whose invoices all settled by as_of_date.
{%- set as_of = as_of_date() %}
with

sends as (
    select * from {{ ref('int_reminder_sends_expanded_to_invoices') }}
),

planned as (
    select * from {{ ref('stg_reminders_planned') }}
),

invoices as (
    select * from {{ ref('stg_invoices') }}
    where document_type = 'invoice'
),

message_invoices as (
    select
        sends.reminder_key,
        sends.invoice_id,
        sends.customer_id,
        sends.channel,
        invoices.amount,
        coalesce(sends.tone, 'unknown') as tone,
        coalesce(planned.scenario, 'unknown') as scenario,
        coalesce(planned.currency, invoices.currency) as currency,
        coalesce(planned.as_of_date, cast(sends.sent_at as date)) as message_date
    from sends
    left join planned
        on sends.reminder_key = planned.reminder_key
    left join invoices
        on sends.invoice_id = invoices.invoice_id
),

in_window as (
    select * from message_invoices
    where
        message_date > {{ add_days(as_of, -91) }}
        and message_date <= {{ as_of }}
),

settled_by_message_date as (
    select
        in_window.reminder_key,
        in_window.invoice_id,
        sum(events.amount) as settled_amount
    from in_window
    inner join {{ ref('int_invoice_settlement_events') }} as events
        on
            in_window.invoice_id = events.invoice_id
            and in_window.message_date >= events.event_date
    group by in_window.reminder_key, in_window.invoice_id
),

open_invoices as (
    select
        in_window.reminder_key,
        in_window.invoice_id,
        in_window.message_date,
        in_window.amount - coalesce(settled_by_message_date.settled_amount, 0) as open_amount,
        case
            when settlement.settled_date <= {{ as_of }} then settlement.settled_date
        end as settled_date
    from in_window
    left join settled_by_message_date
        on
            in_window.reminder_key = settled_by_message_date.reminder_key
            and in_window.invoice_id = settled_by_message_date.invoice_id
    left join {{ ref('int_invoice_settlement_dates') }} as settlement
        on in_window.invoice_id = settlement.invoice_id
    where in_window.amount - coalesce(settled_by_message_date.settled_amount, 0) > {{ settlement_tolerance() }}
),

messages as (
    select
        reminder_key,
        max(customer_id) as customer_id,
        max(channel) as channel,
        max(tone) as tone,
        max(scenario) as scenario,
        max(currency) as currency,
        max(message_date) as message_date
    from in_window
    group by reminder_key
),

message_outcomes as (
    select
        messages.reminder_key,
        messages.customer_id,
        messages.channel,
        messages.tone,
        messages.scenario,
        messages.currency,
        messages.message_date,
        {{ add_days('messages.message_date', response_window_days()) }} <= {{ as_of }} as is_outcome_known,
        count(open_invoices.invoice_id) as invoice_count,
        coalesce(sum(open_invoices.open_amount), 0) as amount_covered,
        count(
            case
                when open_invoices.settled_date <= {{ add_days('messages.message_date', response_window_days()) }}
                    then 1
            end
        ) as paid_14d_invoice_count,
        coalesce(
            sum(
                case
                    when
                        open_invoices.settled_date
                        <= {{ add_days('messages.message_date', response_window_days()) }}
                        then open_invoices.open_amount
                end
            ),
            0
        ) as paid_14d_invoice_amount,
        count(open_invoices.settled_date) as settled_invoice_count,
        max(open_invoices.settled_date) as last_settled_date
    from messages
    left join open_invoices
        on messages.reminder_key = open_invoices.reminder_key
    group by
        messages.reminder_key,
        messages.customer_id,
        messages.channel,
        messages.tone,
        messages.scenario,
        messages.currency,
        messages.message_date
),

per_message as (
    select
        *,
        is_outcome_known and invoice_count > 0 and paid_14d_invoice_count = invoice_count as is_paid_within_14d,
        case
            when invoice_count > 0 and settled_invoice_count = invoice_count
                then {{ days_between('message_date', 'last_settled_date') }}
        end as days_to_pay
    from message_outcomes
),

final as (
    select
        {{ as_of }} as as_of_date,
        currency,
        scenario,
        channel,
        tone,
        {{ add_days(as_of, -90) }} as period_start,
        {{ as_of }} as period_end,
        cast(count(*) as integer) as messages,
        cast(count(distinct customer_id) as integer) as customers,
        cast(sum(amount_covered) as decimal(18, 2)) as amount_covered,
        cast(count(case when is_outcome_known then 1 end) as integer) as messages_outcome_known,
        cast(sum(case when is_outcome_known then amount_covered else 0 end) as decimal(18, 2)) as amount_outcome_known,
        cast(count(case when is_paid_within_14d then 1 end) as integer) as paid_14d_messages,
        cast(
            sum(case when is_outcome_known then paid_14d_invoice_amount else 0 end) as decimal(18, 2)
        ) as paid_14d_amount,
        cast(count(case when is_paid_within_14d then 1 end) as {{ float_type() }})
        / nullif(cast(count(case when is_outcome_known then 1 end) as {{ float_type() }}), 0) as paid_14d_rate,
        cast(percentile_cont(0.5) within group (order by days_to_pay) as {{ float_type() }}) as median_days_to_pay
    from per_message
    group by currency, scenario, channel, tone
)

select * from final
