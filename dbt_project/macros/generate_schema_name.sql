{#-
    Use a custom schema as-is (staging, intermediate, marts, ml, serving) instead of dbt's default
    <target_schema>_<custom_schema>, so Python can read fixed names such as ml.ml_invoice_features.
    Nodes without a custom schema (e.g. stored test failures) go to the target schema.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
