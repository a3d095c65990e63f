-- Rows returned are failures: no transaction the clean layer kept may break a
-- rule it enforces.
select *
from {{ ref('transactions') }}
where amount is null
   or amount <= 0
   or amount_usd is null
   or amount_usd <= 0
   or ts > ingested_at + interval '1 hour'
   or merchant_id is null
   or currency is null
   or day <> cast(ts as date)
