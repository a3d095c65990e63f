{{ config(materialized='incremental', incremental_strategy='merge', unique_key='id') }}
select id, status, updated_at,
       {% if is_incremental() %}'incremental'{% else %}'full'{% endif %} as loaded_by
from {{ ref('stg_orders') }}
{% if is_incremental() %}
where updated_at > (select max(updated_at) from {{ this }})
{% endif %}
