{{ config(materialized='view') }}
-- Every distinct raw transaction row, normalised, with the first validation
-- rule it breaks (NULL when it passes them all). `transactions` keeps the rows
-- that pass, `transactions_rejected` shows the others: nothing is silently lost.
with distinct_rows as (
    -- exact duplicates (the switch sent the row twice) collapse into one row;
    -- `copies` says how many times it came. (A txn_id that came back with
    -- different values would stay twice: the unique test on transactions.txn_id
    -- would catch it.)
    select
        txn_id, user_id, merchant_id, amount, currency, channel, status, ts, ingested_at,
        count(*) as copies
    from {{ ref('raw_transactions') }}
    group by txn_id, user_id, merchant_id, amount, currency, channel, status, ts, ingested_at
)

select
    r.txn_id,
    r.user_id,
    r.merchant_id,
    r.amount,
    upper(trim(r.currency)) as currency,
    coalesce(r.channel, 'unknown') as channel,
    r.status,
    r.ts,
    r.ingested_at,
    r.copies,
    c.usd_rate,
    case
        when r.amount is null then 'missing_amount'
        when r.amount <= 0 then 'non_positive_amount'
        when c.code is null then 'unknown_currency'
        when r.ts > r.ingested_at + interval '1 hour' then 'future_timestamp'
        when r.merchant_id is null then 'missing_merchant'
        when m.merchant_id is null then 'unknown_merchant'
        when u.user_id is null then 'unknown_user'
    end as reject_reason
from distinct_rows r
left join {{ ref('currencies') }} c on c.code = upper(trim(r.currency))
left join {{ ref('users') }} u on u.user_id = r.user_id
left join {{ ref('merchants') }} m on m.merchant_id = r.merchant_id
