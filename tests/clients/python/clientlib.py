"""Helpers shared by the client compatibility suites.

Each test file gets one Sluice server on a fresh temporary lake (module scope)
and one fresh database in the PostgreSQL 15 test server; most tests run once
against each (`target` fixture), so every expectation is checked on
PostgreSQL too: a test that fails on `[pg]` is a wrong test, one that fails
only on `[sluice]` is a server gap.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parents[3]
DEFAULT_BIN = "/tmp/sluice-bin/sluice"
START_TIMEOUT = 60.0


@dataclasses.dataclass
class Target:
    """One server a client connects to: Sluice or the PostgreSQL oracle."""

    kind: str  # "sluice" or "pg"
    host: str
    port: int
    user: str
    dbname: str
    log_path: pathlib.Path | None = None

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    def sqlalchemy_url(self, driver: str) -> str:
        return f"postgresql+{driver}://{self.user}@{self.host}:{self.port}/{self.dbname}"

    @property
    def conninfo(self) -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={self.dbname}"

    @property
    def env(self) -> dict[str, str]:
        """libpq environment for command-line clients (psql)."""
        return {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGDATABASE": self.dbname,
        }

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def sluice_bin() -> str:
    path = os.environ.get("SLUICE_BIN", DEFAULT_BIN)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise RuntimeError(
            f"Sluice binary {path!r} not found or not executable "
            "(set SLUICE_BIN to a built `sluice`)"
        )
    return path


class SluiceServer:
    """`sluice serve --lake <tmp> --listen 127.0.0.1:0`, stopped with SIGTERM."""

    def __init__(self, name: str, lake: pathlib.Path | None = None):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix=f"sluice-clients-{name}-"))
        self.lake = lake or self.dir / "lake"
        self.stdout_path = self.dir / "stdout.log"
        self.stderr_path = self.dir / "server.log"
        self.proc: subprocess.Popen | None = None
        self.target: Target | None = None

    def start(self) -> Target:
        binary = sluice_bin()
        self.lake.mkdir(exist_ok=True)
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [binary, "serve", "--lake", str(self.lake), "--listen", "127.0.0.1:0"],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            for line in self.stdout_path.read_text(errors="replace").splitlines():
                if line.startswith("listening on "):
                    hostport = line[len("listening on "):].strip()
                    host, _, port = hostport.rpartition(":")
                    self.target = Target(
                        "sluice", host.strip("[]"), int(port), "sluice", "sluice",
                        self.stderr_path,
                    )
                    return self.target
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"sluice serve exited with {self.proc.returncode} before listening:\n"
                    + self.stderr_path.read_text(errors="replace")[-4000:]
                )
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("sluice serve did not print 'listening on' within 60 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if os.environ.get("SLUICE_KEEP_LAKES"):
            return
        shutil.rmtree(self.dir, ignore_errors=True)


def pg_admin_url() -> str:
    url = os.environ.get("SLUICE_TEST_PG_URL")
    if url:
        return url
    script = ROOT / "scripts" / "pg-test-server.sh"
    subprocess.run([str(script), "start"], check=True, capture_output=True)
    return subprocess.run(
        [str(script), "url"], check=True, capture_output=True, text=True
    ).stdout.strip()


@contextlib.contextmanager
def pg_database(name: str):
    """A fresh database `name` in the PostgreSQL test server, dropped afterwards."""
    import psycopg

    admin = pg_admin_url()
    parts = urllib.parse.urlsplit(admin)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    target = Target(
        "pg", parts.hostname or "127.0.0.1", parts.port or 5432,
        urllib.parse.unquote(parts.username or "postgres"), name,
    )
    try:
        # Same session defaults a Sluice server has out of the box.
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE \"{name}\" SET TimeZone = 'UTC'")
        yield target
    finally:
        if not os.environ.get("SLUICE_KEEP_LAKES"):
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_script(target: Target, sql: str) -> None:
    """Runs `sql` (statements separated by ';' at line ends) one by one, autocommit."""
    import psycopg

    with psycopg.connect(target.conninfo, autocommit=True) as conn:
        for stmt in split_sql(sql):
            try:
                conn.execute(stmt)
            except psycopg.Error as e:
                raise AssertionError(
                    f"[{target.kind}] setup statement failed: {stmt}\n"
                    f"  SQLSTATE {e.sqlstate}: {e}"
                ) from e


def split_sql(sql: str) -> list[str]:
    """Splits a script on ';' at the end of a line (enough for our fixtures)."""
    out, cur = [], []
    for line in sql.splitlines():
        if line.strip().startswith("--") and not cur:
            continue
        cur.append(line)
        if line.rstrip().endswith(";"):
            stmt = "\n".join(cur).strip().rstrip(";").strip()
            if stmt:
                out.append(stmt)
            cur = []
    rest = "\n".join(cur).strip()
    if rest:
        out.append(rest)
    return out


def sorted_rows(rows) -> list[tuple]:
    """Rows as a sorted list of tuples; None sorts first, mixed types by repr."""
    def key(row):
        return tuple((v is not None, str(type(v)), v if v is not None else 0) for v in row)
    try:
        return sorted((tuple(r) for r in rows), key=key)
    except TypeError:
        return sorted((tuple(r) for r in rows), key=repr)


_setups: dict[tuple, BaseException | None] = {}


def setup_once(target: Target, sql: str) -> None:
    """Runs `sql` on `target` once per server and database; a failed setup is
    re-raised for every test that needs it (not retried into 'already exists')."""
    key = (target.host, target.port, target.dbname, hash(sql))
    if key not in _setups:
        try:
            run_script(target, sql)
            _setups[key] = None
        except BaseException as e:  # noqa: BLE001 - re-raised below
            _setups[key] = e
    err = _setups[key]
    if err is not None:
        raise AssertionError(f"schema setup failed on {target.kind}: {err}")
