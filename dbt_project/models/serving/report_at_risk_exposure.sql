-- Scored open invoices ranked by expected amount at risk (open_amount * p_late) within currency, with the
-- customer's risk grade, the predicted payment date and the main reason; has_open_procedure: the debtor is in a
-- collective procedure (no reminder; the claim is declared instead).
with

worklist as (
    select * from {{ ref('collection_worklist') }}
    where p_late is not null
),

priced as (
    select
        as_of_date,
        invoice_id,
        customer_id,
        customer_name,
        currency,
        open_amount,
        days_overdue,
        p_late,
        target_name,
        risk_grade,
        predicted_payment_date,
        reason_1,
        cast(cast(open_amount as {{ float_type() }}) * p_late as decimal(18, 2)) as expected_at_risk,
        has_open_procedure
    from worklist
),

final as (
    select
        as_of_date,
        invoice_id,
        customer_id,
        customer_name,
        currency,
        open_amount,
        days_overdue,
        p_late,
        target_name,
        risk_grade,
        predicted_payment_date,
        reason_1,
        expected_at_risk,
        cast(
            row_number() over (
                partition by currency order by expected_at_risk desc, invoice_id asc
            ) as integer
        ) as risk_rank,
        has_open_procedure
    from priced
)

select * from final
