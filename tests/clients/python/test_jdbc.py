"""Compiles tests/clients/jdbc/JdbcCheck.java against Debian's pgjdbc
(/usr/share/java/postgresql.jar, installed by scripts/setup-test-env.sh) and
runs it against PostgreSQL 15 and Sluice."""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

import clientlib

JAR = os.environ.get("SLUICE_PGJDBC_JAR", "/usr/share/java/postgresql.jar")
SOURCE = clientlib.ROOT / "tests" / "clients" / "jdbc" / "JdbcCheck.java"


@pytest.fixture(scope="module")
def classes():
    assert os.path.exists(JAR), f"{JAR} missing: run scripts/setup-test-env.sh (libpostgresql-jdbc-java)"
    out = pathlib.Path(tempfile.mkdtemp(prefix="jdbc-check-"))
    res = subprocess.run(["javac", "-cp", JAR, "-d", str(out), str(SOURCE)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    yield out
    shutil.rmtree(out, ignore_errors=True)


def test_jdbc(classes, target):
    url = f"jdbc:postgresql://{target.host}:{target.port}/{target.dbname}?user={target.user}"
    res = subprocess.run(
        ["java", "-cp", f"{classes}{os.pathsep}{JAR}", "JdbcCheck", url],
        capture_output=True, text=True, timeout=180,
    )
    assert res.returncode == 0, f"JdbcCheck against {target.kind}:\n{res.stdout}{res.stderr}"
