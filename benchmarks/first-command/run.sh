#!/usr/bin/env bash
# The README's first command as a newcomer runs it: a fresh clone of this
# checkout's HEAD, an empty cargo registry (crates are downloaded) and an
# empty target directory, then `cargo run -- serve --project sql` until
# the demo answers a query. Prints the minutes to the end of the build and
# to the served demo. Needs the network, rustup's toolchain and psql.
#
#   benchmarks/first-command/run.sh
set -euo pipefail
BENCH=first-command
repo="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=../lib.sh
. "$repo/benchmarks/lib.sh"
WORK="$(mktemp -d)"
SERVER=""
cleanup() {
    [ -n "$SERVER" ] && kill -TERM "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

git clone -q "$repo" "$WORK/sluice"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cd "$WORK/sluice"
start=$(now)
# The README's command, on a free port so that it can run beside a server.
env -u CARGO_TARGET_DIR -u CARGO_INCREMENTAL CARGO_HOME="$WORK/cargo-home" \
    cargo run -- serve --project sql --listen "127.0.0.1:$port" >"$WORK/out.log" 2>&1 &
SERVER=$!
built=""
while :; do
    kill -0 "$SERVER" 2>/dev/null || {
        tail -20 "$WORK/out.log" >&2
        die "the command exited before serving"
    }
    if [ -z "$built" ] && grep -q '^ *Running `' "$WORK/out.log"; then
        built=$(now)
        log "built after $(calc '(a-b)/60' "$built" "$start") min"
    fi
    if [ -n "$built" ] && psql -X -q -t -h 127.0.0.1 -p "$port" -U sluice -d sluice \
        -c 'SELECT count(*) FROM demo.fraud_training_set' >/dev/null 2>&1; then
        break
    fi
    sleep 1
done
served=$(now)
echo "build: $(calc '(a-b)/60' "$built" "$start") min"
echo "demo served: $(calc '(a-b)/60' "$served" "$start") min"
