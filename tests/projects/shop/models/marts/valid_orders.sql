{{ config(materialized='table',
          expectations={'below_limit': 'amount < 40'},
          on_violation='quarantine') }}
-- Expectations (a Sluice extension of config): failing rows go to
-- valid_orders__quarantine instead of the table.
select id, customer_id, amount from {{ ref('stg_orders') }}
