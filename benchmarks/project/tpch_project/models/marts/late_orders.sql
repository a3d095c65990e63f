{{ config(materialized='incremental', unique_key='order_id') }}
select o.order_id, o.order_date, l.last_ship_date, l.net_revenue
from {{ ref('stg_orders') }} o
join {{ ref('order_lines') }} l on l.order_id = o.order_id
where l.last_ship_date > o.order_date + 90
{% if is_incremental() %}
  and o.order_date > (select max(order_date) from {{ this }})
{% endif %}
