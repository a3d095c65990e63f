select c.c_custkey as customer_id, c.c_name as name, c.c_mktsegment as segment, n.n_name as nation
from {{ source('tpch', 'customer') }} c
join {{ source('tpch', 'nation') }} n on n.n_nationkey = c.c_nationkey
