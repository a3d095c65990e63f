-- Run again under `sluice serve --project` whenever what it reads changes.
{{ config(schedule='on upstream') }}
with totals as (
    select customer_id, count(*) as orders, sum(amount) as amount
    from {{ ref('open_orders') }}
    group by customer_id
)
select c.id as customer_id, c.name, coalesce(t.orders, 0) as orders,
       {{ to_cents('coalesce(t.amount, 0)') }} as amount_cents
from {{ ref('customers') }} c
left join totals t on t.customer_id = c.id
