#!/usr/bin/env bash
# What ACL and TLS cost on sync sends: for each of ROUNDS rounds (default 2),
# an embedded mqd plain, with ACL (aclEnable on broker and name server, a
# signed client), with TLS enforcing, and with both; mqbench's producer
# (CLIENT=native by default, or go for the official Go client; 64 senders of
# 1 KiB) for 3 s of warm-up and DUR (default 15s) measured. Prints msg/s, the
# broker's own CPU per message (from /proc), the p99, and each mode's ratio
# to plain. Data, keys and certificates go to a temporary directory that is
# removed; everything started is stopped.
#
#   bash configs/bench-security.sh            (go tool ... task bench:security)
set -euo pipefail
rounds=${ROUNDS:-2}
dur=${DUR:-15s}
client=${CLIENT:-native}
root=$(cd "$(dirname "$0")/.." && pwd)
base=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$base"
}
trap cleanup EXIT
(cd "$root" && go build -o "$base/mqd" ./cmd/mqd && go build -o "$base/mqbench" ./cmd/mqbench)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -keyout "$base/key.pem" -out "$base/cert.pem" 2>/dev/null
cat >"$base/plain_acl.yml" <<'YML'
accounts:
  - accessKey: benchAdmin
    secretKey: benchSecret1
    admin: true
  - accessKey: benchUser
    secretKey: benchSecret2
    defaultTopicPerm: PUB|SUB
    defaultGroupPerm: SUB
YML
tick=$(getconf CLK_TCK)
secs=${dur%s}
run() { # mode
  local dir ns sets=() bench=()
  dir=$(mktemp -d "$base/run.XXXX")
  ns=127.0.0.1:29876
  case "$1" in
  acl | acl+tls)
    sets+=(--set broker.aclEnable=true --set namesrv.aclEnable=true --set acl.file="$base/plain_acl.yml"
      --set acl.accessKey=benchAdmin --set acl.secretKey=benchSecret1)
    bench+=(--accessKey benchUser --secretKey benchSecret2) ;;
  esac
  case "$1" in
  tls | acl+tls)
    sets+=(--set tls.server.mode=enforcing --set tls.server.certPath="$base/cert.pem" --set tls.server.keyPath="$base/key.pem"
      --set tls.client.enable=true)
    bench+=(--tls) ;;
  esac
  "$base/mqd" --set namesrv.listenPort=29876 --set broker.listenPort=29911 --set broker.brokerIP1=127.0.0.1 \
    --set store.storePathRootDir="$dir/store" --set namesrv.kvConfigPath="$dir/kv.json" \
    --set admin.listen= --set broker.metricsAddr= "${sets[@]}" --log-format json 2>"$dir/log" &
  pid=$!
  for _ in $(seq 1 100); do grep -q '"ready"' "$dir/log" 2>/dev/null && break; sleep 0.1; done
  "$base/mqbench" producer --client "$client" -p 2 -n $ns -t SecBench -w 64 -s 1024 -d 3s -o json "${bench[@]}" >/dev/null 2>&1
  local t0 t1 out
  t0=$(awk '{print $14+$15}' /proc/$pid/stat)
  out=$("$base/mqbench" producer --client "$client" -p 2 -n $ns -t SecBench -w 64 -s 1024 -d "$dur" -o json "${bench[@]}" 2>/dev/null)
  t1=$(awk '{print $14+$15}' /proc/$pid/stat)
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
mode, t0, t1, tick, secs = sys.argv[1:]
cpu = (int(t1) - int(t0)) / int(tick)
sent, p99, failed = d["sent"], d["latency"]["p99Ms"], d["sendFailed"] + d["responseFailed"]
print("%-8s %9.0f msg/s  broker CPU %6.1f us/msg  p99 %s ms  failed %s" % (mode, sent / float(secs), cpu * 1e6 / max(sent, 1), p99, failed))
' "$1" "$t0" "$t1" "$tick" "$secs"
  rm -rf "$dir"
}
echo "client: $client, 64 senders x 1 KiB, $dur per run"
for r in $(seq 1 "$rounds"); do
  for mode in plain acl tls acl+tls; do
    run "$mode"
  done
done
