{{ config(materialized='table') }}
select
    c.id as customer_id,
    c.name,
    c.country,
    count(o.id) as order_count,
    coalesce(sum(o.amount), 0) as total_amount,
    max(o.updated_at) as last_order_at
from {{ ref('customers') }} c
left join {{ ref('stg_orders') }} o on o.customer_id = c.id
group by c.id, c.name, c.country
