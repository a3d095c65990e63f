-- Features for the fraud model, one row per transaction: a feature view with
-- entity user_id and event timestamp event_ts. Every window ends at the
-- transaction itself, so a row only sees what was known when the card was
-- used; training_set() joins it to labels as of their time.
{{ config(materialized='feature_view', entity='user_id', timestamp='event_ts', ttl='7 days') }}
with first_use as (
    -- when each card first paid each merchant
    select user_id, merchant_id, min(ts) as first_ts
    from {{ ref('transactions') }}
    group by user_id, merchant_id
),

enriched as (
    select
        t.txn_id,
        t.user_id,
        t.merchant_id,
        t.ts,
        t.amount_usd,
        t.channel,
        t.ts = f.first_ts as is_new_merchant,
        m.is_high_risk_category,
        m.country as merchant_country,
        u.country as user_country,
        u.signup_date
    from {{ ref('transactions') }} t
    join {{ ref('users') }} u on u.user_id = t.user_id
    join {{ ref('merchants') }} m on m.merchant_id = t.merchant_id
    join first_use f on f.user_id = t.user_id and f.merchant_id = t.merchant_id
)

select
    txn_id,
    user_id,
    ts as event_ts,
    merchant_id,
    amount_usd,
    -- velocity: the card's transactions (this one included) in the last hour / day
    count(*) over last_1h as txn_count_1h,
    count(*) over last_24h as txn_count_24h,
    sum(amount_usd) over last_24h as amount_usd_24h,
    -- this amount against the card's ten previous ones
    cast(avg(amount_usd) over previous_10 as numeric(14, 2)) as avg_amount_usd_prev_10,
    cast(amount_usd as double precision)
        / cast(avg(amount_usd) over previous_10 as double precision) as amount_to_prev_10,
    cast(extract(epoch from ts - lag(ts) over by_time) as bigint) as seconds_since_prev_txn,
    is_new_merchant,
    extract(hour from ts) < 6 as is_night,
    channel = 'online' as is_online,
    is_high_risk_category,
    user_country is distinct from merchant_country as is_cross_border,
    cast(ts as date) - signup_date as account_age_days
from enriched
window
    by_time as (partition by user_id order by ts, txn_id),
    previous_10 as (partition by user_id order by ts, txn_id rows between 10 preceding and 1 preceding),
    last_1h as (partition by user_id order by ts range between interval '1 hour' preceding and current row),
    last_24h as (partition by user_id order by ts range between interval '24 hours' preceding and current row)
