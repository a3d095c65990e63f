-- orders as loaded, above a minimum amount
select id, customer_id, amount, status, updated_at
from {{ ref('orders') }}
where amount >= {{ var('min_amount') }}
