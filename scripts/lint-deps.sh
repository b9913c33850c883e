#!/usr/bin/env bash
# Dependency hygiene, installing the tools (pinned) if missing:
#   cargo-deny    licences, bans and sources against deny.toml; advisories against the
#                 RustSec database when it can be fetched (it lives on GitHub: where the
#                 network does not reach it the advisories check is skipped, and said so)
#   cargo-machete dependencies that no code of their crate uses (ignores, with a reason, in
#                 the crate's [package.metadata.cargo-machete])
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
CARGO_DENY_VERSION=0.20.2
CARGO_MACHETE_VERSION=0.9.2

if ! cargo deny --version 2>/dev/null | grep -q "$CARGO_DENY_VERSION"; then
  echo "installing cargo-deny $CARGO_DENY_VERSION"
  scripts/install-tool.sh cargo-deny --locked --version "$CARGO_DENY_VERSION"
fi
if ! cargo machete --version 2>/dev/null | grep -q "$CARGO_MACHETE_VERSION"; then
  echo "installing cargo-machete $CARGO_MACHETE_VERSION"
  scripts/install-tool.sh cargo-machete --locked --version "$CARGO_MACHETE_VERSION"
fi

# Errors in full; warnings (crates in two versions, see deny.toml) only counted: list them with
# `cargo deny check bans`.
cargo deny --log-level error check --show-stats licenses bans sources

if cargo deny --log-level error fetch db >/dev/null 2>&1; then
  cargo deny --log-level warn check --show-stats advisories
else
  echo "cargo deny: advisories skipped: the RustSec database (on GitHub) cannot be fetched"
fi

cargo machete
