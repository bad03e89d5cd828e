{{ config(materialized='view') }}
-- Every current company event (stg_company_events) of a current customer, matched on its SIREN ('FR-SIREN') or
-- Companies House number ('GB-CRN'), with the customer's name: what the risk alerts to finance read (relance.risk
-- .alerts). A view, like customer_risk_status: it shows events loaded after the last dbt build.
with

customers as (
    select * from {{ ref('stg_customers') }}
),

events as (
    select * from {{ ref('stg_company_events') }}
),

final as (
    select
        customers.customer_id,
        customers.customer_name,
        events.registry,
        events.company_id,
        events.event_id,
        events.event_type,
        events.event_subtype,
        events.event_date,
        events.published_date,
        events.publisher,
        events.detail,
        events.court,
        events.source_url
    from events
    inner join customers
        on
            (events.registry = 'FR-SIREN' and events.company_id = customers.siren)
            or (events.registry = 'GB-CRN' and events.company_id = customers.company_number)
)

select * from final
