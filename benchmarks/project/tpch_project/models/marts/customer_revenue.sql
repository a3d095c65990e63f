select c.customer_id, c.name, c.segment, c.nation,
       count(o.order_id) as orders, coalesce(sum(l.net_revenue), 0) as net_revenue
from {{ ref('stg_customer') }} c
left join {{ ref('stg_orders') }} o on o.customer_id = c.customer_id
left join {{ ref('order_lines') }} l on l.order_id = o.order_id
group by c.customer_id, c.name, c.segment, c.nation
