{#-
    The current rows of raw.<entity>: raw is append-only, so a changed row is appended again. The same rule as the
    loader's (relance.ingest.current_versions_sql, documented in relance/raw_schema.py), plus quarantine:
    1. drop rows of batches excluded from the current state: ops.ingest_batches.validation_state 'failed',
       'superseded' or 'quarantined' (relance.ops.EXCLUDED_STATES; a null state or a batch not recorded counts as
       passed; 'pending' batches are read, the validation gate keeps dbt from running before they are validated);
    2. drop rows quarantined for that entity in that batch: ops.quarantine.natural_key is
       concat_ws('|', <natural key columns in relance.raw_schema.NATURAL_KEYS order>);
    3. keep the latest remaining version of each natural key: by _loaded_at, then _load_seq (load order within one
       load: the later file, and within a file the later row, wins), then _batch_id for rows without _load_seq;
    4. drop the key when that version is a tombstone (_deleted: its full-snapshot source no longer holds it).
    Quarantine and exclusion apply first, so a rejected correction falls back to the last accepted version, and a
    failed snapshot's tombstones retire nothing.
    Portable SQL (a ranked subquery, not QUALIFY; explicit NULLS LAST): the project also builds on PostgreSQL.
-#}
{% macro current_raw_rows(entity, key_columns) -%}
    select versions.*
    from (
        select
            src.*,
            row_number() over (
                partition by {% for key_column in key_columns %}src.{{ key_column }}{{ ", " if not loop.last }}{% endfor %}
                order by src._loaded_at desc, src._load_seq desc nulls last, src._batch_id desc
            ) as version_rank
        from {{ source('raw', entity) }} as src
        where
            not exists (
                select 1
                from {{ source('ops', 'ingest_batches') }} as batches
                where
                    batches.batch_id = src._batch_id
                    and batches.validation_state in ('failed', 'superseded', 'quarantined')
            )
            and not exists (
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
    where versions.version_rank = 1 and not coalesce(versions._deleted, false)
{%- endmacro %}
