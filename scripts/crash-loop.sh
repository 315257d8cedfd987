#!/usr/bin/env bash
# The long crash loop: 50 kill -9s at random moments under load (release build), then the same
# checks as the CI variant: nothing acknowledged lost, first deliveries in order per endpoint,
# duplicates only across a crash. Usage: scripts/crash-loop.sh [KILLS] (default 50).
# Replay a failing run with COURIER_CRASH_SEED=<seed printed by the run>.
set -euo pipefail
cd "$(dirname "$0")/.."
export COURIER_CRASH_KILLS="${1:-50}"
cargo test --release --test crash_loop -- --nocapture
