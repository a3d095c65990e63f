select x * 10 as y from {{ ref('good') }}
