{{ config(materialized='incremental', unique_key=['user_id', 'day'], incremental_strategy='merge') }}
-- Spending per card holder and day.
--
-- Incremental: a run reads only the transactions ingested since the last one.
-- A late row reopens a day already summed, so the run recomputes each
-- (user_id, day) those rows touch, from all of that day's rows, and merges it
-- in on the unique key.
with
{% if is_incremental() %}
touched as (
    select distinct user_id, day
    from {{ ref('transactions') }}
    where ingested_at > (select max(last_ingested_at) from {{ this }})
),
{% endif %}
txns as (
    select t.*
    from {{ ref('transactions') }} t
{% if is_incremental() %}
    join touched k on k.user_id = t.user_id and k.day = t.day
{% endif %}
)

select
    user_id,
    day,
    count(*) as txn_count,
    sum(case when status = 'declined' then 1 else 0 end) as declined_count,
    sum(case when channel = 'online' then 1 else 0 end) as online_count,
    count(distinct merchant_id) as merchant_count,
    sum(amount_usd) as amount_usd,
    max(amount_usd) as max_amount_usd,
    max(ingested_at) as last_ingested_at
from txns
group by user_id, day
