{{ config(materialized='materialized_view', schedule='on upstream', retries=2) }}
select status, count(*) as orders, sum(amount) as amount
from {{ ref('orders') }}
group by status
