select supplier_id, count(*) as lines, count(distinct order_id) as orders, sum(net_price) as net_revenue
from {{ ref('stg_lineitem') }}
group by supplier_id
