{{ config(materialized='view') }}
-- One row per customer with at least one current company event (stg_company_events), matched on the customer's
-- current SIREN ('FR-SIREN') or Companies House number ('GB-CRN'): is a collective procedure open, which judgment
-- opened it, where and until when the claim is declared. Current state, not as of a date: a view, so the check
-- just before a send (Python) sees events loaded after the dbt build.
--
-- State-changing events are procedure_opened, procedure_converted, plan_adopted (open) and procedure_closed,
-- ordered by published_date, then event_date, then event_id. has_open_procedure: the latest opening-type event
-- comes after the latest closure (or there is none). procedure_event_id: the earliest procedure_opened after the
-- latest closure; when only a conversion or a plan is known since then, the earliest of those.
-- claim_deadline_date = procedure_published_date + claim_deadline_months months (macro add_months, the month
-- arithmetic both targets share: the day is kept and clamped to the month's end: 01-31 + 2 months = 03-31,
-- 12-31 + 2 months = 02-28).
with

customers as (
    select * from {{ ref('stg_customers') }}
),

events as (
    select * from {{ ref('stg_company_events') }}
),

customer_companies as (
    select
        customer_id,
        'FR-SIREN' as registry,
        siren as company_id
    from customers
    where siren is not null
    union all
    select
        customer_id,
        'GB-CRN' as registry,
        company_number as company_id
    from customers
    where company_number is not null
),

-- one company per customer: the one with events (a customer with both a SIREN and a UK number and events on
-- both is read on its SIREN)
matched_companies as (
    select
        customer_id,
        registry,
        company_id
    from (
        select
            customer_companies.customer_id,
            customer_companies.registry,
            customer_companies.company_id,
            row_number() over (
                partition by customer_companies.customer_id
                order by case when customer_companies.registry = 'FR-SIREN' then 0 else 1 end
            ) as company_rank
        from customer_companies
        where exists (
            select 1
            from events
            where
                events.registry = customer_companies.registry
                and events.company_id = customer_companies.company_id
        )
    ) as ranked
    where company_rank = 1
),

customer_events as (
    select
        matched_companies.customer_id,
        events.*,
        -- 1 = the latest event of the customer, of any type
        row_number() over (
            partition by matched_companies.customer_id
            order by events.published_date desc, events.event_date desc nulls last, events.event_id desc
        ) as recency_rank
    from matched_companies
    inner join events
        on
            matched_companies.registry = events.registry
            and matched_companies.company_id = events.company_id
),

state_events as (
    select
        *,
        event_type = 'procedure_closed' as is_closure,
        -- position in the customer's procedure timeline, 1 = first
        row_number() over (
            partition by customer_id
            order by published_date asc, event_date asc nulls first, event_id asc
        ) as state_seq
    from customer_events
    where event_type in ('procedure_opened', 'procedure_converted', 'plan_adopted', 'procedure_closed')
),

timeline as (
    select
        customer_id,
        max(case when not is_closure then state_seq end) as last_opening_seq,
        max(case when is_closure then state_seq end) as last_closure_seq,
        max(state_seq) as last_state_seq
    from state_events
    group by customer_id
),

open_procedures as (
    -- the event that opened the procedure still open
    select
        state_events.customer_id,
        state_events.event_id,
        state_events.event_subtype,
        state_events.event_date,
        state_events.published_date,
        state_events.court,
        state_events.source_url,
        row_number() over (
            partition by state_events.customer_id
            order by
                case when state_events.event_type = 'procedure_opened' then 0 else 1 end,
                state_events.state_seq
        ) as opening_rank
    from state_events
    inner join timeline
        on state_events.customer_id = timeline.customer_id
    where
        not state_events.is_closure
        and timeline.last_opening_seq > coalesce(timeline.last_closure_seq, 0)
        and state_events.state_seq > coalesce(timeline.last_closure_seq, 0)
),

last_states as (
    -- the latest state-changing event: is it a closure?
    select
        state_events.customer_id,
        state_events.is_closure
    from state_events
    inner join timeline
        on
            state_events.customer_id = timeline.customer_id
            and state_events.state_seq = timeline.last_state_seq
),

last_events as (
    select
        customer_id,
        registry,
        company_id,
        event_type,
        published_date
    from customer_events
    where recency_rank = 1
),

final as (
    select
        last_events.customer_id,
        last_events.registry,
        last_events.company_id,
        open_procedures.event_id is not null as has_open_procedure,
        open_procedures.event_id as procedure_event_id,
        open_procedures.event_subtype as procedure_kind,
        open_procedures.event_date as judgment_date,
        open_procedures.published_date as procedure_published_date,
        open_procedures.court,
        open_procedures.source_url,
        {{ add_months('open_procedures.published_date', positive_int_var('claim_deadline_months')) }}
            as claim_deadline_date,
        coalesce(last_states.is_closure, false) as is_closed,
        last_events.event_type as last_event_type,
        last_events.published_date as last_event_published_date
    from last_events
    left join open_procedures
        on
            last_events.customer_id = open_procedures.customer_id
            and open_procedures.opening_rank = 1
    left join last_states
        on last_events.customer_id = last_states.customer_id
)

select * from final
