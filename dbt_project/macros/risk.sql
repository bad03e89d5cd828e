{#-
    Shared company-risk expressions (relance.risk.events is the vocabulary): one definition, pinned by the unit
    tests of int_customer_risk_as_of. Plain SQL that DuckDB and PostgreSQL both run.
-#}

{#- Event types that open a collective procedure or keep it open (relance.risk.events.OPENS_PROCEDURE). -#}
{% macro procedure_open_types() -%}
    {{ return(['procedure_opened', 'procedure_converted', 'plan_adopted']) }}
{%- endmacro %}

{#- Event types counted as a collective procedure judgment (risk_collective_procedure): opening, conversion. -#}
{% macro collective_procedure_types() -%}
    {{ return(['procedure_opened', 'procedure_converted']) }}
{%- endmacro %}

{#- A Jinja list as a SQL list of string literals: ('a', 'b'). -#}
{% macro sql_in_list(values) -%}
    ({% for value in values %}'{{ value }}'{{ ", " if not loop.last }}{% endfor %})
{%- endmacro %}

{#-
    Event A is later than event B: published later, or on the same day with a later event_date (a null
    event_date is earliest). False when A is unknown; true when A is known and B is not.
-#}
{% macro published_later(a_published, a_event, b_published, b_event) -%}
    (
        {{ a_published }} is not null
        and (
            {{ b_published }} is null
            or {{ a_published }} > {{ b_published }}
            or (
                {{ a_published }} = {{ b_published }}
                and coalesce({{ a_event }}, date '0001-01-01') > coalesce({{ b_event }}, date '0001-01-01')
            )
        )
    )
{%- endmacro %}

{#-
    Months after a fiscal year end past which accounts not filed are overdue (French companies file within
    seven months of the year end, UK private companies within nine: 18 months means a whole year was missed).
-#}
{% macro accounts_overdue_months() -%}
    18
{%- endmacro %}

{#-
    An INSEE headcount band (tranche_effectif_salarie) as the lower bound of the band, in employees; null for 'NN'
    (no employee on record) and unknown codes.
-#}
{% macro headcount_band_employees(code) -%}
    case {{ code }}
        when '00' then 0
        when '01' then 1
        when '02' then 3
        when '03' then 6
        when '11' then 10
        when '12' then 20
        when '21' then 50
        when '22' then 100
        when '31' then 200
        when '32' then 250
        when '41' then 500
        when '42' then 1000
        when '51' then 2000
        when '52' then 5000
        when '53' then 10000
    end
{%- endmacro %}
