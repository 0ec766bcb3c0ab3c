#!/usr/bin/env bash
# The two store engines side by side on one host: for each of ROUNDS rounds
# (default 2) and each flush mode, an embedded mqd on store.engine=commitlog
# then badger, mqbench's native producer (64 senders of 1 KiB, 2 connections,
# a 4-queue topic) for 3 s of warm-up and DUR (default 15s) measured. Prints
# msg/s, the broker's own CPU per message (from /proc) and the p99. Data goes
# to a temporary directory that is removed; everything started is stopped.
#
#   bash configs/bench-engines.sh            (go tool ... task bench:engines)
set -euo pipefail
rounds=${ROUNDS:-2}
dur=${DUR:-15s}
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
tick=$(getconf CLK_TCK)
secs=${dur%s}
run() { # engine flush
  local dir ns
  dir=$(mktemp -d "$base/run.XXXX")
  ns=127.0.0.1:29876
  "$base/mqd" --set namesrv.listenPort=29876 --set broker.listenPort=29911 --set broker.brokerIP1=127.0.0.1 \
    --set store.storePathRootDir="$dir/store" --set namesrv.kvConfigPath="$dir/kv.json" \
    --set store.engine="$1" --set store.flushDiskType="$2" --set admin.listen= --set broker.metricsAddr= \
    --log-format json 2>"$dir/log" &
  pid=$!
  for _ in $(seq 1 100); do grep -q '"ready"' "$dir/log" 2>/dev/null && break; sleep 0.1; done
  "$base/mqbench" producer --client native -p 2 -n $ns -t EngineBench -w 64 -s 1024 -d 3s -o json >/dev/null 2>&1
  local t0 t1 out
  t0=$(awk '{print $14+$15}' /proc/$pid/stat)
  out=$("$base/mqbench" producer --client native -p 2 -n $ns -t EngineBench -w 64 -s 1024 -d "$dur" -o json 2>/dev/null)
  t1=$(awk '{print $14+$15}' /proc/$pid/stat)
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
eng, flush, t0, t1, tick, secs = sys.argv[1:]
cpu = (int(t1) - int(t0)) / int(tick)
sent, p99 = d["sent"], d["latency"]["p99Ms"]
print(f"{eng:10s} {flush:12s} {sent/float(secs):9.0f} msg/s  broker CPU {cpu*1e6/max(sent,1):6.1f} us/msg  p99 {p99} ms")
' "$1" "$2" "$t0" "$t1" "$tick" "$secs"
  rm -rf "$dir"
}
for flush in ASYNC_FLUSH SYNC_FLUSH; do
  for _ in $(seq 1 "$rounds"); do
    run commitlog $flush
    run badger $flush
  done
done
