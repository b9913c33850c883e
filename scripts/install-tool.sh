#!/usr/bin/env bash
# `cargo install` for the CI's helper tools (cargo-deny, cargo-machete, cargo-fuzz) with a
# quick profile: their own release profiles ask for fat LTO and one codegen unit (cargo-deny:
# minutes of linking on 2 cores), which buys nothing for tools that run for seconds.
#   scripts/install-tool.sh <cargo install arguments>
set -euo pipefail
CARGO_PROFILE_RELEASE_LTO=false \
CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
  exec cargo install "$@"
