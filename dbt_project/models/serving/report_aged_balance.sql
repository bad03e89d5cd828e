-- Aged balance on the run's as_of_date: open invoices by currency and aging bucket, every bucket present
-- (0 when empty) for every currency invoiced on or before the date.
with

invoices as (
    select * from {{ ref('invoices') }}
),

currencies as (
    select distinct currency from invoices
),

buckets as (
    select
        bucket.aging_bucket,
        bucket.bucket_order
    from (
        values
        {%- for bucket_name in aging_buckets() %}
            ('{{ bucket_name }}', {{ loop.index }}){{ "," if not loop.last }}
        {%- endfor %}
    ) as bucket (aging_bucket, bucket_order)
),

open_by_bucket as (
    select
        currency,
        aging_bucket,
        count(*) as invoice_count,
        sum(open_amount) as open_amount
    from invoices
    where is_open
    group by currency, aging_bucket
),

final as (
    select
        {{ as_of_date() }} as as_of_date,
        currencies.currency,
        buckets.aging_bucket,
        buckets.bucket_order,
        cast(coalesce(open_by_bucket.invoice_count, 0) as integer) as invoice_count,
        cast(coalesce(open_by_bucket.open_amount, 0) as decimal(18, 2)) as open_amount
    from currencies
    cross join buckets
    left join open_by_bucket
        on
            currencies.currency = open_by_bucket.currency
            and buckets.aging_bucket = open_by_bucket.aging_bucket
)

select * from final
