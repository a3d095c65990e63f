{{ config(materialized='materialized_view', schedule='every 1 hour') }}
-- Totals per merchant category and day, as a Sluice materialized view: its
-- columns are group keys, counts, sums, min and max, so when transactions
-- only gain rows, REFRESH MATERIALIZED VIEW aggregates just the new rows and
-- combines them with the stored groups (EXPLAIN REFRESH says so). Under
-- `sluice serve --project sql` it also refreshes by itself every hour.
select
    m.category,
    t.day,
    count(*) as txn_count,
    sum(t.amount_usd) as amount_usd,
    min(t.amount_usd) as min_amount_usd,
    max(t.amount_usd) as max_amount_usd
from {{ ref('transactions') }} t
join {{ ref('merchants') }} m on m.merchant_id = t.merchant_id
group by m.category, t.day
