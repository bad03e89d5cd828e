{#-
    The state of invoices on their as-of dates, from facts known then. `invoice_dates` names a CTE (or relation)
    with the stg_invoices columns of document_type 'invoice' plus as_of_date. One definition for the feature
    rows (int_invoice_open_as_of, many dates, open invoices only) and the marts (invoices, the run's date).
    Payments count if payment_date <= as_of_date, credit notes if issued <= it, disputes if opened <= it and
    not resolved by then; settled_date only when it is on or before as_of_date.
    known_from_loads: the point-in-time variant of the feature rows. `invoice_dates` then comes from
    int_invoice_states_known (amounts paid and credited, payment count and settled date as known on the date) and
    disputes count in the version known on the date (stg_dispute_versions: a dispute, or its resolution, loaded
    late is known from its load date). The marts read current rows (the default).
-#}
{% macro invoice_state_as_of(invoice_dates, known_from_loads=false) -%}
    select
        invoice_dates.invoice_id,
        invoice_dates.as_of_date,
        invoice_dates.customer_id,
        invoice_dates.document_type,
        invoice_dates.currency,
        invoice_dates.issue_date,
        invoice_dates.due_date,
        invoice_dates.payment_terms_days,
        invoice_dates.is_end_of_month_terms,
        invoice_dates.amount,
        {%- if known_from_loads %}
        invoice_dates.credited_amount,
        invoice_dates.paid_amount,
        invoice_dates.payment_count,
        invoice_dates.open_amount,
        {%- else %}
        cast(coalesce(settled_as_of.credited_amount, 0) as decimal(18, 2)) as credited_amount,
        cast(coalesce(settled_as_of.paid_amount, 0) as decimal(18, 2)) as paid_amount,
        cast(coalesce(settled_as_of.payment_count, 0) as integer) as payment_count,
        cast(
            invoice_dates.amount
            - coalesce(settled_as_of.credited_amount, 0)
            - coalesce(settled_as_of.paid_amount, 0)
            as decimal(18, 2)
        ) as open_amount,
        {%- endif %}
        coalesce(disputed_as_of.open_dispute_count, 0) > 0 as is_disputed,
        cast(coalesce(disputed_as_of.dispute_count, 0) as integer) as dispute_count,
        case
            when {{ 'invoice_dates' if known_from_loads else 'settlement' }}.settled_date <= invoice_dates.as_of_date
                then {{ 'invoice_dates' if known_from_loads else 'settlement' }}.settled_date
        end as settled_date,
        invoice_dates.raw_batch_id
    from {{ invoice_dates }} as invoice_dates
    {%- if not known_from_loads %}
    left join (
        select
            dated.invoice_id,
            dated.as_of_date,
            sum(case when events.event_type = 'payment' then events.amount else 0 end) as paid_amount,
            sum(case when events.event_type = 'credit_note' then events.amount else 0 end) as credited_amount,
            count(distinct case when events.event_type = 'payment' then events.event_id end) as payment_count
        from {{ invoice_dates }} as dated
        inner join {{ ref('int_invoice_settlement_events') }} as events
            on
                dated.invoice_id = events.invoice_id
                and events.event_date <= dated.as_of_date
        group by dated.invoice_id, dated.as_of_date
    ) as settled_as_of
        on
            invoice_dates.invoice_id = settled_as_of.invoice_id
            and invoice_dates.as_of_date = settled_as_of.as_of_date
    {%- endif %}
    left join (
        select
            dated.invoice_id,
            dated.as_of_date,
            count(*) as dispute_count,
            count(
                case
                    when disputes.resolved_date is null or disputes.resolved_date > dated.as_of_date then 1
                end
            ) as open_dispute_count
        from {{ invoice_dates }} as dated
        inner join {{ ref('stg_dispute_versions' if known_from_loads else 'stg_disputes') }} as disputes
            on
                dated.invoice_id = disputes.invoice_id
                and disputes.opened_date <= dated.as_of_date
                {%- if known_from_loads %}
                and not disputes.is_deleted
                and disputes.known_from <= dated.as_of_date
                and dated.as_of_date < disputes.known_until
                {%- endif %}
        group by dated.invoice_id, dated.as_of_date
    ) as disputed_as_of
        on
            invoice_dates.invoice_id = disputed_as_of.invoice_id
            and invoice_dates.as_of_date = disputed_as_of.as_of_date
    {%- if not known_from_loads %}
    left join {{ ref('int_invoice_settlement_dates') }} as settlement
        on invoice_dates.invoice_id = settlement.invoice_id
    {%- endif %}
{%- endmacro %}
