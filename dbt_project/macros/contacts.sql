{#-
    Shared contact expressions (what debtors answered, relance's own sends): one definition, pinned by the unit
    tests of customer_contact_state, reminder_response_history and int_reminder_sends_expanded_to_invoices.
    Plain SQL that DuckDB and PostgreSQL both run, except json_text_array_elements (dispatched per target).
-#}

{#-
    Days after a promised payment date during which a payment still keeps the promise (var promise_grace_days).
    relance.dbt always passes Settings.promise_grace_days (RELANCE_PROMISE_GRACE_DAYS); 3 when run by hand without it.
-#}
{% macro promise_grace_days() -%}
    {%- set raw_value = var('promise_grace_days', 3) -%}
    {%- set value = raw_value | int(-1) -%}
    {%- if value < 0 and execute -%}
        {{ exceptions.raise_compiler_error(
            "var 'promise_grace_days' must be an integer >= 0, got '" ~ raw_value ~ "'") }}
    {%- endif -%}
    {{ value }}
{%- endmacro %}

{#- Days a hard delivery failure marks its channel as bounced. -#}
{% macro bounce_window_days() -%}
    180
{%- endmacro %}

{#- Days after a contact within which an invoice settled counts as paid in response (the label's window). -#}
{% macro response_window_days() -%}
    14
{%- endmacro %}

{#- Provider events that say a message did not reach its recipient (raw.message_events.event). -#}
{% macro hard_failure_events() -%}
    {{ return(['bounce', 'dropped', 'failed', 'undelivered']) }}
{%- endmacro %}

{#- Provider events that say the recipient read the message. -#}
{% macro engagement_events() -%}
    {{ return(['open', 'click']) }}
{%- endmacro %}

{#- Provider events that opt the recipient out of e-mail. -#}
{% macro email_opt_out_events() -%}
    {{ return(['unsubscribe', 'group_unsubscribe', 'spamreport']) }}
{%- endmacro %}

{#- Countries whose debtors get French messages (language 'fr'); every other country, or none, 'en'. -#}
{% macro french_speaking_countries() -%}
    {{ return(['FR', 'BE', 'LU', 'CH', 'MC']) }}
{%- endmacro %}

{#-
    The elements of a JSON list of strings held as text ('["I1", "I2"]'), one row each: a set-returning
    expression for a SELECT list. A null or empty list gives no row. DuckDB: unnest(from_json(...));
    PostgreSQL: json_array_elements_text(...).
-#}
{% macro json_text_array_elements(expression) -%}
    {{ return(adapter.dispatch('json_text_array_elements', 'relance')(expression)) }}
{%- endmacro %}

{% macro default__json_text_array_elements(expression) -%}
    unnest(from_json({{ expression }}, '["VARCHAR"]'))
{%- endmacro %}

{% macro postgres__json_text_array_elements(expression) -%}
    json_array_elements_text(cast({{ expression }} as json))
{%- endmacro %}
