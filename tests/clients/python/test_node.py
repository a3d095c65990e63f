"""Runs tests/clients/node/check.js (node-postgres, installed by
scripts/setup-test-env.sh with `npm ci`) against PostgreSQL 15 and Sluice."""
from __future__ import annotations

import subprocess

import clientlib

NODE_DIR = clientlib.ROOT / "tests" / "clients" / "node"


def test_node_pg(target):
    assert (NODE_DIR / "node_modules" / "pg").is_dir(), "run scripts/setup-test-env.sh (npm ci in tests/clients/node)"
    res = subprocess.run(
        ["node", "check.js", target.url], cwd=NODE_DIR, capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 0, f"check.js against {target.kind}:\n{res.stdout}{res.stderr}"
