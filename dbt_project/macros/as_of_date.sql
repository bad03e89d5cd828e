{#-
    The run's as-of date as a DATE literal, from the required var `as_of_date` (YYYY-MM-DD).
    Raises a compiler error when the var is missing, blank or not an ISO date. At parse time
    (execute = false) vars are not known yet, so a placeholder is returned.
-#}
{% macro as_of_date() -%}
    {%- set raw_value = var('as_of_date', none) -%}
    {%- if raw_value is none or (raw_value | string | trim) == '' -%}
        {%- if execute -%}
            {{ exceptions.raise_compiler_error(
                "var 'as_of_date' is required (YYYY-MM-DD), e.g. "
                ~ "dbt build --vars '{\"as_of_date\": \"2026-10-31\"}'") }}
        {%- endif -%}
        date '1970-01-01'
    {%- else -%}
        {%- set text = raw_value | string | trim -%}
        {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', text) -%}
            {{ exceptions.raise_compiler_error(
                "var 'as_of_date' must be an ISO date YYYY-MM-DD, got '" ~ text ~ "'") }}
        {%- endif -%}
        {%- set parsed = modules.datetime.date.fromisoformat(text) -%}
        date '{{ parsed.isoformat() }}'
    {%- endif -%}
{%- endmacro %}

{#- A required positive integer var, with a clear error otherwise (relance passes every var, see relance/dbt.py). -#}
{% macro positive_int_var(name) -%}
    {{ int_var(name, 1, 'a positive integer') }}
{%- endmacro %}

{% macro non_negative_int_var(name) -%}
    {{ int_var(name, 0, 'an integer >= 0') }}
{%- endmacro %}

{% macro int_var(name, minimum, what) -%}
    {%- set raw_value = var(name, none) -%}
    {%- if raw_value is none and execute -%}
        {{ exceptions.raise_compiler_error(
            "var '" ~ name ~ "' is required (" ~ what ~ "); run dbt through `relance dbt`, which passes "
            ~ "every var from the settings") }}
    {%- endif -%}
    {%- set value = raw_value | int(-1) -%}
    {%- if value < minimum and execute -%}
        {{ exceptions.raise_compiler_error(
            "var '" ~ name ~ "' must be " ~ what ~ ", got '" ~ raw_value ~ "'") }}
    {%- endif -%}
    {{ value }}
{%- endmacro %}


{% macro target_kind_var() -%}
    {#- What "late" means (models/contract.py TARGET_KIND_DOCS); relance passes it from RELANCE_TARGET_KIND. -#}
    {%- set kinds = ['unpaid_after_due', 'unpaid_after', 'late_over'] -%}
    {%- set value = var('target_kind', none) -%}
    {%- if execute and value not in kinds -%}
        {{ exceptions.raise_compiler_error(
            "var 'target_kind' must be one of " ~ kinds | join(', ') ~ ", got '" ~ value ~ "'; run dbt through "
            ~ "`relance dbt`, which passes every var from the settings") }}
    {%- endif -%}
    {{ value }}
{%- endmacro %}

{% macro target_name(kind, days) -%}
    {#- The same honest name as models.contract.target_name. -#}
    {%- if kind == 'late_over' -%}
        {{ 'late_any' if days | int == 0 else 'late_over_' ~ days ~ 'd' }}
    {%- elif kind == 'unpaid_after' -%}
        unpaid_{{ days }}d_after_as_of
    {%- else -%}
        unpaid_{{ days }}d_after_due
    {%- endif -%}
{%- endmacro %}
