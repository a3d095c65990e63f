-- Card transactions as the payment switch lands them: one row per authorisation,
-- amounts in the card holder's currency, `ts` when it happened and `ingested_at`
-- when the lake received it.
--
-- Card holders mostly shop at five regular merchants of their own. Fraud (the
-- fraud_rate share) comes from a few compromised cards (0.5% of the users):
-- bursts within two days, at night, online, at new and risky merchants, with
-- larger amounts. Which rows are fraud is not a column: raw_fraud_labels reports
-- most of them later, as chargebacks.
--
-- Dirt, about 4% of the rows:
--   0.3% amount missing                 0.3% negative amount
--   0.5% unknown currency code          0.5% currency in lower case / blanks
--   0.2% ts in the future (after ingestion, a device with a wrong clock)
--   0.3% merchant missing               1.0% channel missing
--   0.1% user id that no user has       1.0% rows sent twice (exact duplicates)
-- and 2% arrive late: ingested 1 to 10 days after they happened (valid rows).
{% set seed = var('seed') %}
{% set n_users = var('n_users') %}
{% set n_merchants = var('n_merchants') %}
{% set n_days = var('n_days') %}

with series as (
    select i as txn_id, {{ hash32('i', seed) }} as h
    from generate_series(1, {{ var('n_transactions') }}) as t(i)
),

draws as (
    select
        txn_id,
        {{ uniform('h', 1) }} < {{ var('fraud_rate') }} as is_fraud,
        {{ uniform('h', 2) }} as u_user,
        {{ uniform('h', 3) }} as u_merchant,
        {{ uniform('h', 4) }} as u_risky,
        {{ uniform('h', 5) }} as u_day,
        {{ uniform('h', 6) }} as u_time,
        {{ uniform('h', 7) }} as u_amount1,
        {{ uniform('h', 8) }} as u_amount2,
        {{ uniform('h', 9) }} as u_channel,
        {{ uniform('h', 10) }} as u_status,
        {{ uniform('h', 11) }} as u_dirt,
        {{ uniform('h', 12) }} as u_late,
        {{ uniform('h', 13) }} as u_delay,
        {{ uniform('h', 14) }} as u_dup
    from series
),

actors as (
    select
        d.*,
        case
            when is_fraud   -- one of the compromised cards
                then 1 + (floor(u_user * greatest({{ n_users }} / 200, 1))::bigint * 7919) % {{ n_users }}
            when u_dirt >= 0.031 and u_dirt < 0.032
                then {{ n_users }} + 1 + floor(u_user * 1000)::bigint
            else 1 + floor({{ n_users }} * u_user * (0.3 + 0.7 * u_user))::bigint
        end as user_id
    from draws d
),

shopped as (
    select
        a.*,
        case
            when is_fraud   -- ids 6-9 of every ten: electronics, digital goods, gaming, jewelry
                then 10 * floor(u_merchant * ({{ n_merchants }} / 10))::bigint + 6 + floor(u_risky * 4)::bigint
            when u_merchant < 0.7   -- one of the card's five regular merchants
                then 1 + {{ hash32('user_id * 8 + floor(u_risky * 5)::bigint', seed + 3000) }} % {{ n_merchants }}
            else 1 + floor({{ n_merchants }} * (u_merchant - 0.7) / 0.3 * (0.2 + 0.8 * (u_merchant - 0.7) / 0.3))::bigint
        end as merchant_id
    from actors a
),

timed as (
    select
        a.*,
        extract(epoch from timestamp '{{ var("start_date") }}')::bigint
        + case
            when is_fraud   -- the card's compromise starts on a day of its own
                then (floor({{ uniform('user_id', seed + 2000) }} * ({{ n_days }} - 2))::bigint
                      + floor(u_day * 2)::bigint) * 86400
                     + floor(u_time * u_time * 86400)::bigint
            else floor(u_day * {{ n_days }})::bigint * 86400
                 + case
                     when u_time < 0.9 then 25200 + floor(u_time / 0.9 * 57600)::bigint
                     else floor((u_time - 0.9) / 0.1 * 86400)::bigint
                   end
          end as event_epoch,
        case
            when u_late < 0.02 then 86400 + floor(u_delay * 9 * 86400)::bigint
            else 5 + floor(u_delay * 300)::bigint
        end as delay_seconds,
        case
            when is_fraud then exp(3.5 + 3.0 * u_amount1)
            else exp(1.0 + 2.5 * (u_amount1 + u_amount2))
        end as amount_usd
    from shopped a
),

user_currency as (
    select u.user_id, cur.code as currency, cast(cur.usd_rate as double precision) as usd_rate
    from {{ ref('raw_users') }} u
    join {{ ref('countries') }} co on co.code = upper(trim(u.country))
    join {{ ref('currencies') }} cur on cur.code = co.currency
),

clean_rows as (
    select
        t.txn_id,
        t.user_id,
        t.merchant_id,
        cast(t.amount_usd / coalesce(uc.usd_rate, 1.0) as numeric(12, 2)) as amount,
        coalesce(uc.currency, 'USD') as currency,
        case
            when t.is_fraud then case when t.u_channel < 0.85 then 'online' else 'pos' end
            when t.u_channel < 0.6 then 'pos'
            when t.u_channel < 0.95 then 'online'
            else 'atm'
        end as channel,
        case
            when t.u_status < (case when t.is_fraud then 0.2 else 0.03 end) then 'declined'
            else 'approved'
        end as status,
        t.event_epoch,
        t.event_epoch + t.delay_seconds as ingest_epoch,
        t.u_dirt,
        t.u_delay,
        t.u_dup
    from timed t
    left join user_currency uc on uc.user_id = t.user_id
),

dirty as (
    select
        txn_id,
        user_id,
        case when u_dirt >= 0.018 and u_dirt < 0.021 then null else merchant_id end as merchant_id,
        case
            when u_dirt < 0.003 then null
            when u_dirt < 0.006 then -amount
            else amount
        end as amount,
        case
            when u_dirt >= 0.006 and u_dirt < 0.011
                then (array['XXX', 'BTC', 'ZZZ', 'EURO'])[1 + floor(u_delay * 4)::int]
            when u_dirt >= 0.011 and u_dirt < 0.0135 then lower(currency)
            when u_dirt >= 0.0135 and u_dirt < 0.016 then ' ' || currency || ' '
            else currency
        end as currency,
        case when u_dirt >= 0.021 and u_dirt < 0.031 then null else channel end as channel,
        status,
        to_timestamp(
            case
                when u_dirt >= 0.016 and u_dirt < 0.018
                    then ingest_epoch + (30 + floor(u_delay * 335)::bigint) * 86400
                else event_epoch
            end
        ) as ts,
        to_timestamp(ingest_epoch) as ingested_at,
        u_dup
    from clean_rows
),

sent as (
    -- the rows sent twice come out of unnest twice
    select
        txn_id, user_id, merchant_id, amount, currency, channel, status, ts, ingested_at,
        unnest(case when u_dup < 0.01 then array[1, 2] else array[1] end) as copy
    from dirty
)

select txn_id, user_id, merchant_id, amount, currency, channel, status, ts, ingested_at
from sent
