select l_orderkey as order_id, l_linenumber as line, l_suppkey as supplier_id,
       l_quantity as quantity, l_extendedprice * (1 - l_discount) as net_price,
       l_returnflag as return_flag, l_shipmode as ship_mode, l_shipdate as ship_date
from {{ source('tpch', 'lineitem') }}
