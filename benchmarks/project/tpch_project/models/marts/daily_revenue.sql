select o.order_date, o.priority, count(*) as orders, sum(l.net_revenue) as net_revenue
from {{ ref('stg_orders') }} o
join {{ ref('order_lines') }} l on l.order_id = o.order_id
group by o.order_date, o.priority
