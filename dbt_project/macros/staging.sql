{#-
    The current rows of raw.<entity>: raw is append-only, so a changed row is appended again.
    1. drop rows quarantined for that entity in that batch: ops.quarantine.natural_key is
       concat_ws('|', <natural key columns in relance.raw_schema.NATURAL_KEYS order>);
    2. keep the latest remaining version of each natural key (by _loaded_at, then _batch_id).
    Quarantine is applied first, so a rejected correction falls back to the last accepted version.
    Portable SQL (a ranked subquery, not QUALIFY): the project also builds on PostgreSQL.
-#}
{% macro current_raw_rows(entity, key_columns) -%}
    select versions.*
    from (
        select
            src.*,
            row_number() over (
                partition by {% for key_column in key_columns %}src.{{ key_column }}{{ ", " if not loop.last }}{% endfor %}
                order by src._loaded_at desc, src._batch_id desc
            ) as version_rank
        from {{ source('raw', entity) }} as src
        where not exists (
            select 1
            from {{ source('ops', 'quarantine') }} as quarantine
            where
                quarantine.entity = '{{ entity }}'
                and quarantine.batch_id = src._batch_id
                and quarantine.natural_key = concat_ws(
                    '|'{% for key_column in key_columns %}, src.{{ key_column }}{% endfor %}
                )
        )
    ) as versions
    where versions.version_rank = 1
{%- endmacro %}
