#!/usr/bin/env bash
# bench/compare.sh - mqd, RocketMQ 4.9.8 and NATS JetStream side by side on this
# host, one workload after the other, each broker on a fresh data directory
# (issue #15; task bench:compare). For every run it samples the broker
# process's own CPU time (utime + stime from /proc) over the measured window,
# and its peak RSS and anonymous RSS, then prints one markdown table and saves
# it under bench/results/ with the CPU model and date.
#
# Brokers: mqd (built from this tree, embedded name server + broker);
# RocketMQ 4.9.8 from ../shared/refbroker when its build exists
# (BUILD_DIR, default /tmp/refbroker-build; skipped with a note otherwise);
# nats-server v2.15.2 and natscli v0.5.0, installed with go install into
# TOOLS (default bench/.tools).
#
# Workloads (the rest of #15's list is not scripted yet; see the results file):
#   sync1k   sync send, 1 KiB, 64 senders; no fsync per message
#            (mqd and RocketMQ ASYNC_FLUSH, JetStream default)
#   durable  the same with an fsync before every answer (SYNC_FLUSH,
#            JetStream sync_interval: always)
#   batch128 128 B messages batched or asynchronous (SEND_BATCH_MESSAGE of
#            32, nats bench js pub async)
#   lat10k   send latency at a fixed 10,000 msg/s of 1 KiB (mqbench --rate;
#            nats bench reports no percentiles, so JetStream is left out)
#   consume  consume 1,000,000 stored 128 B messages (the official Go push
#            consumer and mqbench's native pull loops for mqd and RocketMQ,
#            nats bench js consume)
#   topics   10 topics against 10,000 topics (4 queues each, auto-created by
#            4 sends per topic before the measured run, whose time is noted),
#            sync 1 KiB with mqbench native --topics; the
#            anonymous RSS difference over 40,000 queues is the memory cost
#            of a queue
#   repl     ASYNC_MASTER and SYNC_MASTER with one slave on this host, sync
#            1 KiB with the Go client and mqbench native; CPU is master + slave
#   idle     RSS idle and start-to-ready
# Clients: mqbench's native client and the official Go client (mqbench
# --client go) for mqd and RocketMQ, RocketMQ's Java benchmark for both when
# RocketMQ is built, nats bench for NATS.
#
# env: RESULT (the table's file, default bench/results/DATE-compare.md),
# DUR (seconds measured per run, default 15), WARM (default 3; RocketMQ
# gets RMQ_WARM, default 20 s, of load after its start for the JIT),
# ONLY (space-separated workloads), SYSTEMS (default "mqd rocketmq nats").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dur=${DUR:-15}
warm=${WARM:-3}
only=${ONLY:-"sync1k durable batch128 lat10k consume topics repl idle"}
systems=${SYSTEMS:-"mqd rocketmq nats"}
tools=${TOOLS:-$root/bench/.tools}
refsh=${REFBROKER:-$root/../shared/refbroker}
export BUILD_DIR=${BUILD_DIR:-/tmp/refbroker-build}
work=$(mktemp -d)
rows=$work/rows.tsv
: >"$rows"
notes=()
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -d "$work/rmq" ] && bash "$refsh/stop.sh" -d "$work/rmq" >/dev/null 2>&1 || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
tick=$(getconf CLK_TCK)
NS=127.0.0.1:29876 # mqd's name server
RNS=127.0.0.1:19876 # RocketMQ's
NURL=nats://127.0.0.1:24222

echo "building mqd, mqbench; installing nats-server v2.15.2 and natscli v0.5.0 into $tools" >&2
mkdir -p "$tools"
(cd "$root" && go build -o "$work/mqd" ./cmd/mqd && go build -o "$work/mqbench" ./cmd/mqbench && go build -o "$work/mqadmin" ./cmd/mqadmin)
[ -x "$tools/nats-server" ] || GOBIN=$tools go install github.com/nats-io/nats-server/v2@v2.15.2
[ -x "$tools/nats" ] || GOBIN=$tools go install github.com/nats-io/natscli/nats@v0.5.0
have_rmq=0
if [ -d "$BUILD_DIR/home/lib" ] && [ -x "$refsh/start.sh" ]; then
  have_rmq=1
else
  notes+=("RocketMQ 4.9.8 skipped: no build in $BUILD_DIR (see ../shared/refbroker/README.md)")
fi

# cpu_ticks PID...: their summed user + system time in clock ticks.
cpu_ticks() {
  local p t=0
  for p in "$@"; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done
  echo $t
}
spid="" # a slave broker's pid, counted with the broker's CPU when set
# rss_watch PID FILE: peak VmRSS and RssAnon (kB) of PID, sampled every 0.2 s into FILE.
rss_watch() {
  local pid=$1 file=$2 r a mr=0 ma=0
  while kill -0 "$pid" 2>/dev/null; do
    r=$(awk '/^VmRSS/{print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    a=$(awk '/^RssAnon/{print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${r:-0}" -gt "$mr" ] && mr=$r
    [ "${a:-0}" -gt "$ma" ] && ma=$a
    echo "$mr $ma" >"$file"
    sleep 0.2
  done
}
# row WORKLOAD SYSTEM CLIENT MSGS SECONDS CPU_TICKS RSSFILE P99
row() {
  local rss anon
  read -r rss anon <"$7" || { rss=0; anon=0; }
  python3 - "$@" "$rss" "$anon" "$tick" >>"$rows" <<'PY'
import sys
w, s, c, msgs, secs, ticks, _, p99, rss, anon, tick = sys.argv[1:]
msgs, secs, ticks = float(msgs), float(secs), float(ticks)
cpu = ticks / float(tick) * 1e6 / msgs if msgs else 0
print("\t".join([w, s, c, "%.0f" % (msgs / secs), "%.1f" % cpu, "%.0f" % (int(rss) / 1024), "%.0f" % (int(anon) / 1024), p99]))
PY
}

# --- brokers -------------------------------------------------------------
start_mqd() { # FLUSH [ROLE]
  local dir=$work/mqd-$RANDOM t0
  mkdir -p "$dir"
  t0=$(date +%s%N)
  "$work/mqd" --set namesrv.listenPort=29876 --set broker.listenPort=29911 --set broker.brokerIP1=127.0.0.1 \
    --set store.storePathRootDir="$dir/store" --set namesrv.kvConfigPath="$dir/kv.json" \
    --set store.flushDiskType="$1" --set store.brokerRole="${2:-ASYNC_MASTER}" --set admin.listen= --set broker.metricsAddr= \
    --log-format json 2>"$dir/log" &
  bpid=$!
  pids+=("$bpid")
  for _ in $(seq 1 2000); do grep -q '"ready"' "$dir/log" 2>/dev/null && break; sleep 0.005; done
  ready_ms=$((($(date +%s%N) - t0) / 1000000))
  ns=$NS
}
# stop_mqd also removes its store: commit logs and queue files are
# preallocated, and a full run would otherwise fill the disk.
stop_mqd() { kill "$bpid" 2>/dev/null || true; wait "$bpid" 2>/dev/null || true; rm -rf "$work"/mqd-*; }

start_rmq() { # FLUSH [cold|ROLE]
  local t0 role=ASYNC_MASTER
  case "${2:-}" in *MASTER) role=$2 ;; esac
  t0=$(date +%s%N)
  bash "$refsh/start.sh" -n 19876 -b 20911 -f "$1" -r $role -d "$work/rmq" >"$work/rmq-start.log" 2>&1
  ready_ms=$((($(date +%s%N) - t0) / 1000000))
  bpid=$(cat "$work/rmq/broker-20911/broker.pid")
  ns=$RNS
  # The JVM runs its first minutes interpreted or half-compiled: measure a
  # warm broker, as an operator's runs (not for the idle figures).
  [ "${2:-}" = cold ] && return
  "$work/mqbench" producer --client native -p 2 -n "$ns" -t JitWarm -w 64 -s 1024 -d "${RMQ_WARM:-20}s" -o json >/dev/null 2>&1 || true
}
stop_rmq() { bash "$refsh/stop.sh" -d "$work/rmq" >/dev/null 2>&1 || true; rm -rf "$work/rmq"; }

start_nats() { # durable?
  local dir=$work/nats-$RANDOM t0
  mkdir -p "$dir"
  if [ "$1" = durable ]; then
    printf 'jetstream { store_dir: "%s", sync_interval: always }\n' "$dir/js" >"$dir/nats.conf"
  else
    printf 'jetstream { store_dir: "%s" }\n' "$dir/js" >"$dir/nats.conf"
  fi
  t0=$(date +%s%N)
  "$tools/nats-server" -p 24222 -c "$dir/nats.conf" >"$dir/log" 2>&1 &
  bpid=$!
  pids+=("$bpid")
  for _ in $(seq 1 2000); do grep -q "Server is ready" "$dir/log" 2>/dev/null && break; sleep 0.005; done
  ready_ms=$((($(date +%s%N) - t0) / 1000000))
  "$tools/nats" -s $NURL stream add benchstream --subjects bench --storage file --replicas 1 --defaults >/dev/null
}
stop_nats() { kill "$bpid" 2>/dev/null || true; wait "$bpid" 2>/dev/null || true; rm -rf "$work"/nats-*; }

# --- clients -------------------------------------------------------------
# mqbench_run WORKLOAD SYSTEM CLIENT EXTRA...: warm-up, then DUR measured.
mqbench_run() {
  local w=$1 s=$2 c=$3 t0 t1 out rssf=$work/rss.$RANDOM
  shift 3
  local topic=${BENCH_TOPIC:-Cmp$RANDOM}
  "$work/mqbench" producer --client "$c" -p 2 -n "$ns" -t "$topic" -w 64 -d "${warm}s" -o json "$@" >/dev/null 2>&1 || true
  rss_watch "$bpid" "$rssf" &
  t0=$(cpu_ticks $bpid $spid)
  out=$("$work/mqbench" producer --client "$c" -p 2 -n "$ns" -t "$topic" -w 64 -d "${dur}s" -o json "$@" 2>"$work/mqbench.err") || true
  t1=$(cpu_ticks $bpid $spid)
  local sent p99 secs
  if ! read -r sent p99 secs < <(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); l=d["latency"]; print(d["sent"], "%s/%s/%s" % (l["p50Ms"], l["p99Ms"], l["p999Ms"]), d["elapsedSec"])' 2>/dev/null); then
    notes+=("$w, $s, $c: mqbench failed: $(tail -c 300 "$work/mqbench.err" | tr '\n' ' ')")
    return 0
  fi
  row "$w" "$s" "$c" "$sent" "$secs" $((t1 - t0)) "$rssf" "$p99"
}
# topics_run SYSTEM N: N topics auto-created by their first sends (4 per
# topic, one to each queue; timed, not measured), then the measured run
# over them.
topics_run() {
  local topic=Cmp$RANDOM t0 t1
  t0=$(date +%s%N)
  "$work/mqbench" producer --client native -p 2 -n "$ns" -t "$topic" -w 64 -s 1024 --topics "$2" --requests $((4 * $2)) -o json >/dev/null 2>&1 || true
  t1=$(date +%s%N)
  notes+=("topics $2, $1: the first $((4 * $2)) sends, which auto-create the $2 topics, took $(((t1 - t0) / 1000000)) ms (not in the table)")
  BENCH_TOPIC=$topic mqbench_run "topics $2" "$1" native -s 1024 --topics "$2"
}
# javabench_run WORKLOAD SYSTEM: RocketMQ's Producer benchmark (prints every 10 s).
javabench_run() {
  local w=$1 s=$2 t0 t1 rssf=$work/rss.$RANDOM logf=$work/java.$RANDOM
  shift 2
  RUN_DIR=$work/javabench timeout $((dur + 40)) bash "$refsh/bench.sh" Producer -n "$ns" -t Cmp$RANDOM -w 64 -s 1024 "$@" >"$logf" 2>&1 &
  local jp=$!
  sleep 22 # JIT warm-up and the first two readings
  rss_watch "$bpid" "$rssf" &
  local lines0
  lines0=$(grep -c "Send TPS" "$logf" || true)
  t0=$(cpu_ticks "$bpid")
  sleep "$dur"
  t1=$(cpu_ticks "$bpid")
  sleep 10.5
  kill "$jp" 2>/dev/null || true
  wait "$jp" 2>/dev/null || true
  local tps
  tps=$(grep "Send TPS" "$logf" | tail -n +$((lines0 + 1)) | sed -E 's/.*Send TPS: ([0-9.]+).*/\1/' |
    awk '{s+=$1; n++} END {if (n) printf "%.0f", s/n; else print 0}')
  row "$w" "$s" java "$(python3 -c "print($tps*$dur)")" "$dur" $((t1 - t0)) "$rssf" "-"
}
# natsbench_run WORKLOAD MODE SIZE MSGS
natsbench_run() {
  local w=$1 mode=$2 size=$3 msgs=$4 t0 t1 rssf=$work/rss.$RANDOM out secs
  "$tools/nats" -s $NURL bench js pub "$mode" bench --clients 64 --size "$size" --msgs 20000 --no-progress >/dev/null 2>&1 || true
  rss_watch "$bpid" "$rssf" &
  t0=$(cpu_ticks "$bpid")
  local began=$(date +%s%N)
  out=$("$tools/nats" -s $NURL bench js pub "$mode" bench --clients 64 --size "$size" --msgs "$msgs" --no-progress 2>&1)
  secs=$(python3 -c "print(($(date +%s%N)-$began)/1e9)")
  t1=$(cpu_ticks "$bpid")
  row "$w" nats "nats bench js pub $mode" "$msgs" "$secs" $((t1 - t0)) "$rssf" "-"
}

# consume_run SYSTEM: store 1,000,000 messages of 128 B (batches of 32),
# then consume them from the first offset with the Go push consumer.
consume_run() {
  local s=$1 topic=Consume$RANDOM t0 t1 out rssf=$work/rss.$RANDOM n secs
  "$work/mqbench" producer --client native -p 2 -n "$ns" -t "$topic" -w 16 -s 128 --batch 32 -d 60s -o json >/dev/null 2>&1 &
  local pp=$!
  while :; do
    sleep 1
    # stop the producer once the topic holds a million messages
    if [ "$(stored_msgs "$topic")" -ge 1000000 ]; then kill -INT "$pp" 2>/dev/null || true; break; fi
    kill -0 "$pp" 2>/dev/null || break
  done
  wait "$pp" 2>/dev/null || true
  local c label
  for c in go native; do
    label="go push consumer"
    [ $c = native ] && label="native pull"
    rssf=$work/rss.$RANDOM
    rss_watch "$bpid" "$rssf" &
    t0=$(cpu_ticks $bpid)
    # each client in a group of its own, from the first message, until it has them all
    out=$("$work/mqbench" consumer --client $c -n "$ns" -t "$topic" -g "bench_$c$RANDOM" --from first --messages 1000000 -d "$((dur * 4))s" -o json 2>/dev/null) || true
    t1=$(cpu_ticks $bpid)
    if ! read -r n secs < <(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["consumed"], d["consumed"] / max(d["tps"], 1))' 2>/dev/null); then
      notes+=("consume, $s, $c: mqbench consumer failed")
      continue
    fi
    row consume "$s" "$label" "$n" "$secs" $((t1 - t0)) "$rssf" "-"
  done
}
# stored_msgs TOPIC: messages in the topic, from the broker's max offsets.
stored_msgs() {
  "$work/mqadmin" topicStatus -n "$ns" -t "$1" 2>/dev/null | awk 'NR > 1 {s += $4 - $3} END {print s + 0}'
}
# nats_consume_run: the same through JetStream.
nats_consume_run() {
  local t0 t1 rssf=$work/rss.$RANDOM began secs
  "$tools/nats" -s $NURL bench js pub async bench --clients 4 --size 128B --msgs 1000000 --no-progress >/dev/null 2>&1
  rss_watch "$bpid" "$rssf" &
  t0=$(cpu_ticks $bpid)
  began=$(date +%s%N)
  "$tools/nats" -s $NURL bench js consume --clients 1 --msgs 1000000 --no-progress >/dev/null 2>&1
  secs=$(python3 -c "print(($(date +%s%N)-$began)/1e9)")
  t1=$(cpu_ticks $bpid)
  row consume nats "nats bench js consume" 1000000 "$secs" $((t1 - t0)) "$rssf" "-"
}
# start_mqd_slave: a second mqd, the slave of the embedded broker-a.
start_mqd_slave() {
  local dir=$work/mqd-slave-$RANDOM
  mkdir -p "$dir"
  "$work/mqd" broker -n "$NS" --set listenPort=29921 --set haListenPort=29922 --set brokerIP1=127.0.0.1 --set brokerId=1 \
    --set brokerRole=SLAVE --set storePathRootDir="$dir/store" --set admin.listen= --set broker.metricsAddr= --log-format json 2>"$dir/log" &
  spid=$!
  pids+=("$spid")
  for _ in $(seq 1 2000); do grep -q '"ready"' "$dir/log" 2>/dev/null && break; sleep 0.005; done
  sleep 2 # the slave's HA connection
}
stop_slave() { [ -n "$spid" ] && { kill "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true; }; spid=""; rm -rf "$work"/mqd-slave-*; }

for w in $only; do
  echo "workload $w" >&2
  for s in $systems; do
    case "$s/$w" in
    mqd/sync1k)
      start_mqd ASYNC_FLUSH
      mqbench_run sync1k mqd native -s 1024
      mqbench_run sync1k mqd go -s 1024
      [ $have_rmq = 1 ] && javabench_run sync1k mqd
      stop_mqd ;;
    mqd/durable)
      start_mqd SYNC_FLUSH
      mqbench_run durable mqd native -s 1024
      [ $have_rmq = 1 ] && javabench_run durable mqd
      stop_mqd ;;
    mqd/batch128)
      start_mqd ASYNC_FLUSH
      mqbench_run batch128 mqd native -s 128 --batch 32
      stop_mqd ;;
    mqd/lat10k)
      start_mqd ASYNC_FLUSH
      mqbench_run lat10k mqd native -s 1024 --rate 10000
      mqbench_run lat10k mqd go -s 1024 --rate 10000
      stop_mqd ;;
    mqd/consume)
      start_mqd ASYNC_FLUSH
      consume_run mqd
      stop_mqd ;;
    mqd/topics)
      for n in 10 10000; do
        start_mqd ASYNC_FLUSH
        topics_run mqd $n
        stop_mqd
      done ;;
    mqd/repl)
      for role in ASYNC_MASTER SYNC_MASTER; do
        start_mqd ASYNC_FLUSH $role
        start_mqd_slave
        mqbench_run "repl $role" mqd go -s 1024
        mqbench_run "repl $role" mqd native -s 1024
        stop_slave
        stop_mqd
      done ;;
    mqd/idle)
      start_mqd ASYNC_FLUSH
      sleep 2
      printf 'idle\tmqd\t-\t-\t-\t%s\t%s\tready %s ms\n' "$(($(awk '/^VmRSS/{print $2}' /proc/$bpid/status) / 1024))" \
        "$(($(awk '/^RssAnon/{print $2}' /proc/$bpid/status) / 1024))" "$ready_ms" >>"$rows"
      stop_mqd ;;
    rocketmq/*)
      [ $have_rmq = 1 ] || continue
      case $w in
      sync1k)
        start_rmq ASYNC_FLUSH
        mqbench_run sync1k rocketmq native -s 1024
        mqbench_run sync1k rocketmq go -s 1024
        javabench_run sync1k rocketmq
        stop_rmq ;;
      durable)
        start_rmq SYNC_FLUSH
        mqbench_run durable rocketmq native -s 1024
        javabench_run durable rocketmq
        stop_rmq ;;
      batch128)
        start_rmq ASYNC_FLUSH
        mqbench_run batch128 rocketmq native -s 128 --batch 32
        stop_rmq ;;
      consume)
        start_rmq ASYNC_FLUSH cold
        consume_run rocketmq
        stop_rmq ;;
      topics)
        for n in 10 10000; do
          start_rmq ASYNC_FLUSH
          topics_run rocketmq $n
          stop_rmq
        done ;;
      repl)
        for role in ASYNC_MASTER SYNC_MASTER; do
          start_rmq ASYNC_FLUSH $role
          bash "$refsh/start.sh" -N $RNS -b 20921 -r SLAVE -d "$work/rmq" >>"$work/rmq-start.log" 2>&1
          spid=$(cat "$work/rmq/broker-20921/broker.pid")
          sleep 2
          mqbench_run "repl $role" rocketmq go -s 1024
          mqbench_run "repl $role" rocketmq native -s 1024
          spid=""
          stop_rmq
        done ;;
      lat10k)
        start_rmq ASYNC_FLUSH
        mqbench_run lat10k rocketmq native -s 1024 --rate 10000
        mqbench_run lat10k rocketmq go -s 1024 --rate 10000
        stop_rmq ;;
      idle)
        start_rmq ASYNC_FLUSH cold
        sleep 2
        printf 'idle\trocketmq\t-\t-\t-\t%s\t%s\tready %s ms\n' "$(($(awk '/^VmRSS/{print $2}' /proc/$bpid/status) / 1024))" \
          "$(($(awk '/^RssAnon/{print $2}' /proc/$bpid/status) / 1024))" "$ready_ms" >>"$rows"
        stop_rmq ;;
      esac ;;
    nats/sync1k)
      start_nats default
      natsbench_run sync1k sync 1KB $((50000 * dur))
      stop_nats ;;
    nats/durable)
      start_nats durable
      natsbench_run durable sync 1KB $((2000 * dur))
      stop_nats ;;
    nats/batch128)
      start_nats default
      natsbench_run batch128 async 128B $((200000 * dur))
      stop_nats ;;
    nats/consume)
      start_nats default
      nats_consume_run
      stop_nats ;;
    nats/idle)
      start_nats default
      sleep 2
      printf 'idle\tnats\t-\t-\t-\t%s\t%s\tready %s ms\n' "$(($(awk '/^VmRSS/{print $2}' /proc/$bpid/status) / 1024))" \
        "$(($(awk '/^RssAnon/{print $2}' /proc/$bpid/status) / 1024))" "$ready_ms" >>"$rows"
      stop_nats ;;
    esac
  done
done

mkdir -p "$root/bench/results"
result=${RESULT:-$root/bench/results/$(date +%F)-compare.md}
cpu_model=$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)
python3 - "$rows" "$cpu_model" "$dur" "${notes[@]}" >"$result" <<'PY'
import sys, datetime
rows_file, cpu, dur, *notes = sys.argv[1:]
rows = [l.rstrip("\n").split("\t") for l in open(rows_file) if l.strip()]
print(f"# bench:compare, {datetime.date.today()}\n")
print(f"{cpu}, {len(open('/proc/cpuinfo').read().split('processor')) - 1} CPUs; clients and brokers share them; {dur} s measured per run.\n")
print("Broker CPU is the broker process's own user + system time over the measured window divided by the messages acknowledged in it; RSS and anonymous RSS are the peaks during the window.\n")
print("| workload | broker | client | msg/s | broker CPU µs/msg | RSS MB | anon MB | send latency p50/p99/p99.9 ms |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(r) + " |")
ratios = []
def find(w, s, c):
    for r in rows:
        if r[0] == w and r[1] == s and r[2].startswith(c):
            return r
for w in ("sync1k", "durable", "batch128"):
    for c, label in (("native", "mqbench's native client"), ("go", "the official Go client"), ("java", "RocketMQ's Java benchmark")):
        m, o = find(w, "mqd", c), find(w, "rocketmq", c)
        if m and o and float(o[3]) > 0 and float(o[4]) > 0:
            ratios.append(f"| {w} | mqd / RocketMQ, both with {label} | {float(m[3]) / float(o[3]):.2f}× | {float(m[4]) / float(o[4]):.2f}× |")
    m, o = find(w, "mqd", "native"), find(w, "nats", "nats")
    if m and o and float(o[3]) > 0 and float(o[4]) > 0:
        ratios.append(f"| {w} | mqd with mqbench native / JetStream with {o[2]} | {float(m[3]) / float(o[3]):.2f}× | {float(m[4]) / float(o[4]):.2f}× |")
n = find("consume", "nats", "nats")
for c, label in (("go", "the Go push consumer"), ("native", "mqbench's native pull loops")):
    m, o = find("consume", "mqd", c), find("consume", "rocketmq", c)
    if m and o and float(o[3]) > 0 and float(o[4]) > 0:
        ratios.append(f"| consume | mqd / RocketMQ, both with {label} | {float(m[3]) / float(o[3]):.2f}× | {float(m[4]) / float(o[4]):.2f}× |")
    if m and n and float(n[3]) > 0 and float(n[4]) > 0:
        ratios.append(f"| consume | mqd with {label} / JetStream with nats bench js consume | {float(m[3]) / float(n[3]):.2f}× | {float(m[4]) / float(n[4]):.2f}× |")
for s_ in ("mqd", "rocketmq"):
    a, y = find("topics 10", s_, "native"), find("topics 10000", s_, "native")
    if a and y and float(a[3]) > 0:
        per_queue = (float(y[6]) - float(a[6])) * 1024 / 40000
        ratios.append(f"| topics | {s_} 10,000 topics / 10 topics, native client (anonymous RSS per extra queue ≈ {per_queue:.1f} KiB) | {float(y[3]) / float(a[3]):.2f}× | {float(y[4]) / float(a[4]):.2f}× |")
    for c in ("go", "native"):
        a, y = find("repl ASYNC_MASTER", s_, c), find("repl SYNC_MASTER", s_, c)
        if a and y and float(a[3]) > 0:
            ratios.append(f"| repl | {s_} SYNC_MASTER / ASYNC_MASTER, {c} client | {float(y[3]) / float(a[3]):.2f}× | {float(y[4]) / float(a[4]):.2f}× |")
if ratios:
    print("\n| workload | comparison | msg/s ratio | broker CPU/msg ratio (below 1: mqd spends less) |")
    print("|---|---|---|---|")
    print("\n".join(ratios))
for n in notes:
    print(f"\nNote: {n}")
PY
cat "$result"
echo "saved $result" >&2
