{{ config(materialized='incremental', unique_key=['merchant_id', 'day'], incremental_strategy='merge') }}
-- Sales per merchant and day; incremental like user_daily: the (merchant_id,
-- day) groups that received rows since the last run are recomputed and merged.
with
{% if is_incremental() %}
touched as (
    select distinct merchant_id, day
    from {{ ref('transactions') }}
    where ingested_at > (select max(last_ingested_at) from {{ this }})
),
{% endif %}
txns as (
    select t.*
    from {{ ref('transactions') }} t
{% if is_incremental() %}
    join touched k on k.merchant_id = t.merchant_id and k.day = t.day
{% endif %}
)

select
    merchant_id,
    day,
    count(*) as txn_count,
    sum(case when status = 'declined' then 1 else 0 end) as declined_count,
    count(distinct user_id) as user_count,
    sum(amount_usd) as amount_usd,
    avg(amount_usd) as avg_amount_usd,
    sum(case when is_late then 1 else 0 end) as late_count,
    max(ingested_at) as last_ingested_at
from txns
group by merchant_id, day
