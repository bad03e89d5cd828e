{{ config(materialized='table') }}
-- One row per (customer, as_of_date) with an open invoice on a date this run builds: external company-risk
-- events known on that date (published_date <= as_of_date, in the version known then: an event loaded in a later
-- batch is known from that batch's load date), matched on the customer's SIREN as known on the date
-- (int_customers_as_of). Customers with no event (and every customer while raw.company_events is empty) get 0
-- counts and null dates.
with

probes as (
    select distinct
        customer_id,
        as_of_date
    from {{ ref('int_invoice_open_as_of') }}
),

customers as (
    select
        customer_id,
        as_of_date,
        siren
    from {{ ref('int_customers_as_of') }}
),

events as (
    select * from {{ ref('stg_company_event_versions') }}
    where registry = 'FR-SIREN' and not is_deleted
),

known as (
    select
        probes.customer_id,
        probes.as_of_date,
        events.event_type,
        events.published_date
    from probes
    inner join customers
        on
            probes.customer_id = customers.customer_id
            and probes.as_of_date = customers.as_of_date
    inner join events
        on
            customers.siren = events.company_id
            and probes.as_of_date >= events.published_date
            and probes.as_of_date >= events.known_from
            and probes.as_of_date < events.known_until
),

aggregated as (
    select
        customer_id,
        as_of_date,
        count(case when event_type = 'collective_procedure' then 1 end) as collective_procedure_count,
        count(case when event_type = 'closure' then 1 end) as closure_count,
        count(
            case when published_date > {{ add_days('as_of_date', -365) }} then 1 end
        ) as event_count_365d,
        max(published_date) as last_event_published_date
    from known
    group by customer_id, as_of_date
),

final as (
    select
        probes.customer_id,
        probes.as_of_date,
        cast(coalesce(aggregated.collective_procedure_count, 0) as integer) as collective_procedure_count,
        cast(coalesce(aggregated.closure_count, 0) as integer) as closure_count,
        cast(coalesce(aggregated.event_count_365d, 0) as integer) as event_count_365d,
        aggregated.last_event_published_date
    from probes
    left join aggregated
        on
            probes.customer_id = aggregated.customer_id
            and probes.as_of_date = aggregated.as_of_date
)

select * from final
