{% macro to_cents(column) -%}
CAST(round(({{ column }}) * 100) AS bigint)
{%- endmacro %}
