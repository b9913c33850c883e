#!/usr/bin/env bash
# Runs the whole test suite: unit tests, integration tests against real `rpaas` processes,
# real TLS clients and a stand-in origin on 127.0.0.1.
#   scripts/test.sh                     debug build (quick to rebuild while developing)
#   RPAAS_TEST_PROFILE=release scripts/test.sh
#                                       optimised build: what CI runs, so that the robustness
#                                       suite and the benchmarks reuse the same binaries
# Arguments go to `cargo test` (e.g. `-- --nocapture`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
profile=()
case "${RPAAS_TEST_PROFILE:-debug}" in
  debug) ;;
  release) profile=(--release) ;;
  *) echo "RPAAS_TEST_PROFILE must be debug or release" >&2; exit 2 ;;
esac
# The end-to-end tests start the real binaries (rpaas, rpaas-connector, rpaas-standin).
cargo build "${profile[@]}" --workspace --bins
cargo test "${profile[@]}" --workspace --all-targets "$@"
