#!/usr/bin/env bash
# Installs what building and testing rpaas needs on a fresh Debian 12 machine.
# Idempotent: packages already present are not reinstalled.
set -euo pipefail

PACKAGES=(build-essential pkg-config libssl-dev cmake perl curl openssl ca-certificates python3)

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
