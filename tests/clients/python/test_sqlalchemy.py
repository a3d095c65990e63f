"""SQLAlchemy 2 (what Superset, pandas and most Python tools sit on): the
inspector's catalog queries, Core select/insert, pandas read_sql / to_sql.

Runs with both `postgresql+psycopg2` and `postgresql+psycopg` against
PostgreSQL 15 and Sluice; the expected values below are what PostgreSQL 15
returns for the same schema (the `[pg-...]` runs check that).
"""
from __future__ import annotations

import datetime as dt
import decimal

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import clientlib

D = decimal.Decimal

SETUP = """
CREATE SCHEMA shop;
CREATE TABLE shop.customers (
  id     bigint PRIMARY KEY,
  email  varchar(20) UNIQUE,
  name   text NOT NULL,
  active boolean DEFAULT true,
  signup date
);
CREATE TABLE shop.orders (
  id          bigint PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES shop.customers (id),
  amount      numeric(12,2) CHECK (amount >= 0),
  placed      timestamptz NOT NULL,
  note        text DEFAULT 'none',
  qty         integer DEFAULT 1
);
CREATE VIEW shop.big_orders AS SELECT id, amount FROM shop.orders WHERE amount > 100;
CREATE SEQUENCE shop.invoice_no START 1000;
INSERT INTO shop.customers VALUES (1, 'a@x.io', 'Ada', true, '2026-01-01'), (2, 'b@x.io', 'Bob', false, NULL);
INSERT INTO shop.orders VALUES (10, 1, 150.00, '2026-11-01 10:00:00+00', 'first', 2), (11, 2, 5.50, '2026-11-02 11:00:00+00', 'none', 1);
"""

_ready: set[tuple[str, int, str]] = set()


@pytest.fixture(params=["psycopg2", "psycopg"])
def engine(request, target):
    """An engine on `target` whose database holds the `shop` schema."""
    clientlib.setup_once(target, SETUP)
    eng = sa.create_engine(target.sqlalchemy_url(request.param), poolclass=sa.pool.NullPool)
    yield eng
    eng.dispose()


def cols(insp, table):
    return [
        (c["name"], repr(c["type"]), c["nullable"], c["default"])
        for c in insp.get_columns(table, schema="shop")
    ]


def test_schema_table_view_names(engine):
    insp = sa.inspect(engine)
    assert {"information_schema", "public", "shop"} <= set(insp.get_schema_names())
    assert insp.get_table_names(schema="shop") == ["customers", "orders"]
    assert insp.get_view_names(schema="shop") == ["big_orders"]
    assert insp.get_materialized_view_names(schema="shop") == []
    assert insp.has_table("orders", schema="shop")
    assert not insp.has_table("nope", schema="shop")
    assert insp.has_schema("shop")
    assert insp.get_sequence_names(schema="shop") == ["invoice_no"]
    assert insp.has_sequence("invoice_no", schema="shop")
    assert not insp.has_sequence("orders", schema="shop")


def test_get_columns(engine):
    insp = sa.inspect(engine)
    assert cols(insp, "customers") == [
        ("id", "BIGINT()", False, None),
        ("email", "VARCHAR(length=20)", True, None),
        ("name", "TEXT()", False, None),
        ("active", "BOOLEAN()", True, "true"),
        ("signup", "DATE()", True, None),
    ]
    assert cols(insp, "orders") == [
        ("id", "BIGINT()", False, None),
        ("customer_id", "BIGINT()", False, None),
        ("amount", "NUMERIC(precision=12, scale=2)", True, None),
        ("placed", "TIMESTAMP(timezone=True)", False, None),
        ("note", "TEXT()", True, "'none'::text"),
        ("qty", "INTEGER()", True, "1"),
    ]
    assert [c["name"] for c in insp.get_columns("big_orders", schema="shop")] == ["id", "amount"]


def test_keys_and_constraints(engine):
    insp = sa.inspect(engine)
    pk = insp.get_pk_constraint("orders", schema="shop")
    assert (pk["name"], pk["constrained_columns"]) == ("orders_pkey", ["id"])
    assert insp.get_pk_constraint("customers", schema="shop")["name"] == "customers_pkey"
    assert insp.get_foreign_keys("orders", schema="shop") == [
        {
            "name": "orders_customer_id_fkey",
            "constrained_columns": ["customer_id"],
            "referred_schema": "shop",
            "referred_table": "customers",
            "referred_columns": ["id"],
            "options": {},
            "comment": None,
        }
    ]
    assert insp.get_foreign_keys("customers", schema="shop") == []
    uniques = insp.get_unique_constraints("customers", schema="shop")
    assert [(u["name"], u["column_names"]) for u in uniques] == [("customers_email_key", ["email"])]
    checks = insp.get_check_constraints("orders", schema="shop")
    assert [(c["name"], c["sqltext"]) for c in checks] == [("orders_amount_check", "amount >= 0::numeric")]


def test_get_indexes(engine):
    insp = sa.inspect(engine)
    idx = insp.get_indexes("customers", schema="shop")
    assert [(i["name"], i["unique"], i["column_names"], i.get("duplicates_constraint")) for i in idx] == [
        ("customers_email_key", True, ["email"], "customers_email_key")
    ]
    assert insp.get_indexes("orders", schema="shop") == []


def test_table_comment(engine):
    insp = sa.inspect(engine)
    assert insp.get_table_comment("orders", schema="shop") == {"text": None}
    assert insp.get_view_definition("big_orders", schema="shop")


def test_comment_on_table(target):
    """COMMENT ON TABLE / COLUMN and their reflection (SQLAlchemy emits them for Table.comment)."""
    eng = sa.create_engine(target.sqlalchemy_url("psycopg"), poolclass=sa.pool.NullPool)
    md = sa.MetaData()
    sa.Table(
        "commented", md,
        sa.Column("id", sa.BigInteger, primary_key=True, comment="the key"),
        comment="a table with a comment",
    )
    md.create_all(eng)
    insp = sa.inspect(eng)
    assert insp.get_table_comment("commented") == {"text": "a table with a comment"}
    assert insp.get_columns("commented")[0]["comment"] == "the key"
    eng.dispose()


def test_reflect_and_core(engine):
    md = sa.MetaData()
    orders = sa.Table("orders", md, schema="shop", autoload_with=engine)
    customers = sa.Table("customers", md, schema="shop", autoload_with=engine)
    assert [c.name for c in orders.primary_key] == ["id"]
    assert isinstance(orders.c.amount.type, sa.Numeric)
    q = (
        sa.select(customers.c.name, sa.func.sum(orders.c.amount).label("total"))
        .join(orders, orders.c.customer_id == customers.c.id)
        .where(orders.c.placed >= dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc))
        .group_by(customers.c.name)
        .order_by(customers.c.name)
    )
    with engine.connect() as conn:
        assert conn.execute(q).all() == [("Ada", D("150.00")), ("Bob", D("5.50"))]
        n = conn.execute(sa.select(sa.func.count()).select_from(orders).where(orders.c.note == "none")).scalar()
        assert n == 1


def test_core_create_insert_select(target):
    for driver in ("psycopg2", "psycopg"):
        eng = sa.create_engine(target.sqlalchemy_url(driver), poolclass=sa.pool.NullPool)
        md = sa.MetaData()
        t = sa.Table(
            f"core_{driver}", md,
            sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
            sa.Column("name", sa.String(30), nullable=False),
            sa.Column("amount", sa.Numeric(12, 2)),
            sa.Column("at", sa.DateTime(timezone=True)),
            sa.Column("ok", sa.Boolean, server_default=sa.true()),
        )
        md.create_all(eng)
        at = dt.datetime(2026, 11, 5, 12, tzinfo=dt.timezone.utc)
        with eng.begin() as conn:
            conn.execute(t.insert(), [{"id": i, "name": f"n{i}", "amount": D(i) / 2, "at": at} for i in range(30)])
            r = conn.execute(t.insert().values(id=100, name="ret", amount=None, at=None).returning(t.c.id, t.c.ok))
            assert r.all() == [(100, True)]
        with eng.connect() as conn:
            rows = conn.execute(sa.select(t).where(t.c.amount > 10).order_by(t.c.id)).all()
            assert [r.id for r in rows] == list(range(21, 30))
            assert rows[0].at == at and rows[0].ok is True
            conn.execute(t.update().where(t.c.id == 1).values(name="upd"))
            conn.execute(t.delete().where(t.c.id == 2))
            conn.commit()
            assert conn.execute(sa.select(t.c.name).where(t.c.id == 1)).scalar() == "upd"
            assert conn.execute(sa.select(sa.func.count()).select_from(t)).scalar() == 30
        md.drop_all(eng)
        eng.dispose()


def test_orm_autoincrement_keys(target):
    """An ORM model's integer key (SERIAL) and an Identity column take their
    values from sequences; the ORM reads them back with RETURNING, and the
    inspector reports the serial default and the identity as PostgreSQL does."""
    for driver in ("psycopg2", "psycopg"):
        class Base(DeclarativeBase):
            pass

        class User(Base):
            __tablename__ = f"orm_users_{driver}"
            id: Mapped[int] = mapped_column(primary_key=True)
            email: Mapped[str] = mapped_column(sa.String(40))

        class Event(Base):
            __tablename__ = f"orm_events_{driver}"
            id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(start=100, increment=10), primary_key=True)
            kind: Mapped[str] = mapped_column(sa.Text)

        eng = sa.create_engine(target.sqlalchemy_url(driver), poolclass=sa.pool.NullPool)
        Base.metadata.drop_all(eng)
        Base.metadata.create_all(eng)
        with Session(eng) as s:
            users = [User(email=f"u{i}@x.io") for i in range(3)]
            s.add_all(users)
            s.add(Event(kind="signup"))
            s.commit()
            assert [u.id for u in users] == [1, 2, 3]
            assert s.scalars(sa.select(Event.id)).all() == [100]
            s.add(Event(kind="login"))
            s.commit()
            assert s.scalars(sa.select(Event.id).order_by(Event.id)).all() == [100, 110]
        insp = sa.inspect(eng)
        users_id = insp.get_columns(f"orm_users_{driver}")[0]
        assert users_id["default"] == f"nextval('orm_users_{driver}_id_seq'::regclass)"
        assert users_id["autoincrement"] is True
        with eng.connect() as conn:
            seq = conn.execute(sa.text(f"SELECT pg_get_serial_sequence('orm_users_{driver}', 'id')")).scalar()
            assert seq == f"public.orm_users_{driver}_id_seq"
        Base.metadata.drop_all(eng)
        eng.dispose()


def test_pandas_read_sql_and_to_sql(engine):
    driver = engine.dialect.driver
    df = pd.read_sql("SELECT id, amount, placed FROM shop.orders ORDER BY id", engine)
    assert list(df.columns) == ["id", "amount", "placed"]
    assert df["id"].tolist() == [10, 11]
    assert df["placed"].dt.tz is not None
    name = f"pandas_{driver}"
    frame = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "name": ["a", None, "c"],
            "score": [0.5, 1.5, None],
            "flag": [True, False, True],
            "at": pd.to_datetime(["2026-01-01 00:00:00", "2026-01-02 12:00:00", "2026-01-03 23:59:59"]),
        }
    )
    # to_sql's return value is the driver's rowcount (-1 with psycopg 3): not checked
    frame.to_sql(name, engine, index=False)
    more = frame.assign(id=frame["id"] + 10)
    more.to_sql(name, engine, index=False, if_exists="append")
    back = pd.read_sql(sa.text(f"SELECT * FROM {name} ORDER BY id"), engine)
    assert back["id"].tolist() == [1, 2, 3, 11, 12, 13]
    assert back["name"].isna().tolist() == [False, True, False] * 2
    assert back["at"].tolist()[:3] == frame["at"].tolist()
    insp = sa.inspect(engine)
    assert [(c["name"], repr(c["type"])) for c in insp.get_columns(name)] == [
        ("id", "BIGINT()"),
        ("name", "TEXT()"),
        ("score", "DOUBLE_PRECISION(precision=53)"),
        ("flag", "BOOLEAN()"),
        ("at", "TIMESTAMP()"),
    ]
    frame.to_sql(name, engine, index=False, if_exists="replace")
    assert pd.read_sql(f"SELECT count(*) AS n FROM {name}", engine)["n"].tolist() == [3]
