{{ config(materialized='incremental', unique_key='id', incremental_strategy='merge') }}
-- loaded_by tells which run wrote a row: the second run must be incremental
select
    id,
    customer_id,
    amount,
    status,
    updated_at,
    {% if is_incremental() %}'incremental'{% else %}'full'{% endif %}::text as loaded_by
from {{ ref('stg_orders') }}
{% if is_incremental() %}
where updated_at > (select max(updated_at) from {{ this }})
{% endif %}
