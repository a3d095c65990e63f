select 1 as x union all select 2
