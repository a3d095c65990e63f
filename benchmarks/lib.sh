# Shared by the benchmark scripts: messages, timing arithmetic, and a
# Sluice server on a fresh lake. Sourced after setting BENCH (the name in
# messages), SLUICE_BIN and WORK (a scratch folder the script removes).
# shellcheck shell=bash

log() { echo "$BENCH: $*" >&2; }
die() {
    log "$*"
    exit 1
}

# Seconds since the epoch, with microseconds.
now() { if [ -n "${EPOCHREALTIME:-}" ]; then echo "$EPOCHREALTIME"; else date +%s.%N; fi; }

# awk arithmetic: calc 'EXPR' with a and b bound.
calc() { awk -v a="$2" -v b="${3:-0}" "BEGIN { printf \"%s\", $1 }"; }

# The median of the arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# Start `sluice serve` on a new lake under $WORK, on a free port: sets
# SLUICE_PID and URL (a postgresql:// URL for psql).
start_sluice() {
    "$SLUICE_BIN" serve --lake "$WORK/lake" --listen 127.0.0.1:0 >"$WORK/stdout.log" 2>"$WORK/stderr.log" &
    SLUICE_PID=$!
    local line="" i
    for ((i = 0; i < 600; i++)); do
        line="$(grep -m1 '^listening on ' "$WORK/stdout.log" 2>/dev/null || true)"
        [ -n "$line" ] && break
        kill -0 "$SLUICE_PID" 2>/dev/null || die "sluice exited before listening"
        sleep 0.1
    done
    [ -n "$line" ] || die "sluice did not start"
    URL="postgresql://sluice@127.0.0.1:${line##*:}/sluice"
}

# Stop the server started by start_sluice, if any.
stop_sluice() {
    if [ -n "${SLUICE_PID:-}" ]; then
        kill -TERM "$SLUICE_PID" 2>/dev/null || true
        wait "$SLUICE_PID" 2>/dev/null || true
        SLUICE_PID=""
    fi
}
