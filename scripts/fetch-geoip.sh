#!/usr/bin/env bash
# Fetches the default country database into data/country.mmdb from the npm registry:
# @ip-location-db/geo-whois-asn-country-mmdb, pinned. See NOTICE for its licence and
# attribution. Operators who want fresher data point [node] geoip_db at a MaxMind
# GeoLite2-Country file instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PKG="@ip-location-db/geo-whois-asn-country-mmdb"
VERSION="2.3.2026061719"
OUT="data/country.mmdb"
if [ -s "$OUT" ] && [ "$(cat data/.country.version 2>/dev/null)" = "$VERSION" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "error: npm is needed to fetch the GeoIP database (apt-get install npm)" >&2; exit 1; }
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
( cd "$TMP" && npm pack --silent "$PKG@$VERSION" >/dev/null 2>&1 )
tar -xzf "$TMP"/*.tgz -C "$TMP"
MMDB="$TMP/package/geo-whois-asn-country.mmdb"
[ -s "$MMDB" ] || { echo "error: no .mmdb in $PKG@$VERSION" >&2; exit 1; }
mkdir -p data
cp "$MMDB" "$OUT"
echo "$VERSION" > data/.country.version
echo "GeoIP: $PKG@$VERSION -> $OUT ($(du -h "$OUT" | cut -f1))"
