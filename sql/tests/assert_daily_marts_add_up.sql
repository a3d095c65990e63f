-- Rows returned are failures: the daily marts count every clean transaction
-- and every dollar once, and hold one row per key.
with txns as (
    select count(*) as txn_count, sum(amount_usd) as amount_usd
    from {{ ref('transactions') }}
),
by_user as (
    select sum(txn_count) as txn_count, sum(amount_usd) as amount_usd, count(*) as n_rows,
           count(distinct cast(user_id as text) || '/' || cast(day as text)) as n_keys
    from {{ ref('user_daily') }}
),
by_merchant as (
    select sum(txn_count) as txn_count, sum(amount_usd) as amount_usd, count(*) as n_rows,
           count(distinct cast(merchant_id as text) || '/' || cast(day as text)) as n_keys
    from {{ ref('merchant_daily') }}
),
by_category as (
    select sum(txn_count) as txn_count, sum(amount_usd) as amount_usd
    from {{ ref('category_daily') }}
)
select 'user_daily' as mart, b.txn_count, b.amount_usd, t.txn_count as expected_count, t.amount_usd as expected_usd
from by_user b cross join txns t
where b.txn_count <> t.txn_count or b.amount_usd <> t.amount_usd or b.n_rows <> b.n_keys
union all
select 'merchant_daily', b.txn_count, b.amount_usd, t.txn_count, t.amount_usd
from by_merchant b cross join txns t
where b.txn_count <> t.txn_count or b.amount_usd <> t.amount_usd or b.n_rows <> b.n_keys
union all
select 'category_daily', b.txn_count, b.amount_usd, t.txn_count, t.amount_usd
from by_category b cross join txns t
where b.txn_count <> t.txn_count or b.amount_usd <> t.amount_usd
