-- One row per card holder, normalised: e-mails in lower case, countries as the
-- ISO code of the countries seed (NULL when missing or unknown).
select
    u.user_id,
    lower(trim(u.email)) as email,
    c.code as country,
    u.signup_date,
    u.kyc_level
from {{ ref('raw_users') }} u
left join {{ ref('countries') }} c on c.code = upper(trim(u.country))
