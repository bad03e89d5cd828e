-- One claim to declare (déclaration de créance) per customer in an open collective procedure and currency, on the
-- run's as_of_date: what is owed for the documents of claim_declaration_invoices, split into amounts due at the
-- opening judgment and not yet due (the declaration lists them separately), and the deadline: two months (var
-- claim_deadline_months) after the BODACC publication of the judgment (customer_risk_status.claim_deadline_date).
-- status: 'to_declare' while the deadline is today or later, 'deadline_passed' after it.
with

procedures as (
    select * from {{ ref('customer_risk_status') }}
    where has_open_procedure
),

lines as (
    select * from {{ ref('claim_declaration_invoices') }}
),

customers as (
    select * from {{ ref('stg_customers') }}
),

claim_amounts as (
    select
        claim_id,
        customer_id,
        currency,
        sum(case when is_due_at_judgment then open_amount else 0 end) as amount_due,
        sum(case when not is_due_at_judgment then open_amount else 0 end) as amount_not_yet_due,
        count(case when document_type = 'invoice' then 1 end) as invoice_count
    from lines
    group by claim_id, customer_id, currency
),

final as (
    select
        claim_amounts.claim_id,
        procedures.customer_id,
        customers.customer_name,
        procedures.company_id,
        procedures.court,
        procedures.procedure_kind,
        procedures.judgment_date,
        procedures.procedure_published_date as published_date,
        procedures.claim_deadline_date as deadline_date,
        {{ days_between(as_of_date(), 'procedures.claim_deadline_date') }} as days_to_deadline,
        claim_amounts.currency,
        cast(claim_amounts.amount_due as decimal(18, 2)) as amount_due,
        cast(claim_amounts.amount_not_yet_due as decimal(18, 2)) as amount_not_yet_due,
        cast(claim_amounts.invoice_count as integer) as invoice_count,
        case
            when {{ days_between(as_of_date(), 'procedures.claim_deadline_date') }} >= 0 then 'to_declare'
            else 'deadline_passed'
        end as status,
        {{ as_of_date() }} as as_of_date,
        procedures.source_url
    from claim_amounts
    inner join procedures
        on claim_amounts.customer_id = procedures.customer_id
    left join customers
        on procedures.customer_id = customers.customer_id
)

select * from final
