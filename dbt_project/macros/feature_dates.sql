{#-
    The existing ml_invoice_features relation, or none (first build, or --full-refresh): int_feature_dates
    compares the grid with the dates already built so that a run only builds the new ones.
-#}
{% macro built_features_relation() -%}
    {%- if not execute or flags.FULL_REFRESH -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set node = graph.nodes.get('model.relance.ml_invoice_features') -%}
    {%- if node is none -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(adapter.get_relation(database=node.database, schema=node.schema, identifier=node.alias)) }}
{%- endmacro %}
