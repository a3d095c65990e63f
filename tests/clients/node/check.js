// node-postgres (`pg`) against a PostgreSQL-wire server: simple and extended
// queries, parameters of the common types, a transaction, a portal read in
// chunks (`rows`), an error with its SQLSTATE and the connection still usable.
// Expectations are PostgreSQL 15's; tests/clients/python/test_node.py runs it
// against PostgreSQL and Sluice.
//
//   node check.js postgresql://user@host:port/db
//
// Prints "ok <check>" per check; on the first failure "FAIL <check>: <why>"
// (with the SQLSTATE when the server sent an error) and exits 1.
'use strict';

const assert = require('node:assert/strict');
const { Client } = require('pg');

const url = process.argv[2];

async function main() {
  const client = new Client({ connectionString: url });
  let current = 'connect';
  const step = async (name, fn) => {
    current = name;
    await fn();
    console.log(`ok ${name}`);
  };
  try {
    await step('connect', async () => {
      await client.connect();
      await client.query("SET TIME ZONE 'UTC'");
    });

    await step('simple_query', async () => {
      // no parameters: pg uses the simple query protocol; several statements at once
      const res = await client.query(
        'CREATE TABLE node_items (id bigint PRIMARY KEY, name text NOT NULL, price numeric(12,2),' +
        ' created timestamptz, flag boolean, day date, doc jsonb, raw bytea, ratio double precision, n integer);' +
        "INSERT INTO node_items (id, name) VALUES (0, 'zero')");
      assert.ok(Array.isArray(res), 'two statements give two results');
      assert.equal(res[1].rowCount, 1);
      const sel = await client.query('SELECT id, name FROM node_items');
      assert.deepEqual(sel.rows, [{ id: '0', name: 'zero' }]);
      assert.deepEqual(sel.fields.map((f) => f.dataTypeID), [20, 25]);
    });

    await step('extended_parameters', async () => {
      const created = new Date(Date.UTC(2026, 10, 1, 12, 30, 45, 123));
      const res = await client.query(
        'INSERT INTO node_items (id, name, price, created, flag, day, doc, raw, ratio, n)' +
        ' VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id',
        [1, 'one', '12.50', created, true, '2026-11-01', { a: [1, 'x'] }, Buffer.from([0, 1, 255]), 0.25, 7]);
      assert.deepEqual(res.rows, [{ id: '1' }]);
      const back = await client.query('SELECT * FROM node_items WHERE id = $1', [1]);
      const row = back.rows[0];
      assert.equal(row.name, 'one');
      assert.equal(row.price, '12.50');
      assert.equal(row.created.toISOString(), created.toISOString());
      assert.equal(row.flag, true);
      assert.ok(row.day instanceof Date);
      assert.deepEqual(row.doc, { a: [1, 'x'] });
      assert.deepEqual([...row.raw], [0, 1, 255]);
      assert.equal(row.ratio, 0.25);
      assert.equal(row.n, 7);
      assert.deepEqual(back.fields.map((f) => f.dataTypeID), [20, 25, 1700, 1184, 16, 1082, 3802, 17, 701, 23]);
      const cnt = await client.query(
        'SELECT count(*)::int AS c FROM node_items WHERE created >= $1 AND name = ANY($2)',
        [new Date(Date.UTC(2026, 10, 1)), ['one', 'two']]);
      assert.equal(cnt.rows[0].c, 1);
      const nul = await client.query('SELECT $1::text IS NULL AS isnull', [null]);
      assert.equal(nul.rows[0].isnull, true);
    });

    await step('named_prepared_statement', async () => {
      for (let i = 2; i <= 8; i++) {
        const r = await client.query({
          name: 'ins_item', text: 'INSERT INTO node_items (id, name, price) VALUES ($1, $2, $3)',
          values: [i, `item ${i}`, (i * 1.5).toFixed(2)],
        });
        assert.equal(r.rowCount, 1);
      }
      const r = await client.query({ name: 'sum_items', text: 'SELECT sum(price) AS s FROM node_items WHERE id >= $1', values: [2] });
      assert.equal(r.rows[0].s, '52.50');
    });

    await step('portal_rows', async () => {
      // `rows` makes pg Execute with a row limit and continue on PortalSuspended
      const r = await client.query({ text: 'SELECT g FROM generate_series(1, 50) AS g ORDER BY g', rows: 7 });
      assert.equal(r.rows.length, 50);
      assert.equal(r.rows[49].g, 50);
    });

    await step('row_mode_array', async () => {
      const r = await client.query({ text: 'SELECT 1::int AS a, $1::text AS b', values: ['x'], rowMode: 'array' });
      assert.deepEqual(r.rows, [[1, 'x']]);
    });

    await step('transaction', async () => {
      await client.query('BEGIN');
      await client.query('INSERT INTO node_items (id, name) VALUES ($1, $2)', [100, 'tx']);
      await client.query('COMMIT');
      const r = await client.query('SELECT name FROM node_items WHERE id = 100');
      assert.deepEqual(r.rows, [{ name: 'tx' }]);
      await client.query('BEGIN');
      await assert.rejects(client.query('SELECT 1/0'), (e) => e.code === '22012');
      await assert.rejects(client.query('SELECT 1'), (e) => e.code === '25P02');
      await client.query('ROLLBACK');
    });

    await step('errors', async () => {
      await assert.rejects(client.query('SELECT * FROM node_missing'), (e) => {
        assert.equal(e.code, '42P01');
        return true;
      });
      await assert.rejects(client.query('INSERT INTO node_items (id, name) VALUES ($1, $2)', [1, 'dup']), (e) => {
        assert.equal(e.code, '23505');
        assert.equal(e.constraint, 'node_items_pkey');
        return true;
      });
      await assert.rejects(client.query('INSERT INTO node_items (id) VALUES ($1)', [555]), (e) => {
        assert.equal(e.code, '23502');
        assert.equal(e.column, 'name');
        return true;
      });
      const r = await client.query('SELECT count(*)::int AS c FROM node_items');
      assert.equal(r.rows[0].c, 10);
    });
  } catch (e) {
    console.log(`FAIL ${current}: ${e && e.message}`);
    if (e && e.code) console.log(`  SQLSTATE ${e.code}`);
    await client.end().catch(() => {});
    process.exit(1);
  }
  await client.end();
  console.log('all checks passed');
}

main();
