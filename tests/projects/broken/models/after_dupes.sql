select * from {{ ref('dupes') }}
