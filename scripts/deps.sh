#!/usr/bin/env bash
# Installs what building and testing rpaas needs on a fresh Debian 12 machine.
# Idempotent: packages already present are not reinstalled.
set -euo pipefail

# pebble: a real ACME CA (and pebble-challtestsrv as its DNS) for the rpaas-acme tests;
# postgresql: a throwaway cluster per test run for the fleet tests; chromium, chromium-driver
# and python3-selenium: the dashboard tests drive a real headless browser.
PACKAGES=(build-essential pkg-config libssl-dev cmake perl curl openssl ca-certificates python3
  python3-venv pebble postgresql chromium chromium-driver python3-selenium modsecurity-crs)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found; install Rust (rustup) first" >&2
  exit 1
fi

# sslyze checks the TLS profiles against Mozilla's configurations (crates/rpaas/tests/
# tls_mozilla.rs). It lives in its own virtualenv; the tests find it at this path (or at
# $RPAAS_SSLYZE).
SSLYZE_VERSION=6.3.1
SSLYZE_VENV="${RPAAS_TOOLS:-$HOME/.cache/rpaas}/sslyze"
if ! "$SSLYZE_VENV/bin/sslyze" --help 2>/dev/null | grep -q "SSLyze version $SSLYZE_VERSION"; then
  echo "installing sslyze $SSLYZE_VERSION into $SSLYZE_VENV"
  /usr/bin/python3 -m venv "$SSLYZE_VENV"
  "$SSLYZE_VENV/bin/pip" install -q "sslyze==$SSLYZE_VERSION"
fi

# openapi-spec-validator checks the control API's OpenAPI document (crates/rpaas/tests/
# openapi.rs). Its own virtualenv beside sslyze's; the test finds it at this path (or at
# $RPAAS_OPENAPI_VALIDATOR).
OPENAPI_VALIDATOR_VERSION=0.7.1
OPENAPI_VALIDATOR_VENV="${RPAAS_TOOLS:-$HOME/.cache/rpaas}/openapi-spec-validator"
if [ "$("$OPENAPI_VALIDATOR_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("openapi-spec-validator"))' 2>/dev/null)" != "$OPENAPI_VALIDATOR_VERSION" ] \
  || [ ! -x "$OPENAPI_VALIDATOR_VENV/bin/openapi-spec-validator" ]; then
  echo "installing openapi-spec-validator $OPENAPI_VALIDATOR_VERSION into $OPENAPI_VALIDATOR_VENV"
  /usr/bin/python3 -m venv "$OPENAPI_VALIDATOR_VENV"
  "$OPENAPI_VALIDATOR_VENV/bin/pip" install -q "openapi-spec-validator==$OPENAPI_VALIDATOR_VERSION"
fi
