select 1 as id union all select 1 union all select 2 union all select 2 union all select 3
