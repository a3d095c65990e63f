{{ config(materialized='view') }}
-- The training set: every label with the features of its transaction. The
-- features were computed from the transaction and the ones before it, so
-- nothing leaks from the future.
select
    l.txn_id,
    l.event_ts,
    l.user_id,
    l.merchant_id,
    f.amount_usd,
    f.txn_count_1h,
    f.txn_count_24h,
    f.amount_usd_24h,
    f.amount_to_prev_10,
    f.seconds_since_prev_txn,
    f.is_new_merchant,
    f.is_night,
    f.is_online,
    f.is_high_risk_category,
    f.is_cross_border,
    f.account_age_days,
    l.is_fraud
from {{ ref('training_labels') }} l
join {{ ref('user_transaction_features') }} f on f.txn_id = l.txn_id
