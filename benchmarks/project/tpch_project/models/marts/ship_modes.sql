select ship_mode, return_flag, count(*) as lines, sum(quantity) as quantity, avg(net_price) as avg_net_price
from {{ ref('stg_lineitem') }}
group by ship_mode, return_flag
