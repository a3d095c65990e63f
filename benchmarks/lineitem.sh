# TPC-H lineitem's columns with PostgreSQL types, in the order make_csv.py
# writes them (the CSV is positional). Sourced by the benchmark scripts.
# shellcheck shell=bash
# shellcheck disable=SC2034  # used by the scripts that source this file
LINEITEM_COLUMNS="
    l_orderkey      bigint,
    l_partkey       bigint,
    l_suppkey       bigint,
    l_linenumber    integer,
    l_quantity      numeric(15,2),
    l_extendedprice numeric(15,2),
    l_discount      numeric(15,2),
    l_tax           numeric(15,2),
    l_returnflag    char(1),
    l_linestatus    char(1),
    l_shipdate      date,
    l_commitdate    date,
    l_receiptdate   date,
    l_shipinstruct  char(25),
    l_shipmode      char(10),
    l_comment       varchar(44)"
