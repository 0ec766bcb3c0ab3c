#!/usr/bin/env bash
# Replication throughput on one host: a name server, broker-a and its slave
# broker-a-s from configs/2m-2s-<mode>/, then mqbench's native producer with 64
# senders of 1 KiB for DUR (default 20s). Prints mqbench's summary and the
# master's replication lag (bytes not yet confirmed by the slave) sampled every
# 0.5 s from its admin endpoint. Everything it starts is stopped at exit; data
# goes to a temporary directory that is removed.
#
#   bash configs/bench-replication.sh async|sync|controller [ASYNC_FLUSH|SYNC_FLUSH]
#
# controller: the same two brokers in controller mode (docs/controller.md)
# with allAckInSyncStateSet, under a controller embedded in the name server;
# the first becomes master and the benchmark starts once the second is in
# the SyncStateSet.
#
# CLIENT=go measures with the official Go client instead of mqbench's native
# one (more client CPU per message, so the brokers get less of the cores).
set -euo pipefail
mode=${1:?usage: bench-replication.sh async|sync|controller [flushDiskType]}
layout=$mode
ctrl=()
if [ "$mode" = controller ]; then
  layout=sync
  ctrl=(--set enableControllerMode=true --set controllerAddr=127.0.0.1:29878 --set allAckInSyncStateSet=true)
fi
flush=${2:-ASYNC_FLUSH}
root=$(cd "$(dirname "$0")/.." && pwd)
base=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$base"
}
trap cleanup EXIT
(cd "$root" && go build -o "$base/mqd" ./cmd/mqd && go build -o "$base/mqbench" ./cmd/mqbench)
ns=127.0.0.1:29876
wait_for() { # file pattern
  for _ in $(seq 1 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for '$2' in $1"; tail -5 "$1"; exit 1
}
nsctrl=()
if [ "$mode" = controller ]; then
  nsctrl=(--set enableControllerInNamesrv=true --set controllerDLegerPeers=n0-127.0.0.1:29878
    --set controllerDLegerSelfId=n0 --set controllerStorePath="$base/controller")
fi
"$base/mqd" namesrv --set listenPort=29876 --set admin.listen= "${nsctrl[@]}" >"$base/ns.log" 2>&1 &
pids+=($!)
wait_for "$base/ns.log" '"ready"'
broker() { # name port admin [cpus]
  ${4:+taskset -c $4} "$base/mqd" broker -c "$root/configs/2m-2s-$layout/$1.properties" -n $ns --set listenPort="$2" \
    --set haListenPort=$(($2 + 1)) --set brokerIP1=127.0.0.1 --set flushDiskType="$flush" --set storePathRootDir="$base/$1" \
    --set admin.listen="$3" --set broker.metricsAddr= "${ctrl[@]}" >"$base/$1.log" 2>&1 &
  pids+=($!)
}
# PIN=1: the slave on CPU 1, everything else on CPU 0, as if the slave had a
# machine of its own (on one shared pair of cores a sync master also waits
# for the slave's process to be scheduled).
broker broker-a 30911 127.0.0.1:30913 ${PIN:+0}
[ "$mode" = controller ] && wait_for "$base/broker-a.log" '"to":"master"'
broker broker-a-s 30921 "" ${PIN:+1}
wait_for "$base/broker-a.log" "slave accepted"
[ "$mode" = controller ] && wait_for "$base/broker-a.log" 'syncStateSet":\[1,2\]'

(while sleep 0.5; do curl -s 127.0.0.1:30913/ha | grep -o '"lagBytes": *[0-9]*' | tr -dc '0-9\n'; done >"$base/lag.txt") &
pids+=($!)
${PIN:+taskset -c 0} "$base/mqbench" producer --client "${CLIENT:-native}" -p 2 -n $ns -t BenchReplication -w 64 -s 1024 -d "${DUR:-20s}" 2>&1 | tail -2
sort -n "$base/lag.txt" | awk '{a[NR]=$1} END {if (NR) printf "replication lag, bytes: median %d, max %d (%d samples)\n", a[int((NR+1)/2)], a[NR], NR}'
