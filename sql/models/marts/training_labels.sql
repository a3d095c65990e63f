-- Labels for training, one per clean transaction: is_fraud when a fraud report
-- came in for it (disputes found to be friendly fraud are not fraud).
-- label_ts is when the label became known: a model trained "as of" a date
-- should only use labels with label_ts before it.
select
    t.txn_id,
    t.user_id,
    t.merchant_id,
    t.ts as event_ts,
    coalesce(l.reason_code <> 'friendly_fraud', false) as is_fraud,
    l.reason_code,
    l.reported_at as label_ts
from {{ ref('transactions') }} t
left join {{ ref('fraud_labels') }} l on l.txn_id = t.txn_id
