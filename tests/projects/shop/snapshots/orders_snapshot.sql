{% snapshot orders_snapshot %}
{{ config(target_schema='shop_history', unique_key='id', strategy='timestamp', updated_at='updated_at') }}
select id, customer_id, amount, status, updated_at from {{ ref('orders') }}
{% endsnapshot %}

{% snapshot status_snapshot %}
{{ config(target_schema='shop_history', unique_key='id', strategy='check', check_cols=['status']) }}
select id, status from {{ ref('orders') }}
{% endsnapshot %}
