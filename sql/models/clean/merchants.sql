-- One row per merchant, categories normalised to lower case.
with merchants as (
    select
        merchant_id,
        merchant_name,
        lower(trim(category)) as category,
        country,
        created_date
    from {{ ref('raw_merchants') }}
)

select
    merchant_id,
    merchant_name,
    category,
    country,
    created_date,
    -- the card schemes' high-risk merchant categories
    category in ('electronics', 'digital_goods', 'gaming', 'jewelry') as is_high_risk_category
from merchants
