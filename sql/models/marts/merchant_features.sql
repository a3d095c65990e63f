-- Per-merchant features, one row per transaction at the merchant: how busy
-- the merchant was in the last hour and day, and the share of its
-- transactions of the last week that were reported as fraud by then
-- (a report counts from the moment it came in). Entity merchant_id.
-- Under `sluice serve --project sql` it refreshes whenever the transactions
-- it reads get a new version (schedule 'on upstream').
{{ config(materialized='feature_view', entity='merchant_id', timestamp='event_ts', ttl='7 days', schedule='on upstream', retries=2) }}
with events as (
    -- transactions, and fraud reports as events of their own
    select merchant_id, ts, amount_usd, 0 as reported
    from {{ ref('transactions') }}
    union all
    select l.merchant_id, l.label_ts as ts, 0 as amount_usd, 1 as reported
    from {{ ref('training_labels') }} l
    where l.is_fraud
),

windowed as (
    select
        merchant_id,
        ts,
        reported,
        sum(1 - reported) over last_1h as merchant_txn_count_1h,
        sum(1 - reported) over last_24h as merchant_txn_count_24h,
        sum(amount_usd) over last_24h as merchant_amount_usd_24h,
        sum(1 - reported) over last_7d as txns_7d,
        sum(reported) over last_7d as reports_7d
    from events
    window
        last_1h as (partition by merchant_id order by ts range between interval '1 hour' preceding and current row),
        last_24h as (partition by merchant_id order by ts range between interval '24 hours' preceding and current row),
        last_7d as (partition by merchant_id order by ts range between interval '7 days' preceding and current row)
)

select
    merchant_id,
    ts as event_ts,
    merchant_txn_count_1h,
    merchant_txn_count_24h,
    merchant_amount_usd_24h,
    cast(reports_7d as double precision) / greatest(txns_7d, 1) as merchant_chargeback_rate_7d
from windowed
where reported = 0
