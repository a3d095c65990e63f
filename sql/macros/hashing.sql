{#-
  Deterministic pseudo-random numbers in plain SQL: the generator in models/raw
  must build the same lake on every run, so it cannot call random().

  hash32(expr, salt) mixes a non-negative integer expression into a well spread
  bigint in [0, 2^32): a Weyl step by the golden ratio, then two rounds of the
  integer hash "x = ((x >> 16) # x) * 0x45d9f3b". Every product stays below
  2^63, so bigint never overflows. Different salts give independent streams.

  uniform(expr, salt) is the same number scaled to a double in [0, 1) (divided
  as double precision: a numeric literal would round it to a few digits).
-#}

{% macro hash32(expr, salt=0) -%}
{%- set x0 = "((" ~ expr ~ ") + " ~ ((salt * 2654435761) % 4294967296) ~ ") % 4294967296" -%}
{%- set x1 = "((((" ~ x0 ~ ") >> 16) # (" ~ x0 ~ ")) * 73244475) % 4294967296" -%}
{%- set x2 = "((((" ~ x1 ~ ") >> 16) # (" ~ x1 ~ ")) * 73244475) % 4294967296" -%}
((({{ x2 }}) >> 16) # ({{ x2 }}))
{%- endmacro %}

{% macro uniform(expr, salt=0) -%}
({{ hash32(expr, salt) }} / CAST(4294967296 AS double precision))
{%- endmacro %}
