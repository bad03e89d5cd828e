{{ config(materialized='table') }}
-- One row per (customer, as_of_date) with an open invoice on a date this run builds: what the public registries
-- said about the customer's company as known on that date. The company is the customer's as known on the date
-- (int_customers_as_of): registry 'FR-SIREN' matches its SIREN, 'GB-CRN' its UK company number, never across.
-- Point in time (the same rule as every feature): an event is known from its published_date, a profile from its
-- observed_date, each in the version known on the date (stg_*_versions, macro raw_versions): a row of the first
-- load of its source (the history import) is known from its business date, a row first loaded in a later batch
-- only from that batch's load date. The vocabulary is relance.risk.events; the shared rules are macros/risk.sql.
-- Customers with no event and no profile (and everyone while the risk tables are empty) get 0 counts, false
-- flags and null dates.
{%- set recent_days = positive_int_var('risk_recent_days') | int %}
with

probes as (
    select distinct
        customer_id,
        as_of_date
    from {{ ref('int_invoice_open_as_of') }}
),

customers as (
    select * from {{ ref('int_customers_as_of') }}
),

-- the customer's company numbers on the date, one row per registry (an equi-join key for events and profiles)
companies as (
    select
        customer_id,
        as_of_date,
        'FR-SIREN' as registry,
        siren as company_id
    from customers
    where siren is not null
    union all
    select
        customer_id,
        as_of_date,
        'GB-CRN' as registry,
        company_number as company_id
    from customers
    where company_number is not null
),

events as (
    select * from {{ ref('stg_company_event_versions') }}
    where not is_deleted
),

profiles as (
    select * from {{ ref('stg_company_profile_versions') }}
    where not is_deleted
),

known_events as (
    select
        companies.customer_id,
        companies.as_of_date,
        events.event_id,
        events.event_type,
        events.event_date,
        events.published_date,
        case
            when events.event_type in {{ sql_in_list(procedure_open_types()) }} then 'procedure_open'
            when events.event_type = 'procedure_closed' then 'procedure_closed'
            when events.event_type in ('accounts_filed', 'accounts_overdue') then events.event_type
        end as event_group
    from companies
    inner join events
        on
            companies.registry = events.registry
            and companies.company_id = events.company_id
            and companies.as_of_date >= events.published_date
            and companies.as_of_date >= events.known_from
            and companies.as_of_date < events.known_until
),

-- the latest event of each group by publication, then event date: what decides an open procedure and overdue
-- accounts
ranked_events as (
    select
        *,
        row_number() over (
            partition by customer_id, as_of_date, event_group
            order by published_date desc, event_date desc nulls last, event_id desc
        ) as recency_rank
    from known_events
    where event_group is not null
),

latest_events as (
    select
        customer_id,
        as_of_date,
        max(case when event_group = 'procedure_open' then published_date end) as open_published_date,
        max(case when event_group = 'procedure_open' then event_date end) as open_event_date,
        max(case when event_group = 'procedure_closed' then published_date end) as closed_published_date,
        max(case when event_group = 'procedure_closed' then event_date end) as closed_event_date,
        max(case when event_group = 'accounts_filed' then published_date end) as filed_published_date,
        max(case when event_group = 'accounts_filed' then event_date end) as filed_event_date,
        max(case when event_group = 'accounts_overdue' then published_date end) as overdue_published_date,
        max(case when event_group = 'accounts_overdue' then event_date end) as overdue_event_date
    from ranked_events
    where recency_rank = 1
    group by customer_id, as_of_date
),

event_totals as (
    select
        customer_id,
        as_of_date,
        count(
            case when event_type in {{ sql_in_list(collective_procedure_types()) }} then 1 end
        ) as collective_procedure_count,
        count(case when event_type = 'closure' then 1 end) as closure_count,
        count(
            case when published_date > {{ add_days('as_of_date', -365) }} then 1 end
        ) as event_count_365d,
        max(published_date) as last_event_published_date,
        max(case when event_type = 'director_change' then published_date end) as last_director_change_date,
        max(case when event_type = 'head_office_move' then published_date end) as last_head_office_move_date,
        -- the latest fiscal year end with accounts filed (accounts_filed.event_date)
        max(case when event_type = 'accounts_filed' then event_date end) as last_accounts_year_end
    from known_events
    group by customer_id, as_of_date
),

known_profiles as (
    select
        companies.customer_id,
        companies.as_of_date,
        profiles.observed_date,
        profiles.headcount_band,
        profiles.is_accounts_overdue,
        row_number() over (
            partition by companies.customer_id, companies.as_of_date
            order by profiles.observed_date desc, profiles.profile_id desc
        ) as recency_rank
    from companies
    inner join profiles
        on
            companies.registry = profiles.registry
            and companies.company_id = profiles.company_id
            and companies.as_of_date >= profiles.observed_date
            and companies.as_of_date >= profiles.known_from
            and companies.as_of_date < profiles.known_until
),

latest_profiles as (
    select * from known_profiles
    where recency_rank = 1
),

final as (
    select
        probes.customer_id,
        probes.as_of_date,
        cast(coalesce(event_totals.collective_procedure_count, 0) as integer) as collective_procedure_count,
        cast(coalesce(event_totals.closure_count, 0) as integer) as closure_count,
        cast(coalesce(event_totals.event_count_365d, 0) as integer) as event_count_365d,
        event_totals.last_event_published_date,
        -- open: the latest opening, conversion or plan is later than the latest closure (or there is none)
        coalesce({{ published_later(
            'latest_events.open_published_date', 'latest_events.open_event_date',
            'latest_events.closed_published_date', 'latest_events.closed_event_date'
        ) }}, false) as has_open_procedure,
        event_totals.last_director_change_date,
        event_totals.last_head_office_move_date,
        coalesce(
            event_totals.last_director_change_date > {{ add_days('probes.as_of_date', -recent_days) }}, false
        ) as has_recent_director_change,
        coalesce(
            event_totals.last_head_office_move_date > {{ add_days('probes.as_of_date', -recent_days) }}, false
        ) as has_recent_head_office_move,
        -- overdue: the latest profile says so (unless accounts were filed after it was observed), an
        -- accounts_overdue event is newer than the latest filing, or the latest fiscal year filed ended more
        -- than accounts_overdue_months() before the date
        coalesce(
            (
                latest_profiles.is_accounts_overdue
                and not coalesce(latest_events.filed_published_date > latest_profiles.observed_date, false)
            )
            or {{ published_later(
                'latest_events.overdue_published_date', 'latest_events.overdue_event_date',
                'latest_events.filed_published_date', 'latest_events.filed_event_date'
            ) }}
            or event_totals.last_accounts_year_end
            < {{ add_months('probes.as_of_date', -(accounts_overdue_months() | int)) }},
            false
        ) as is_accounts_overdue,
        event_totals.last_accounts_year_end,
        latest_profiles.headcount_band,
        latest_profiles.observed_date as profile_observed_date
    from probes
    left join event_totals
        on
            probes.customer_id = event_totals.customer_id
            and probes.as_of_date = event_totals.as_of_date
    left join latest_events
        on
            probes.customer_id = latest_events.customer_id
            and probes.as_of_date = latest_events.as_of_date
    left join latest_profiles
        on
            probes.customer_id = latest_profiles.customer_id
            and probes.as_of_date = latest_profiles.as_of_date
)

select * from final
