#!/usr/bin/env bash
# Prints cargo's build folder for this checkout: $CARGO_TARGET_DIR when set,
# otherwise one folder per checkout under $HOME/.cache, so reruns are warm
# and two checkouts never share build output (the tests embed the checkout
# path at compile time).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
    echo "$CARGO_TARGET_DIR"
else
    echo "$HOME/.cache/sluice-target-$(printf %s "$ROOT" | sha1sum | cut -c1-12)"
fi
