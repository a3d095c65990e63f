-- One label per clean transaction that was reported: the first report wins
-- (second notices are dropped), reports of rejected transactions are left out.
select
    l.txn_id,
    min(l.reported_at) as reported_at,
    min(l.reason_code) as reason_code,
    count(*) as notices
from {{ ref('raw_fraud_labels') }} l
join {{ ref('transactions') }} t on t.txn_id = l.txn_id
group by l.txn_id
