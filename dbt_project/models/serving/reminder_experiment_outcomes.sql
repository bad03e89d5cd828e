-- One row per (scenario, customer) randomised into an arm (stg_experiment_assignments) whose 14-day outcome window
-- is over on var as_of_date: is_paid says the customer paid something (stg_payments.payment_date) in the 14 days
-- after the day it was assigned; first_channel is the channel of the first message relance sent it on or after
-- that day within the window (stg_reminder_sends 'sent', with its scenario from stg_reminders_planned; null for
-- the holdout and for a treated customer who got none). relance.reminders.experiment.holdout_effect turns these
-- rows into the effect of reminders with a confidence interval (the report's "Effet des relances").
with

assignments as (
    select * from {{ ref('stg_experiment_assignments') }}
    where {{ add_days('assigned_on', 14) }} <= {{ as_of_date() }}
),

sent_messages as (
    select
        reminder_sends.customer_id,
        planned_messages.scenario,
        reminder_sends.channel,
        reminder_sends.sent_at
    from {{ ref('stg_reminder_sends') }} as reminder_sends
    inner join {{ ref('stg_reminders_planned') }} as planned_messages
        on reminder_sends.reminder_key = planned_messages.reminder_key
    where reminder_sends.status = 'sent' and reminder_sends.sent_at is not null
),

first_sends as (
    select
        assignments.scenario,
        assignments.customer_id,
        sent_messages.channel,
        row_number() over (
            partition by assignments.scenario, assignments.customer_id
            order by sent_messages.sent_at, sent_messages.channel
        ) as send_rank
    from assignments
    inner join sent_messages
        on
            assignments.customer_id = sent_messages.customer_id
            and assignments.scenario = sent_messages.scenario
            and cast(sent_messages.sent_at as date) >= assignments.assigned_on
            and cast(sent_messages.sent_at as date) <= {{ add_days('assignments.assigned_on', 14) }}
),

payments as (
    select
        assignments.scenario,
        assignments.customer_id,
        count(*) as payment_count
    from assignments
    inner join {{ ref('stg_payments') }} as payments
        on
            assignments.customer_id = payments.customer_id
            and assignments.assigned_on < payments.payment_date
            and {{ add_days('assignments.assigned_on', 14) }} >= payments.payment_date
    group by assignments.scenario, assignments.customer_id
),

final as (
    select
        assignments.scenario,
        assignments.customer_id,
        assignments.arm,
        assignments.assigned_on,
        first_sends.channel as first_channel,
        coalesce(payments.payment_count, 0) > 0 as is_paid,
        cast({{ as_of_date() }} as date) as as_of_date
    from assignments
    left join first_sends
        on
            assignments.scenario = first_sends.scenario
            and assignments.customer_id = first_sends.customer_id
            and first_sends.send_rank = 1
    left join payments
        on
            assignments.scenario = payments.scenario
            and assignments.customer_id = payments.customer_id
)

select * from final
