{{ config(
    expectations={
        'positive_amount': 'amount_usd > 0',
        'has_user': 'user_id IS NOT NULL',
        'not_future': 'ts <= ingested_at + interval \'1 hour\''
    },
    on_violation='quarantine'
) }}
-- Validated transactions: one row per txn_id, a known user, merchant and
-- currency, a positive amount, a plausible timestamp, and the amount in USD.
-- Late rows (ingested more than a day after they happened) are valid and kept.
-- The expectations above guard the table itself (a Sluice extension of
-- config): a row breaking one goes to transactions__quarantine, and every
-- build's counts are in sluice.expectation_results.
select
    txn_id,
    user_id,
    merchant_id,
    ts,
    cast(ts as date) as day,
    amount,
    currency,
    cast(amount * usd_rate as numeric(14, 2)) as amount_usd,
    channel,
    status,
    ingested_at,
    ingested_at > ts + interval '1 day' as is_late
from {{ ref('transactions_checked') }}
where reject_reason is null
