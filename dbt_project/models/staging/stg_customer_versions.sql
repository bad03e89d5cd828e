-- Every accepted version of raw.customers, with the span of as-of dates it is known on
-- ([known_from, known_until), macro raw_versions): what the point-in-time features read.
-- stg_customers is the current version.
with

source as (
    {{ raw_versions('customers', ['customer_id'], first_version_known_always=true) }}
),

renamed as (
    select
        cast(customer_id as varchar) as customer_id,
        cast(customer_name as varchar) as customer_name,
        cast(customer_type as varchar) as customer_type,
        cast(siren as varchar) as siren,
        cast(company_number as varchar) as company_number,
        cast(naf_code as varchar) as naf_code,
        cast(sector_section as varchar) as sector_section,
        cast(size_band as varchar) as size_band,
        cast(region as varchar) as region,
        cast(address_line1 as varchar) as address_line1,
        cast(address_line2 as varchar) as address_line2,
        cast(postal_code as varchar) as postal_code,
        cast(city as varchar) as city,
        cast(language as varchar) as language,  -- noqa: RF04
        cast(country_code as varchar) as country_code,
        cast(email as varchar) as email,
        cast(phone as varchar) as phone,
        cast(credit_limit as decimal(18, 2)) as credit_limit,
        cast(currency as varchar) as currency,
        cast(payment_terms_days as integer) as payment_terms_days,
        cast(is_end_of_month_terms as boolean) as is_end_of_month_terms,
        cast(created_date as date) as created_date,
        is_deleted,
        known_from,
        known_until,
        _batch_id as raw_batch_id,
        _loaded_at as loaded_at
    from source
)

select * from renamed
