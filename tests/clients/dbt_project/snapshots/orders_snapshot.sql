{% snapshot orders_snapshot %}
{{
    config(
      target_schema='snapshots',
      unique_key='id',
      strategy='timestamp',
      updated_at='updated_at',
    )
}}
select id, customer_id, amount, status, updated_at from {{ ref('orders') }}
{% endsnapshot %}
