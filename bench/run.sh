#!/usr/bin/env bash
# rpaas against nginx, nginx + ModSecurity/CRS and no proxy, in one run, on loopback.
#   bench/run.sh            full run (~30 min): 10 s runs, 3 repeats, paced latency, 20k idle connections
#   bench/run.sh --quick    smoke run (~3-5 min), no thresholds asserted
# Results: bench/results/<timestamp>.json and .md, and bench/results/latest.md
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
PKGS=(nginx libnginx-mod-http-modsecurity modsecurity-crs libnginx-mod-http-geoip2 wrk nghttp2-client util-linux)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ -s data/country.mmdb ] || scripts/fetch-geoip.sh || true
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
# The command scripts/test.sh builds with (RPAAS_TEST_PROFILE=release in CI): nothing to
# build again after it.
cargo build --release -q --workspace --bins
exec python3 bench/harness.py "$@"
