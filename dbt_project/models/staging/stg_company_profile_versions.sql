-- Every accepted version of raw.company_profiles, with the span of as-of dates it is known on
-- ([known_from, known_until), macro raw_versions): what the point-in-time features read.
-- stg_company_profiles is the current version.
with

source as (
    {{ raw_versions('company_profiles', ['profile_id']) }}
),

renamed as (
    select
        cast(profile_id as varchar) as profile_id,
        cast(registry as varchar) as registry,
        cast(company_id as varchar) as company_id,
        cast(publisher as varchar) as publisher,
        cast(observed_date as date) as observed_date,
        cast(company_name as varchar) as company_name,
        cast(status as varchar) as status,
        cast(closure_date as date) as closure_date,
        cast(naf_code as varchar) as naf_code,
        cast(headcount_band as varchar) as headcount_band,
        cast(head_office_id as varchar) as head_office_id,
        cast(directors as varchar) as directors,
        cast(accounts_year as integer) as accounts_year,
        cast(revenue as decimal(18, 2)) as revenue,
        cast(net_income as decimal(18, 2)) as net_income,
        cast(accounts_next_due as date) as accounts_next_due,
        cast(is_accounts_overdue as boolean) as is_accounts_overdue,
        is_deleted,
        known_from,
        known_until,
        _batch_id as raw_batch_id,
        _loaded_at as loaded_at
    from source
)

select * from renamed
