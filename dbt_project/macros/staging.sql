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

{#-
    Every accepted version of each natural key of raw.<entity>, with the dates it was known (point-in-time features
    read these; current-state models read current_raw_rows). Accepted = the same batch exclusion and quarantine as
    current_raw_rows; tombstones are kept as versions (is_deleted: the key is gone from that date on).

    When a version is known ("known from load time"):
    - a version loaded in the FIRST accepted batch of its source and entity (the history the user imported: the
      batches of the earliest load among those of that ops.ingest_batches.source_name, unrecorded batches forming
      one source; rows loaded before load times were kept, with a null _loaded_at, count as history too) is known
      from the start: its facts are known at their business dates;
    - a version first loaded in a LATER batch is known from that batch's load date (cast(_loaded_at as date));
      a fact it carries is then known at greatest(business date, load date) (the consumers apply the business date);
    - with first_version_known_always (attributes: customers), the first version of a key applies to all earlier
      dates too, so an attribute is never null only because its key was loaded late.
    known_from is made non-decreasing along the key's versions (load order, as current_raw_rows), and known_until is
    the next version's known_from ('9999-12-31' for the current version): [known_from, known_until) is the span of
    as-of dates on which the version is the one known. '0001-01-01' stands for "from the start".
-#}
{% macro raw_versions(entity, key_columns, first_version_known_always=false) -%}
    select
        dated.*,
        lead(dated.known_from, 1, date '9999-12-31') over (
            partition by {{ _key_list('dated', key_columns) }}
            order by dated.version_number
        ) as known_until
    from (
        select
            versions.*,
            -- non-decreasing along the key's versions: a later version never applies before an earlier one
            max(versions.version_from) over (
                partition by {{ _key_list('versions', key_columns) }}
                order by versions.version_number
                rows between unbounded preceding and current row
            ) as known_from
        from (
            select
                accepted.*,
                coalesce(accepted._deleted, false) as is_deleted,
                case
                    when first_batches.first_batch_id is not null then date '0001-01-01'
                    {%- if first_version_known_always %}
                    when accepted.version_number = 1 then date '0001-01-01'
                    {%- endif %}
                    else cast(accepted._loaded_at as date)
                end as version_from
            from (
                select
                    src.*,
                    batches.version_source,
                    row_number() over (
                        partition by {{ _key_list('src', key_columns) }}
                        order by src._loaded_at asc, src._load_seq asc nulls first, src._batch_id asc
                    ) as version_number
                from {{ source('raw', entity) }} as src
                inner join ({{ _accepted_batches(entity) }}) as batches
                    on src._batch_id = batches._batch_id
                where
                    not exists (
                        select 1
                        from {{ source('ops', 'quarantine') }} as quarantine
                        where
                            quarantine.entity = '{{ entity }}'
                            and quarantine.batch_id = src._batch_id
                            and quarantine.natural_key = concat_ws(
                                '|'{% for key_column in key_columns %}, src.{{ key_column }}{% endfor %}
                            )
                    )
            ) as accepted
            left join (
                -- the history import: the batches of the source's first load (one load writes all its files of
                -- an entity at the same load time)
                select
                    accepted_batches._batch_id as first_batch_id,
                    accepted_batches.version_source
                from ({{ _accepted_batches(entity) }}) as accepted_batches
                inner join (
                    select
                        version_source,
                        min(batch_loaded_at) as first_loaded_at
                    from ({{ _accepted_batches(entity) }}) as loads
                    group by version_source
                ) as first_loads
                    on
                        accepted_batches.version_source = first_loads.version_source
                        and (
                            accepted_batches.batch_loaded_at = first_loads.first_loaded_at
                            or accepted_batches.batch_loaded_at is null
                        )
            ) as first_batches
                on
                    accepted.version_source = first_batches.version_source
                    and accepted._batch_id = first_batches.first_batch_id
        ) as versions
    ) as dated
{%- endmacro %}

{#- The batches of raw.<entity> not excluded from the state, with their source ('' when not recorded in ops). -#}
{% macro _accepted_batches(entity) -%}
    select
        src._batch_id,
        coalesce(max(batches.source_name), '') as version_source,
        min(src._loaded_at) as batch_loaded_at
    from {{ source('raw', entity) }} as src
    left join {{ source('ops', 'ingest_batches') }} as batches
        on src._batch_id = batches.batch_id
    where coalesce(batches.validation_state, 'passed') not in ('failed', 'superseded', 'quarantined')
    group by src._batch_id
{%- endmacro %}

{% macro _key_list(alias, key_columns) -%}
    {% for key_column in key_columns %}{{ alias }}.{{ key_column }}{{ ", " if not loop.last }}{% endfor %}
{%- endmacro %}
