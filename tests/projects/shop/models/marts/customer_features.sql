-- each customer's order amounts as features, valid for 30 days
{{ config(materialized='feature_view', entity='customer_id', timestamp='updated_at', ttl='30 days') }}
select customer_id, updated_at, amount as last_amount
from {{ ref('stg_orders') }}
