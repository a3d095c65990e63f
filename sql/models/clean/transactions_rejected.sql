{{ config(materialized='view') }}
-- The quarantine: raw rows the clean layer refused, and why.
select *
from {{ ref('transactions_checked') }}
where reject_reason is not null
