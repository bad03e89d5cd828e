{#- Shared receivables expressions: one definition, pinned by unit tests on the models that use them. -#}

{#- Whole days from start_date to end_date (end - start), as INTEGER. -#}
{% macro days_between(start_date, end_date) -%}
    cast(date_diff('day', {{ start_date }}, {{ end_date }}) as integer)
{%- endmacro %}

{#- Amounts at or below this are treated as settled (rounding on partial payments). -#}
{% macro settlement_tolerance() -%}
    0.005
{%- endmacro %}

{#- Aging bucket of an open invoice from its days overdue (as_of_date - due_date). -#}
{% macro aging_bucket(days_overdue) -%}
    case
        when {{ days_overdue }} is null then null
        when {{ days_overdue }} <= 0 then 'not_due'
        when {{ days_overdue }} <= 30 then '1-30'
        when {{ days_overdue }} <= 60 then '31-60'
        when {{ days_overdue }} <= 90 then '61-90'
        else '90+'
    end
{%- endmacro %}

{#- The buckets in display order, for reports that must show all of them. -#}
{% macro aging_buckets() -%}
    {{ return(['not_due', '1-30', '31-60', '61-90', '90+']) }}
{%- endmacro %}
