-- a view over the seed
select
    id,
    customer_id,
    amount,
    status,
    updated_at,
    amount >= 100 as is_large
from {{ ref('orders') }}
