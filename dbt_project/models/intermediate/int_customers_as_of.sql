{{ config(materialized='table') }}
-- One row per (customer, as_of_date) with an open invoice on a date this run builds: the customer's attributes
-- (type, sector, size, credit limit, SIREN, UK company number, account opening...) as known on that date, from the
-- load history (stg_customer_versions): a version applies from the load date of its batch, the history import and
-- the first version of a customer to every earlier date. No version known (a customer deleted by its source):
-- null attributes.
with

probes as (
    select distinct
        customer_id,
        as_of_date
    from {{ ref('int_invoice_open_as_of') }}
),

versions as (
    select * from {{ ref('stg_customer_versions') }}
    where not is_deleted
),

final as (
    select
        probes.customer_id,
        probes.as_of_date,
        versions.customer_type,
        versions.siren,
        versions.company_number,
        versions.naf_code,
        versions.sector_section,
        versions.size_band,
        versions.region,
        versions.country_code,
        versions.credit_limit,
        versions.currency,
        versions.payment_terms_days,
        versions.is_end_of_month_terms,
        versions.created_date,
        versions.raw_batch_id
    from probes
    left join versions
        on
            probes.customer_id = versions.customer_id
            and probes.as_of_date >= versions.known_from
            and probes.as_of_date < versions.known_until
)

select * from final
