{#-
    Shared receivables expressions: one definition, pinned by unit tests on the models that use them.
    Everything here is plain SQL that DuckDB and PostgreSQL both run (the project builds on both targets).
-#}

{#- Whole days from start_date to end_date (end - start), as INTEGER: date - date is a day count in both. -#}
{% macro days_between(start_date, end_date) -%}
    cast(({{ end_date }}) - ({{ start_date }}) as integer)
{%- endmacro %}

{#- A DATE shifted by a whole number of days (date + integer is a date in both targets). -#}
{% macro add_days(date_expr, days) -%}
    cast(({{ date_expr }}) + cast({{ days }} as integer) as date)
{%- endmacro %}

{#-
    A DATE shifted by a whole number of calendar months, clamped to the month's last day (08-31 + 6 months =
    02-28), the same in both targets: date + n * interval '1 month' is a timestamp in both, cast back to a date.
-#}
{% macro add_months(date_expr, months) -%}
    cast(({{ date_expr }}) + ({{ months }}) * interval '1 month' as date)
{%- endmacro %}

{#- The floating-point type of every feature column (DOUBLE in DuckDB, double precision in PostgreSQL). -#}
{% macro float_type() -%}
    float8
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

{#- Customer-history windows (days): the "recent" window of the trend and the median's trailing window. -#}
{% macro recent_window_days() -%}
    90
{%- endmacro %}

{% macro median_window_days() -%}
    365
{%- endmacro %}

{#- Half-life (days) of the exponentially weighted mean days late. -#}
{% macro ew_half_life_days() -%}
    90
{%- endmacro %}

{#-
    Weight of a fact dated `date_expr` in an exponentially weighted mean with half-life ew_half_life_days():
    2^((date - 2000-01-01) / half_life). The as-of date's own factor 2^(-as_of / half_life) is the same for
    every term of a weighted mean, so it cancels: sum(w * x) / sum(w) over the facts before any as-of date is
    the EW mean as of that date, and running sums give it for every date at once. 2^(27 years of days / 90)
    stays far inside float8 range.
-#}
{% macro ew_weight(date_expr) -%}
    power(cast(2 as {{ float_type() }}), cast({{ days_between("date '2000-01-01'", date_expr) }} as {{ float_type() }}) / {{ ew_half_life_days() }})
{%- endmacro %}
