#!/usr/bin/env bash
# Runs the whole test suite: unit tests, integration tests against real `rpaas` processes,
# real TLS clients and a stand-in origin on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
# The end-to-end tests start the real binaries (rpaas, rpaas-connector, rpaas-standin).
cargo build --workspace --bins
cargo test --workspace --all-targets "$@"
