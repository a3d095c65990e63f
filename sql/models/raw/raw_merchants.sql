-- Merchants, as the acquirer lists them. The category follows the merchant id
-- (ids 6-9 of every ten are the risky categories the generator's fraud uses).
-- Dirt: 3% of categories in mixed case with blanks around them.
{% set seed = var('seed') %}

with ids as (
    select i as merchant_id, {{ hash32('i', seed + 1000) }} as h
    from generate_series(1, {{ var('n_merchants') }}) as t(i)
),

draws as (
    select
        merchant_id,
        {{ uniform('h', 1) }} as u_country,
        {{ uniform('h', 2) }} as u_dirt,
        {{ uniform('h', 3) }} as u_created
    from ids
),

named as (
    select
        merchant_id,
        u_country,
        u_dirt,
        u_created,
        (array['grocery', 'restaurants', 'fuel', 'retail', 'travel',
               'electronics', 'digital_goods', 'gaming', 'jewelry', 'pharmacy'])[1 + (merchant_id - 1) % 10] as category
    from draws
),

country_slices as (
    select
        code,
        sum(user_weight) over (order by code rows between unbounded preceding and current row) - user_weight as lo,
        sum(user_weight) over (order by code rows between unbounded preceding and current row) as hi,
        sum(user_weight) over () as total
    from {{ ref('countries') }}
)

select
    n.merchant_id,
    'Merchant ' || n.merchant_id as merchant_name,
    case
        when n.u_dirt < 0.03 then '  ' || upper(substr(n.category, 1, 1)) || substr(n.category, 2) || ' '
        else n.category
    end as category,
    c.code as country,
    date '{{ var("start_date") }}' - (1 + floor(n.u_created * 3000))::int as created_date
from named n
join country_slices c
  on n.u_country * c.total >= c.lo and n.u_country * c.total < c.hi
