-- The demo lake: a small shop. Load it with
--   sluice sql --lake ./lake -f sql/demo.sql
CREATE SCHEMA IF NOT EXISTS shop;

CREATE TABLE IF NOT EXISTS shop.customers (
    id      bigint NOT NULL,
    name    text NOT NULL,
    country char(2),
    joined  date
);

CREATE TABLE IF NOT EXISTS shop.orders (
    id          bigint NOT NULL,
    customer_id bigint NOT NULL,
    amount      numeric(12,2),
    status      text,
    placed      date
) PARTITIONED BY (placed);

INSERT INTO shop.customers VALUES
    (1, 'Ada Lovelace', 'GB', '2026-01-10'),
    (2, 'Grace Hopper', 'US', '2026-02-03'),
    (3, 'Kurt Gödel',   'AT', '2026-03-21');

INSERT INTO shop.orders VALUES
    (100, 1,  42.50, 'shipped',   '2026-11-01'),
    (101, 2,  17.00, 'shipped',   '2026-11-01'),
    (102, 1,   9.99, 'cancelled', '2026-11-02'),
    (103, 3, 120.00, 'placed',    '2026-11-03');

CREATE OR REPLACE VIEW shop.revenue_by_customer AS
SELECT c.name, count(*) AS orders, sum(o.amount) AS revenue
FROM shop.orders o JOIN shop.customers c ON c.id = o.customer_id
WHERE o.status <> 'cancelled'
GROUP BY c.name;
