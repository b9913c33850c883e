#!/usr/bin/env bash
# The robustness suite: TLS scan (testssl.sh), request smuggling probes, slow clients
# (slowhttptest), upstream faults, reloads under load. Loopback only; every step is bounded.
#   robustness/run.sh           everything (~6 min)
#   robustness/run.sh --quick   no testssl.sh, shorter slow-client and load phases (~1 min)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
PKGS=(testssl.sh slowhttptest wrk)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
# The command scripts/test.sh builds with (RPAAS_TEST_PROFILE=release in CI): nothing to
# build again after it.
cargo build --release -q --workspace --bins
exec python3 robustness/suite.py "$@"
