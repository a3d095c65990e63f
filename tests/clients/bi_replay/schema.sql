-- The objects the BI queries look at (created on Sluice and on PostgreSQL).
CREATE SCHEMA bi;
CREATE TABLE bi.customers (
  id     bigint PRIMARY KEY,
  email  varchar(20) UNIQUE,
  name   text NOT NULL,
  active boolean DEFAULT true,
  signup date
);
CREATE TABLE bi.orders (
  id          bigint PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES bi.customers (id),
  amount      numeric(12,2) CHECK (amount >= 0),
  placed      timestamptz NOT NULL,
  note        text DEFAULT 'none'
);
CREATE VIEW bi.big_orders AS SELECT id, amount FROM bi.orders WHERE amount > 100;
INSERT INTO bi.customers VALUES (1, 'a@x.io', 'Ada', true, '2026-01-01');
INSERT INTO bi.orders VALUES (10, 1, 150.00, '2026-11-01 10:00:00+00', 'first');
