#!/usr/bin/env bash
# Crash safety, the long run: kill -9 the server at random moments during
# writes, DDL, maintenance and refreshes, restart it, and check what
# survived (tests/integration/crash.rs). TRIALS (default 100) trials on
# one lake; SEED repeats a run. Prints the states found.
set -euo pipefail
cd "$(dirname "$0")/../.."
CARGO_TARGET_DIR="$(scripts/target-dir.sh)"
export CARGO_TARGET_DIR
export SLUICE_CRASH_TRIALS="${TRIALS:-100}"
if [ -n "${SEED:-}" ]; then export SLUICE_CRASH_SEED="$SEED"; fi
cargo test --test integration -- crash:: --nocapture 2>&1 |
  grep -E '^crash|panicked|test result'
