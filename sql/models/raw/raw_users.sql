-- Card holders, as the onboarding system exports them.
-- Dirt: 2% of countries in lower case with blanks around them, 0.5% missing,
-- 1% of e-mails in upper case.
{% set seed = var('seed') %}

with ids as (
    select i as user_id, {{ hash32('i', seed) }} as h
    from generate_series(1, {{ var('n_users') }}) as t(i)
),

draws as (
    select
        user_id,
        {{ uniform('h', 1) }} as u_country,
        {{ uniform('h', 2) }} as u_dirt,
        {{ uniform('h', 3) }} as u_signup,
        {{ uniform('h', 4) }} as u_kyc
    from ids
),

-- each country owns the slice [lo, hi) of (0, 100) given by its user_weight
country_slices as (
    select
        code,
        sum(user_weight) over (order by code rows between unbounded preceding and current row) - user_weight as lo,
        sum(user_weight) over (order by code rows between unbounded preceding and current row) as hi,
        sum(user_weight) over () as total
    from {{ ref('countries') }}
)

select
    d.user_id,
    case
        when d.u_dirt < 0.01 then 'USER' || d.user_id || '@EXAMPLE.COM'
        else 'user' || d.user_id || '@example.com'
    end as email,
    case
        when d.u_dirt >= 0.01 and d.u_dirt < 0.03 then ' ' || lower(c.code) || ' '
        when d.u_dirt >= 0.03 and d.u_dirt < 0.035 then null
        else c.code
    end as country,
    date '{{ var("start_date") }}' - (30 + floor(d.u_signup * 1500))::int as signup_date,
    case
        when d.u_kyc < 0.6 then 'full'
        when d.u_kyc < 0.9 then 'basic'
        else 'none'
    end as kyc_level
from draws d
join country_slices c
  on d.u_country * c.total >= c.lo and d.u_country * c.total < c.hi
