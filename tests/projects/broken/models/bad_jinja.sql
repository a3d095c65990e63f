-- a template error on line 3
select
  {{ 1 + }} as x
