select order_id, count(*) as lines, sum(quantity) as quantity, sum(net_price) as net_revenue,
       max(ship_date) as last_ship_date
from {{ ref('stg_lineitem') }}
group by order_id
