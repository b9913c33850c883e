#!/usr/bin/env bash
# The rpaas demo: installs what it needs, builds, starts a stand-in Automate origin on
# 127.0.0.1:8080 (and over unhardened TLS on 127.0.0.1:8445, for the audit) and an rpaas node in
# front of it (examples/demo.toml), shows a few requests and an audit of the origin direct vs
# through rpaas, then keeps running until Ctrl-C. DEMO_NO_WAIT=1 exits after the tour.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
scripts/deps.sh
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"

if ! command -v npm >/dev/null 2>&1; then
  echo "installing npm (for the GeoIP database)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq npm >/dev/null
fi
scripts/fetch-geoip.sh

echo "== building (release)"
cargo build --release -q -p rpaas -p test-support
BIN="$ROOT/target/release"

HOST=052d3c3287c38201.example.net
DEMO="$ROOT/.demo"
mkdir -p "$DEMO"
if [ ! -f "$DEMO/$HOST.pem" ]; then
  echo "== making a demo CA and a certificate for $HOST"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=rpaas demo CA" -keyout "$DEMO/ca.key" -out "$DEMO/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=$HOST" -keyout "$DEMO/$HOST.key" -out "$DEMO/$HOST.csr" 2>/dev/null
  printf "subjectAltName=DNS:%s\n" "$HOST" > "$DEMO/ext.cnf"
  openssl x509 -req -in "$DEMO/$HOST.csr" -CA "$DEMO/ca.pem" -CAkey "$DEMO/ca.key" \
    -CAcreateserial -days 30 -extfile "$DEMO/ext.cnf" -out "$DEMO/$HOST.pem" 2>/dev/null
fi

cleanup() { kill "${NODE_PID:-}" "${ORIGIN_PID:-}" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

"$BIN/rpaas-standin" 127.0.0.1:8080 --tls 127.0.0.1:8445 "$DEMO/$HOST.pem" "$DEMO/$HOST.key" \
  > "$DEMO/origin.log" 2>&1 &
ORIGIN_PID=$!
"$BIN/rpaas" check --config examples/demo.toml
"$BIN/rpaas" serve --config examples/demo.toml > "$DEMO/rpaas.log" 2>&1 &
NODE_PID=$!
for _ in $(seq 1 50); do
  grep -q '"event":"started"' "$DEMO/rpaas.log" 2>/dev/null && break
  sleep 0.1
done
grep -q '"event":"started"' "$DEMO/rpaas.log" || { cat "$DEMO/rpaas.log"; exit 1; }

C="curl -sS --cacert $DEMO/ca.pem --resolve $HOST:8443:127.0.0.1"
run() { echo; echo "\$ $*"; eval "$@" || true; }

echo
echo "== the origin leaks what IIS leaks (direct, no proxy):"
run "curl -sS -D - -o /dev/null http://127.0.0.1:8080/aspnet_client"
echo "== through rpaas:"
run "$C -D - https://$HOST:8443/LabTech/Agent.aspx; echo"
run "$C -D - -o /dev/null https://$HOST:8443/aspnet_client"
run "$C -D - -X OPTIONS https://$HOST:8443/automate/"
run "$C --http2 -sI https://$HOST:8443/cwa/api/v1/computers"
run "$C -s -o /dev/null -w '%{http_code}\\n' https://$HOST:8443/WCC2/"
run "curl -sS http://127.0.0.1:9901/healthz; echo"
echo
echo "== the access policy, asked without sending traffic (8.8.8.8 is in the US, 1.1.1.1 in AU):"
run "$BIN/rpaas geoip --config examples/demo.toml 8.8.8.8 1.1.1.1 127.0.0.1"
run "$BIN/rpaas explain --config examples/demo.toml --host $HOST --ip 8.8.8.8 --method POST /LabTech/Agent.aspx"
run "$BIN/rpaas explain --config examples/demo.toml --host $HOST --ip 8.8.8.8 /automate/"
run "$BIN/rpaas explain --config examples/demo.toml --host $HOST --ip 1.1.1.1 /LabTech/Agent.aspx"
run "$BIN/rpaas explain --config examples/demo.toml --host $HOST --ip 8.8.8.8 '/LabTech/Updates/..%2F..%2Fautomate/'"
echo
echo "== a TLS 1.0 client: refused on 8443, accepted on the legacy listener 8444"
run "echo | openssl s_client -tls1 -cipher DEFAULT@SECLEVEL=0 -servername $HOST -connect 127.0.0.1:8443 2>&1 | grep -E 'alert|Protocol  :'"
run "echo | openssl s_client -tls1 -cipher DEFAULT@SECLEVEL=0 -servername $HOST -connect 127.0.0.1:8444 2>&1 | grep -E 'Protocol  :|Cipher is'"
echo
echo "== rpaas audit: the origin direct (its TLS on 8445 is set up like an unhardened Windows server)"
echo "   vs through rpaas (8443). The demo trusts 127.0.0.0/8, so the admin sites stay open to this"
echo "   audit: run it from an address that is not trusted to see them refused (docs/audit.md)."
run "$BIN/rpaas audit --compare https://$HOST/ https://$HOST/ --connect 127.0.0.1:8445 --connect 127.0.0.1:8443 --udp-port 0 --expected-ports none"
echo
echo "== last log lines ($DEMO/rpaas.log):"
tail -n 4 "$DEMO/rpaas.log"

cat <<TXT

rpaas is running (node pid $NODE_PID, origin pid $ORIGIN_PID). Try:
  $C -i https://$HOST:8443/automate
  $C -i https://$HOST:8443/LabTech/Agent.aspx
  $C -i -X TRACE https://$HOST:8443/
  $BIN/rpaas audit https://$HOST/ --connect 127.0.0.1:8443 --udp-port 0 --expected-ports 8443
  curl -s http://127.0.0.1:9901/metrics | grep rpaas_
  kill -HUP $NODE_PID      # reload examples/demo.toml
  tail -f $DEMO/rpaas.log
TXT
if [ "${DEMO_NO_WAIT:-0}" = "1" ]; then exit 0; fi
echo "Ctrl-C stops the demo."
wait "$NODE_PID"
