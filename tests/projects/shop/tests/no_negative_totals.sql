-- rows returned are failures
select * from {{ ref('customer_totals') }} where amount_cents < 0
