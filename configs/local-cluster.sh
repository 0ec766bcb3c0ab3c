#!/usr/bin/env bash
# local-cluster.sh up|down|status [async|sync] - the seed's production layout on
# one host: 3 name servers and broker-a, broker-a-s, broker-b, broker-b-s from
# configs/2m-2s-<mode>/, with per-process port and data-path overrides.
#
#   name servers  127.0.0.1:9876, :9877, :9878
#   broker-a      :10911 (HA :10912, admin :10913)   broker-a-s  :10921
#   broker-b      :10931 (HA :10932, admin :10933)   broker-b-s  :10941
#
# Data and logs go to ./data/cluster/<name>/; pids to ./data/cluster/pids.
# `go tool -modfile=tools/go.mod task cluster:up` (or MODE=sync) runs it; status prints each
# process and the name servers' cluster view.
set -euo pipefail
cmd=${1:-status}
mode=${2:-${MODE:-async}}
root=$(cd "$(dirname "$0")/.." && pwd)
base=${CLUSTER_DIR:-$PWD/data/cluster}
pids=$base/pids
ns="127.0.0.1:9876;127.0.0.1:9877;127.0.0.1:9878"
bin=${MQD:-$base/bin/mqd}

build() {
  mkdir -p "$base/bin"
  (cd "$root" && go build -o "$base/bin/mqd" ./cmd/mqd && go build -o "$base/bin/mqadmin" ./cmd/mqadmin)
}

start() { # name args...
  local name=$1; shift
  mkdir -p "$base/$name"
  cd "$base/$name"
  nohup "$bin" "$@" --log-format json >"$base/$name/mqd.log" 2>&1 &
  echo "$name $!" >>"$pids"
  cd - >/dev/null
}

wait_ready() { # name
  for _ in $(seq 1 100); do
    grep -q '"message":"ready"' "$base/$1/mqd.log" 2>/dev/null && return 0
    if ! kill -0 "$(awk -v n="$1" '$1==n {print $2}' "$pids")" 2>/dev/null; then
      echo "$1 exited:"; tail -5 "$base/$1/mqd.log"; return 1
    fi
    sleep 0.1
  done
  echo "$1 not ready after 10 s"; return 1
}

broker() { # name port metricsPort
  local name=$1 port=$2 metrics=$3
  start "$name" broker -c "$root/configs/2m-2s-$mode/$name.properties" -n "$ns" \
    --set listenPort="$port" --set brokerIP1=127.0.0.1 \
    --set storePathRootDir="$base/$name/store" --set broker.metricsAddr=127.0.0.1:"$metrics"
}

case $cmd in
up)
  if [ -s "$pids" ]; then echo "a cluster is already up ($pids); run down first"; exit 1; fi
  mkdir -p "$base"; : >"$pids"
  [ -n "${MQD:-}" ] || build
  for p in 9876 9877 9878; do
    start "namesrv-$p" namesrv -c "$root/configs/2m-2s-$mode/namesrv.properties" --set listenPort=$p \
      --set kvConfigPath="$base/namesrv-$p/kvConfig.json"
  done
  for p in 9876 9877 9878; do wait_ready "namesrv-$p"; done
  broker broker-a 10911 5557; broker broker-a-s 10921 5558
  broker broker-b 10931 5559; broker broker-b-s 10941 5560
  for b in broker-a broker-a-s broker-b broker-b-s; do wait_ready "$b"; done
  echo "2m-2s-$mode cluster up; name servers $ns"
  "$0" status "$mode"
  ;;
down)
  [ -f "$pids" ] || { echo "no cluster recorded in $pids"; exit 0; }
  # Brokers first, so they unregister from live name servers.
  for pat in broker namesrv; do
    while read -r name pid; do
      case $name in $pat*) kill -TERM "$pid" 2>/dev/null || true ;; esac
    done <"$pids"
    for _ in $(seq 1 100); do
      alive=0
      while read -r name pid; do
        case $name in $pat*) kill -0 "$pid" 2>/dev/null && alive=1 ;; esac
      done <"$pids"
      [ $alive = 0 ] && break; sleep 0.1
    done
  done
  rm -f "$pids"; echo "cluster down (data kept in $base)"
  ;;
status)
  [ -f "$pids" ] || { echo "no cluster recorded in $pids"; exit 1; }
  printf '%-14s %-8s %s\n' PROCESS PID STATE
  while read -r name pid; do
    state=down; kill -0 "$pid" 2>/dev/null && state=up
    printf '%-14s %-8s %s\n' "$name" "$pid" "$state"
  done <"$pids"
  echo
  admin=${MQADMIN:-$base/bin/mqadmin}
  [ -x "$admin" ] && "$admin" clusterList -n "$ns" || true
  ;;
*) echo "usage: $0 up|down|status [async|sync]"; exit 2 ;;
esac
