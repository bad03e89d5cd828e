-- Every accepted version of raw.invoices, with the span of as-of dates it is known on
-- ([known_from, known_until), macro raw_versions): what the point-in-time features read.
-- stg_invoices is the current version.
with

source as (
    {{ raw_versions('invoices', ['invoice_id']) }}
),

renamed as (
    select
        cast(invoice_id as varchar) as invoice_id,
        cast(customer_id as varchar) as customer_id,
        cast(document_type as varchar) as document_type,
        cast(credited_invoice_id as varchar) as credited_invoice_id,
        cast(issue_date as date) as issue_date,
        cast(due_date as date) as due_date,
        cast(amount as decimal(18, 2)) as amount,
        cast(currency as varchar) as currency,
        cast(payment_terms_days as integer) as payment_terms_days,
        cast(is_end_of_month_terms as boolean) as is_end_of_month_terms,
        is_deleted,
        known_from,
        known_until,
        _batch_id as raw_batch_id,
        _loaded_at as loaded_at
    from source
)

select * from renamed
