-- One row per document in a claim declaration (déclaration de créance): the invoices of a customer in an open
-- collective procedure (customer_risk_status) issued on or before the opening judgment and still open on the run's
-- as_of_date, and the credit notes issued on or before it that credit no invoice of the invoices mart (a credit
-- note crediting an invoice already nets into that invoice's open_amount). Invoices issued after the judgment are
-- left out: claims born after the opening are paid at maturity, outside the declaration. is_due_at_judgment:
-- due_date <= judgment_date (amounts due and not yet due are declared separately). claim_id =
-- procedure_event_id || ':' || currency, the key of claim_declarations.
with

procedures as (
    select * from {{ ref('customer_risk_status') }}
    where has_open_procedure
),

invoices as (
    select * from {{ ref('invoices') }}
),

credit_notes as (
    select * from {{ ref('stg_invoices') }}
    where document_type = 'credit_note' and issue_date <= {{ as_of_date() }}
),

documents as (
    select
        customer_id,
        invoice_id,
        'invoice' as document_type,
        issue_date,
        due_date,
        open_amount,
        currency
    from invoices
    where is_open
    union all
    select
        credit_notes.customer_id,
        credit_notes.invoice_id,
        'credit_note' as document_type,
        credit_notes.issue_date,
        credit_notes.due_date,
        credit_notes.amount as open_amount,
        credit_notes.currency
    from credit_notes
    left join invoices
        on credit_notes.credited_invoice_id = invoices.invoice_id
    where invoices.invoice_id is null
),

pre_judgment as (
    select
        procedures.procedure_event_id || ':' || documents.currency as claim_id,
        procedures.customer_id,
        documents.invoice_id,
        documents.document_type,
        documents.issue_date,
        documents.due_date,
        documents.open_amount,
        documents.currency,
        documents.due_date <= procedures.judgment_date as is_due_at_judgment
    from procedures
    inner join documents
        on
            procedures.customer_id = documents.customer_id
            and procedures.judgment_date >= documents.issue_date
),

-- a claim exists only where an invoice is still open: credit notes alone declare nothing
claims_with_invoices as (
    select distinct claim_id
    from pre_judgment
    where document_type = 'invoice'
),

final as (
    select
        pre_judgment.claim_id,
        pre_judgment.invoice_id,
        pre_judgment.issue_date,
        pre_judgment.due_date,
        cast(pre_judgment.open_amount as decimal(18, 2)) as open_amount,
        pre_judgment.currency,
        pre_judgment.is_due_at_judgment,
        pre_judgment.document_type,
        pre_judgment.customer_id,
        {{ as_of_date() }} as as_of_date
    from pre_judgment
    inner join claims_with_invoices
        on pre_judgment.claim_id = claims_with_invoices.claim_id
)

select * from final
