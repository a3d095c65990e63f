-- Chargebacks and fraud reports, as the disputes team exports them: 85% of the
-- fraudulent transactions get reported, 3 to 60 days after they happened, and a
-- few honest ones too ("friendly fraud": the card holder disputes a real
-- purchase). Dirt: 3% of reports come twice (a second notice two weeks later).
--
-- Which transactions are fraud is decided by the same draw as in
-- raw_transactions: uniform(hash32(txn_id, seed), 1) < fraud_rate.
{% set seed = var('seed') %}
{% set fraud_rate = var('fraud_rate') %}

with drawn as (
    select txn_id, ts, {{ hash32('txn_id', seed) }} as h
    from {{ ref('raw_transactions') }}
),

candidates as (
    select distinct
        txn_id,
        ts,
        {{ uniform('h', 1) }} as u_fraud,
        {{ uniform('h', 20) }} as u_report,
        {{ uniform('h', 21) }} as u_lag,
        {{ uniform('h', 22) }} as u_reason,
        {{ uniform('h', 23) }} as u_repeat
    from drawn
    where {{ uniform('h', 1) }} < {{ fraud_rate }} + 0.0003
),

reports as (
    select
        txn_id,
        ts + ((3 + floor(u_lag * 58))::int || ' days')::interval as reported_at,
        case
            when u_fraud >= {{ fraud_rate }} then 'friendly_fraud'
            else (array['card_stolen', 'account_takeover', 'card_not_present'])[1 + floor(u_reason * 3)::int]
        end as reason_code,
        u_repeat
    from candidates
    where u_fraud >= {{ fraud_rate }} or u_report < 0.85
),

notices as (
    select
        txn_id,
        reported_at,
        reason_code,
        unnest(case when u_repeat < 0.03 then array[0, 14] else array[0] end) as days_later
    from reports
)

select
    txn_id,
    reported_at + (days_later || ' days')::interval as reported_at,
    reason_code
from notices
