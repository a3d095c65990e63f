-- a second statement after the query: refused before anything runs, so
-- the table good is still there afterwards
select 1 as x; drop table broken.good
