#!/usr/bin/env bash
# The rpaas demo: installs what it needs, builds, starts a stand-in Automate origin on
# 127.0.0.1:8080 (and over unhardened TLS on 127.0.0.1:8445, for the audit) and an rpaas node in
# front of it (examples/demo.toml), shows a few requests and an audit of the origin direct vs
# through rpaas, provisions a second instance through the control API (docs/api.md) and changes
# its ACL, then keeps running until Ctrl-C. DEMO_NO_WAIT=1 exits after the tour. The control API
# part is also a smoke check: the demo fails (exit 1) if one of its requests does not answer as
# expected.
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
rm -rf "$DEMO/data"   # the control store: every run starts with no partners, instances or keys
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
echo "== the control API (docs/api.md) on 127.0.0.1:9443. An operator key, made with the CLI and"
echo "   shown only this once:"
API=http://127.0.0.1:9443
KEY=$("$BIN/rpaas" key create --config examples/demo.toml --name demo-operator --scope operator)
case "$KEY" in
  rpk_*) echo "KEY=$KEY" ;;
  *) echo "error: rpaas key create printed no key: $KEY" >&2; exit 1 ;;
esac
# The lines below are shown with $KEY as written: they work pasted after the KEY=... line.
A='curl -sS -H "Authorization: Bearer $KEY"'
OUT="$DEMO/api.out"
# api WANT CMD: shows CMD, runs it and prints the answer. The demo stops unless the HTTP status
# is WANT: this part is also a smoke check of the control API.
api() {
  local want=$1 cmd=$2 code
  echo; echo "\$ $cmd"
  rm -f "$OUT"
  code=$(eval "$cmd -o \"\$OUT\" -w '%{http_code}'") || code="nothing (curl exit $?)"
  if [ -f "$OUT" ]; then cat "$OUT"; echo; fi
  if [ "$code" != "$want" ]; then
    echo "error: the control API answered $code, not $want, to: $cmd" >&2
    exit 1
  fi
}
# field NAME: a top-level field of the last JSON answer.
field() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$OUT" "$1"; }
# through WANT: GET /automate/ on the provisioned instance (its certificate is self-signed, so
# -k) until it answers WANT, 5 s at most. The demo stops if it never does.
through() {
  local want=$1 code=
  echo; echo "\$ curl -sk --resolve $NEW:8443:127.0.0.1 -o /dev/null -w '%{http_code}\\n' https://$NEW:8443/automate/"
  for _ in $(seq 1 50); do
    code=$(curl -sk --resolve "$NEW:8443:127.0.0.1" -o /dev/null -w '%{http_code}' \
      "https://$NEW:8443/automate/") || true
    [ "$code" = "$want" ] && break
    sleep 0.1
  done
  echo "$code"
  [ "$code" = "$want" ] || { echo "error: https://$NEW:8443/automate/ answered $code, not $want" >&2; exit 1; }
}
echo
echo "== a partner, and an instance for it in front of the same origin:"
api 201 "$A --json '{\"id\": \"acme\", \"name\": \"Acme IT\"}' $API/v1/partners"
api 201 "$A --json '{\"partner\": \"acme\", \"upstream\": \"http://127.0.0.1:8080\"}' $API/v1/instances"
ID=$(field id)
NEW="$ID.rpaas.test"
echo
echo "== served at once as $NEW. It trusts no network yet, so 127.0.0.1 is a client"
echo "   without a country, refused (geoip:unknown):"
through 403
api 200 "$A -i $API/v1/instances/$ID/acl"
ETAG=$(sed -n 's/^etag: *//Ip' "$OUT" | tr -d '\r')
[ -n "$ETAG" ] || { echo "error: GET /v1/instances/$ID/acl sent no ETag" >&2; exit 1; }
echo
echo "== the ACL, changed to trust 127.0.0.0/8. If-Match carries the ETag just read; the same one"
echo "   again is stale: 412, and nothing changes."
api 200 "$A -X PUT -H 'If-Match: $ETAG' --json '{\"deployment\": \"mixed\", \"trusted\": [{\"cidr\": \"127.0.0.0/8\", \"note\": \"the demo\"}]}' $API/v1/instances/$ID/acl"
REV=$(field revision)
through 200
api 412 "$A -X PUT -H 'If-Match: $ETAG' --json '{\"deployment\": \"all-traffic\"}' $API/v1/instances/$ID/acl"
echo
echo "== what the node saw: the refusal above (nodes write them to the store every second), and"
echo "   the last hour's traffic:"
for _ in $(seq 1 30); do
  eval "$A -o \"\$OUT\" $API/v1/instances/$ID/decisions" || true
  grep -q '"reason"' "$OUT" 2>/dev/null && break
  sleep 0.2
done
api 200 "$A $API/v1/instances/$ID/decisions"
grep -q '"reason"' "$OUT" || { echo "error: /v1/instances/$ID/decisions lists no refusal" >&2; exit 1; }
api 200 "$A $API/v1/instances/$ID/status"
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
The control API (docs/api.md), as the operator:
  KEY=$KEY
  $A $API/v1/instances
  $A -i $API/v1/instances/$ID/acl
  $A -X PUT -H 'If-Match: "$REV"' --json '{"deployment": "agent-only", "trusted": ["msp_office"]}' $API/v1/instances/$ID/acl
  $A --json '{"ip": "8.8.8.8", "path": "/automate/"}' $API/v1/instances/$ID/explain
  $A "$API/v1/instances/$ID/decisions?limit=5"
  $A "$API/v1/instances/$ID/audit?limit=5"
  curl -s $API/v1/openapi.json
TXT
if [ "${DEMO_NO_WAIT:-0}" = "1" ]; then exit 0; fi
echo "Ctrl-C stops the demo."
wait "$NODE_PID"
