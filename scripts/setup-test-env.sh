#!/usr/bin/env bash
# Installs what the test suite needs: PostgreSQL 15 (server and client, the
# reference peer) from Debian, a Python virtualenv with the client and
# interoperability packages pinned in scripts/requirements-test.txt, and the
# non-Python clients of tests/clients/: pgjdbc from Debian
# (libpostgresql-jdbc-java) and node-postgres from npm (`npm ci` in
# tests/clients/node). (The S3 test server is a dev-dependency that runs inside
# the test process.)
#
# Idempotent and quick when everything is already in place.
#
# Environment:
#   SLUICE_VENV   virtualenv location (default: $HOME/.cache/sluice-venv)
#   SLUICE_PYTHON interpreter used to create it (default: python3)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${SLUICE_VENV:-$HOME/.cache/sluice-venv}"
PYTHON="${SLUICE_PYTHON:-python3}"
REQUIREMENTS=("$SCRIPT_DIR/requirements-test.txt")

log() { echo "setup-test-env: $*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        log "need root to run: $*"
        return 1
    fi
}

# --- PostgreSQL 15 ---------------------------------------------------------

pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

install_postgres() {
    local missing=()
    for pkg in postgresql-15 postgresql-client-15; do
        pkg_installed "$pkg" || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        log "PostgreSQL 15 already installed"
        return 0
    fi
    log "installing ${missing[*]}"

    # We run our own throwaway cluster (scripts/pg-test-server.sh): keep the
    # package from creating and starting the default "main" cluster, and keep
    # invoke-rc.d from starting services while installing.
    as_root mkdir -p /etc/postgresql-common/createcluster.d
    if [ ! -e /etc/postgresql-common/createcluster.d/sluice-no-main.conf ]; then
        echo "create_main_cluster = false" |
            as_root tee /etc/postgresql-common/createcluster.d/sluice-no-main.conf >/dev/null
    fi
    local policy_rc=/usr/sbin/policy-rc.d added_policy=0
    if [ ! -e "$policy_rc" ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy_rc" >/dev/null
        as_root chmod +x "$policy_rc"
        added_policy=1
    fi

    local rc=0
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || rc=$?
    if [ "$rc" -eq 0 ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${missing[@]}" || rc=$?
    fi
    if [ "$added_policy" -eq 1 ]; then
        as_root rm -f "$policy_rc"
    fi
    [ "$rc" -eq 0 ] || { log "apt-get failed ($rc)"; return "$rc"; }

    # Should a default cluster exist after all, make sure it is not running.
    if command -v pg_ctlcluster >/dev/null 2>&1; then
        as_root pg_ctlcluster 15 main stop >/dev/null 2>&1 || true
    fi
}

# --- JDBC driver (pgjdbc, what DBeaver and Metabase use) -------------------

install_jdbc() {
    if pkg_installed libpostgresql-jdbc-java && [ -f /usr/share/java/postgresql.jar ]; then
        log "pgjdbc already installed"
        return 0
    fi
    log "installing libpostgresql-jdbc-java"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends libpostgresql-jdbc-java
}

# --- node-postgres ---------------------------------------------------------

install_node_clients() {
    local dir="$SCRIPT_DIR/../tests/clients/node"
    if ! command -v npm >/dev/null 2>&1; then
        log "npm not found: node client tests will fail (install Node 20)"
        return 1
    fi
    # npm ci wipes node_modules: only when the lock file changed since the last run.
    local stamp="$dir/node_modules/.sluice-lock.sha256"
    local want
    want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        log "node packages in tests/clients/node are up to date"
        return 0
    fi
    log "installing node packages (npm ci) in tests/clients/node"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$want" >"$stamp"
}

# --- Python virtualenv -----------------------------------------------------

requirements_hash() {
    # The interpreter version is part of the hash: a new python3 means a new venv.
    {
        "$PYTHON" -c 'import sys; print(sys.version)'
        cat "${REQUIREMENTS[@]}"
    } | sha256sum | cut -d' ' -f1
}

install_venv() {
    local stamp="$VENV/.sluice-requirements.sha256"
    local want
    want="$(requirements_hash)"
    if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        log "virtualenv $VENV is up to date"
        return 0
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
            # Debian's python3 needs python3-venv for ensurepip.
            log "python3 -m venv failed; installing python3-venv"
            rm -rf "$VENV"
            as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
            "$PYTHON" -m venv "$VENV"
        fi
    fi
    log "installing Python packages into $VENV"
    rm -f "$stamp"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    local args=()
    for req in "${REQUIREMENTS[@]}"; do
        args+=(-r "$req")
    done
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${args[@]}"
    echo "$want" >"$stamp"
    log "virtualenv ready"
}

install_postgres
install_jdbc
install_node_clients
install_venv
