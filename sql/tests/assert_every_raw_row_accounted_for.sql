-- Rows returned are failures: every raw transaction row is either kept by the
-- clean layer (once, however many copies came) or listed, with its reason, in
-- transactions_rejected.
with raw as (
    select count(*) as raw_rows from {{ ref('raw_transactions') }}
),
checked as (
    select
        sum(copies) as raw_rows_seen,
        sum(case when reject_reason is null then 1 else 0 end) as kept,
        sum(case when reject_reason is null then 0 else 1 end) as rejected
    from {{ ref('transactions_checked') }}
),
clean as (
    select count(*) as clean_rows from {{ ref('transactions') }}
)
select raw.raw_rows, checked.raw_rows_seen, checked.kept, clean.clean_rows, checked.rejected
from raw cross join checked cross join clean
where raw.raw_rows <> checked.raw_rows_seen
   or checked.kept <> clean.clean_rows
