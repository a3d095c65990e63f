select * from {{ ref('nope') }}
