#!/usr/bin/env bash
# Courier benchmark suite: builds release, runs P1-P5 against their baselines, prints a
# Markdown table (medians of BENCH_REPEAT runs). All load goes to 127.0.0.1 / Unix sockets;
# every run is bounded by count and time (and by `timeout`). Daemons and temporary
# directories are cleaned up on exit, failure or interrupt.
#
#   scripts/bench.sh                       # everything (~8-10 min on 2 cores)
#   BENCH_ONLY="P1 P4" scripts/bench.sh    # a subset
#
# Knobs (environment): BENCH_REPEAT (3), BENCH_DURATION (10s), BENCH_PRODUCERS (64, P1),
# BENCH_P2_PRODUCERS (8), BENCH_P3_EVENTS (50000), BENCH_P5_EVENTS (1000000),
# BENCH_P5_DRAIN (200000), BENCH_PORT (18425; P1 uses it and the next one),
# BENCH_SKIP_BUILD (unset), BENCH_MICRO=1 (also run `cargo bench --bench hot_paths`),
# BENCH_OUT (where logs go; default target/bench-results/<timestamp>),
# BENCH_QUIET_PCT (15) / BENCH_QUIET_WAIT (120 s): before each measured run, wait (bounded)
# until other processes use at most that share of the CPUs; runs that had to start on a busy
# machine are counted in the table's footer (the machine is shared with builds and tests).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

REPEAT=${BENCH_REPEAT:-3}
DUR=${BENCH_DURATION:-10s}
PRODUCERS=${BENCH_PRODUCERS:-64}
P2_PRODUCERS=${BENCH_P2_PRODUCERS:-8}
P3_EVENTS=${BENCH_P3_EVENTS:-50000}
P5_EVENTS=${BENCH_P5_EVENTS:-1000000}
P5_DRAIN=${BENCH_P5_DRAIN:-200000}
PORT=${BENCH_PORT:-18425}
BPORT=$((PORT + 1))
ONLY=" ${BENCH_ONLY:-P1 P2 P3 P4 P5} "
OUT=${BENCH_OUT:-$ROOT/target/bench-results/$(date +%Y%m%d-%H%M%S)}
BIN=$ROOT/target/release
EX=$BIN/examples

mkdir -p "$OUT"
: >"$OUT/busy.txt"
: >"$OUT/noisy.txt"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/courier-bench.XXXXXX")
export TMPDIR=$WORK/tmp COURIER_BENCH_PIDDIR=$WORK/pids COURIER_BIN=$BIN/courier
# The TCP admin API needs an admin token: every daemon gets this one, and loadgen sends it over
# TCP (to the baseline server too, which ignores it, so both carry the same header).
export COURIER_ADMIN_TOKEN=bench-$RANDOM$RANDOM$RANDOM
mkdir -p "$TMPDIR" "$COURIER_BENCH_PIDDIR"

# Every process we start (directly, or a daemon started by an example) has a pid file in
# $COURIER_BENCH_PIDDIR; cleanup stops exactly those, by pid.
kill_leftovers() {
    local f pid
    for f in "$COURIER_BENCH_PIDDIR"/*; do
        [ -e "$f" ] || continue
        pid=$(cat "$f")
        kill -TERM "$pid" 2>/dev/null || true
    done
    for _ in $(seq 50); do
        local alive=0
        for f in "$COURIER_BENCH_PIDDIR"/*; do
            [ -e "$f" ] || continue
            if kill -0 "$(cat "$f")" 2>/dev/null; then alive=1; fi
        done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for f in "$COURIER_BENCH_PIDDIR"/*; do
        [ -e "$f" ] || continue
        kill -KILL "$(cat "$f")" 2>/dev/null || true
        rm -f "$f"
    done
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    kill_leftovers
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Percent of all CPUs busy over one second (from /proc/stat).
cpu_busy() {
    local c u n s i w q sq st t1 i1
    read -r c u n s i w q sq st _ </proc/stat
    t1=$((u + n + s + i + w + q + sq + st)) i1=$((i + w))
    sleep 1
    read -r c u n s i w q sq st _ </proc/stat
    local dt=$((u + n + s + i + w + q + sq + st - t1)) di=$((i + w - i1))
    echo $((dt > 0 ? 100 * (dt - di) / dt : 0))
}
# Waits (bounded) until the machine is quiet; records what it saw.
wait_quiet() {
    local waited=0 b
    while :; do
        b=$(cpu_busy)
        [ "$b" -le "${BENCH_QUIET_PCT:-15}" ] && break
        if [ "$waited" -ge "${BENCH_QUIET_WAIT:-120}" ]; then
            log "machine still ${b}% busy after ${waited}s; measuring anyway"
            echo "$b" >>"$OUT/noisy.txt"
            break
        fi
        sleep 4
        waited=$((waited + 5))
    done
    echo "$b" >>"$OUT/busy.txt"
}

# val "RESULT a=1 b=2" b  ->  2
val() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p" | head -n1; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "?"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
# calc EXPR with awk (floats)
calc() { awk "BEGIN {print $1}"; }
fmt0() { awk -v x="$1" 'BEGIN {printf "%.0f", x}'; }
fmt2() { awk -v x="$1" 'BEGIN {printf "%.2f", x}'; }
ok() { if awk "BEGIN {exit !($1)}"; then echo "met"; else echo "**MISSED**"; fi; }

# Runs a bounded command, appends its output to a log, prints its RESULT line.
run() {
    local name=$1 limit=$2
    shift 2
    echo "\$ $*" >>"$OUT/$name.log"
    timeout --signal=TERM --kill-after=10 "$limit" "$@" >>"$OUT/$name.log" 2>&1 || {
        log "FAILED ($?): $* — see $OUT/$name.log"
        tail -n 20 "$OUT/$name.log" >&2
        return 1
    }
    grep '^RESULT' "$OUT/$name.log" | tail -n1
}

start_bg() {
    local name=$1
    shift
    "$@" >>"$OUT/$name.stderr.log" 2>&1 &
    BG_PID=$!
    echo "$BG_PID" >"$COURIER_BENCH_PIDDIR/$BG_PID"
}
stop_bg() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f "$COURIER_BENCH_PIDDIR/$pid"
}
wait_http() { # wait_http URL [curl args] — until 200, at most 20 s
    local url=$1
    shift
    for _ in $(seq 400); do
        if curl -fsS -o /dev/null --max-time 1 "$@" "$url" 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    log "not ready: $url"
    return 1
}
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A fresh daemon in its own directory; sets D_PID, D_SOCK, D_DIR.
start_courier() { # start_courier LISTEN
    D_DIR=$(mktemp -d "$TMPDIR/courier.XXXXXX")
    D_SOCK=$D_DIR/courier.sock
    COURIER_LOG=warn start_bg courier "$BIN/courier" serve --data-dir "$D_DIR/data" \
        --socket "$D_SOCK" --listen "$1" --allow-http
    D_PID=$BG_PID
    wait_http http://localhost/readyz --unix-socket "$D_SOCK"
}
stop_courier() {
    stop_bg "$D_PID"
    rm -rf "$D_DIR"
}

# ------------------------------------------------------------------------------------------
uptime_load() { cut -d' ' -f1-3 /proc/loadavg; }
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
log "machine: $(nproc) cores, $CPU, $(free -g | awk '/Mem:/ {print $2}') GiB; load $(uptime_load)"
TREE="$(git rev-parse --short HEAD)$(git status --porcelain -- src | grep -q . && echo -dirty || true)"
log "tree: $TREE; logs in $OUT"

if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
    log "building (release)…"
    cargo build --release --bins --examples >"$OUT/build.log" 2>&1 || {
        tail -n 30 "$OUT/build.log" >&2
        exit 1
    }
fi
for b in "$BIN/courier" "$EX/loadgen" "$EX/baseline_server" "$EX/redb_baseline" \
    "$EX/delivery_bench" "$EX/backlog_bench"; do
    [ -x "$b" ] || { log "missing $b"; exit 1; }
done
for p in "$PORT" "$BPORT"; do
    port_free "$p" || { log "port $p is in use; set BENCH_PORT"; exit 1; }
done

ROWS_FILE=$OUT/rows.md
: >"$ROWS_FILE"
row() { echo "| $1 | $2 | $3 | $4 |" >>"$ROWS_FILE"; }

# ---- P1: HTTP intake, single events, TCP -------------------------------------------------
p1() {
    c=() b=() cp99=() bp99=() r=() epc=() busy=() cms=()
    for i in $(seq "$REPEAT"); do
        wait_quiet
        log "P1 run $i/$REPEAT: baseline_server (load $(uptime_load))"
        start_bg baseline_server "$EX/baseline_server" --listen "127.0.0.1:$BPORT" --max-seconds 120
        wait_http "http://127.0.0.1:$BPORT/x"
        res=$(run p1_baseline 60 "$EX/loadgen" --http "127.0.0.1:$BPORT" --producers "$PRODUCERS" \
            --endpoints 10 --body-bytes 512 --duration "$DUR" --server-pid "$BG_PID")
        stop_bg "$BG_PID"
        b+=("$(val "$res" accepted_per_s)")
        bp99+=("$(val "$res" p99_us)")
        wait_quiet
        log "P1 run $i/$REPEAT: courier"
        start_courier "127.0.0.1:$PORT"
        res=$(run p1_courier 90 "$EX/loadgen" --http "127.0.0.1:$PORT" --producers "$PRODUCERS" \
            --endpoints 10 --create-endpoints http://127.0.0.1:9/hook --paused --body-bytes 512 \
            --duration "$DUR" --show-metrics --server-pid "$D_PID")
        stop_courier
        c+=("$(val "$res" accepted_per_s)")
        cp99+=("$(val "$res" p99_us)")
        epc+=("$(val "$res" events_per_commit)")
        busy+=("$(val "$res" writer_busy)")
        cms+=("$(val "$res" commit_ms)")
        log "P1 run $i: courier ${c[-1]}/s, baseline ${b[-1]}/s"
    done
    log "P1 reference: bare redb, single-record durable commits, $PRODUCERS producers"
    for i in $(seq "$REPEAT"); do
        wait_quiet
        res=$(run p1_redb_ref 60 "$EX/redb_baseline" --producers "$PRODUCERS" --batch 1 \
            --duration "$DUR")
        r+=("$(val "$res" accepted_per_s)")
    done
    C=$(median "${c[@]}") B=$(median "${b[@]}") R=$(median "${r[@]}")
    RATIO=$(calc "$C/$B")
    row "P1 intake, 1 event/request, TCP, $PRODUCERS producers, 512 B (events/s; p99 µs)" \
        "$(fmt0 "$C") (p99 $(median "${cp99[@]}"); $(median "${epc[@]}") events/commit, $(median "${cms[@]}") ms/commit, writer busy $(median "${busy[@]}"))" "$(fmt0 "$B") (p99 $(median "${bp99[@]}")) baseline_server" \
        "$(fmt2 "$RATIO")× (≥ 0.8×) $(ok "$RATIO >= 0.8")"
    row "P1 ref: fsync ceiling, bare redb 1 record/commit-wait, $PRODUCERS producers (events/s)" \
        "$(fmt0 "$C")" "$(fmt0 "$R") redb_baseline --batch 1" "$(fmt2 "$(calc "$C/$R")")× (info)"
}

# ---- P2: batch intake over the Unix socket ----------------------------------------------
p2() {
    c=() b=() epc=() busy=()
    for i in $(seq "$REPEAT"); do
        wait_quiet
        log "P2 run $i/$REPEAT: courier --batch 1000 (load $(uptime_load))"
        start_courier off
        res=$(run p2_courier 90 "$EX/loadgen" --socket "$D_SOCK" --producers "$P2_PRODUCERS" \
            --endpoints 10 --create-endpoints http://127.0.0.1:9/hook --paused --batch 1000 \
            --body-bytes 512 --duration "$DUR" --show-metrics --server-pid "$D_PID")
        stop_courier
        c+=("$(val "$res" accepted_per_s)")
        epc+=("$(val "$res" events_per_commit)")
        busy+=("$(val "$res" writer_busy)")
        wait_quiet
        log "P2 run $i/$REPEAT: redb_baseline --batch 1000"
        res=$(run p2_redb 90 "$EX/redb_baseline" --producers "$P2_PRODUCERS" --batch 1000 \
            --endpoints 10 --duration "$DUR")
        b+=("$(val "$res" accepted_per_s)")
        log "P2 run $i: courier ${c[-1]}/s, redb ${b[-1]}/s"
    done
    C=$(median "${c[@]}") B=$(median "${b[@]}")
    RATIO=$(calc "$C/$B")
    row "P2 batch intake, 1000 events/request, socket, $P2_PRODUCERS producers (events/s)" \
        "$(fmt0 "$C") ($(median "${epc[@]}") events/commit, writer busy $(median "${busy[@]}"))" "$(fmt0 "$B") redb_baseline --batch 1000" \
        "$(fmt2 "$RATIO")× (≥ 0.8×) $(ok "$RATIO >= 0.8"); ≥ 100k/s $(ok "$C >= 100000")"
}

# ---- P3: delivery throughput -------------------------------------------------------------
p3() {
    local streams
    for streams in 100 64; do
        c=() b=() cc=() bc=() ccpu=()
        for i in $(seq "$REPEAT"); do
            wait_quiet
            log "P3 run $i/$REPEAT: $P3_EVENTS events over $streams streams (load $(uptime_load))"
            res=$(run "p3_$streams" 300 "$EX/delivery_bench" --events "$P3_EVENTS" --streams "$streams")
            c+=("$(val "$res" courier_per_s)")
            b+=("$(val "$res" baseline_per_s)")
            cc+=("$(val "$res" courier_conns)")
            bc+=("$(val "$res" baseline_conns)")
            ccpu+=("$(val "$res" courier_cpu_us)")
            log "P3 run $i: courier ${c[-1]}/s (${cc[-1]} connections), baseline ${b[-1]}/s"
        done
        C=$(median "${c[@]}") B=$(median "${b[@]}")
        RATIO=$(calc "$C/$B")
        if [ "$streams" = 100 ]; then
            row "P3 delivery, 100 endpoints max_in_flight 1, 512 B (events/s; TCP connects)" \
                "$(fmt0 "$C") ($(median "${cc[@]}") connects, $(median "${ccpu[@]}") µs CPU/delivery)" \
                "$(fmt0 "$B") plain hyper client ($(median "${bc[@]}") connects)" \
                "$(fmt2 "$RATIO")× (≥ 0.8×) $(ok "$RATIO >= 0.8")"
        else
            row "P3 diag: 64 endpoints (events/s; TCP connects)" \
                "$(fmt0 "$C") ($(median "${cc[@]}") connects, $(median "${ccpu[@]}") µs CPU/delivery)" \
                "$(fmt0 "$B") ($(median "${bc[@]}") connects)" "$(fmt2 "$RATIO")× (info)"
        fi
    done
}

# ---- P4: ingest-to-receiver latency ------------------------------------------------------
p4() {
    p50=() p99=() a50=() a99=() miss=() ord=()
    for i in $(seq "$REPEAT"); do
        wait_quiet
        log "P4 run $i/$REPEAT: 2000 events/s for $DUR into 10 endpoints (load $(uptime_load))"
        res=$(run p4 120 "$EX/delivery_bench" --latency --rate 2000 --duration "$DUR" \
            --endpoints 10)
        p50+=("$(val "$res" p50_us)")
        p99+=("$(val "$res" p99_us)")
        a50+=("$(val "$res" ack_p50_us)")
        a99+=("$(val "$res" ack_p99_us)")
        miss+=("$(val "$res" missing)")
        ord+=("$(val "$res" order_errors)")
        log "P4 run $i: send→arrival p50 ${p50[-1]} µs, p99 ${p99[-1]} µs"
    done
    P50=$(median "${p50[@]}") P99=$(median "${p99[@]}")
    row "P4 send→receiver latency at 2000 events/s, 10 endpoints (p50 / p99 ms)" \
        "$(fmt2 "$(calc "$P50/1000")") / $(fmt2 "$(calc "$P99/1000")") (202→arrival p50 $(median "${a50[@]}") µs, p99 $(median "${a99[@]}") µs; undelivered $(median "${miss[@]}"), out of order $(median "${ord[@]}"))" \
        "—" "p50 ≤ 2 ms $(ok "$P50 <= 2000"); p99 ≤ 10 ms $(ok "$P99 <= 10000")"
}

# ---- P5: 1M backlog ----------------------------------------------------------------------
p5() {
    rss=() hwm=() rst=() rdy=() drn=() ord=() fill=()
    for i in $(seq "$REPEAT"); do
        wait_quiet
        log "P5 run $i/$REPEAT: $P5_EVENTS backlog, drain $P5_DRAIN (load $(uptime_load))"
        res=$(run p5 600 "$EX/backlog_bench" --events "$P5_EVENTS" --drain "$P5_DRAIN")
        rss+=("$(val "$res" rss_mib)")
        hwm+=("$(val "$res" hwm_mib)")
        rst+=("$(val "$res" restart_ms)")
        rdy+=("$(val "$res" ready_ms)")
        drn+=("$(val "$res" drain_per_s)")
        ord+=("$(val "$res" order_errors)")
        fill+=("$(val "$res" fill_per_s)")
        log "P5 run $i: RSS ${rss[-1]} MiB, restart ${rst[-1]} ms, drain ${drn[-1]}/s"
    done
    RSS=$(median "${rss[@]}") RST=$(median "${rst[@]}")
    row "P5 RSS holding $P5_EVENTS paused events (MiB)" \
        "$RSS (peak $(median "${hwm[@]}"))" "—" "≤ 150 MiB $(ok "$RSS <= 150")"
    row "P5 restart → backlog visible (ms)" "$RST (/readyz $(median "${rdy[@]}"))" "—" \
        "≤ 2000 ms $(ok "$RST <= 2000")"
    row "P5 in-order drain, first $P5_DRAIN events, 1 endpoint (events/s)" \
        "$(median "${drn[@]}") (order errors $(median "${ord[@]}"))" "—" "info"
    row "P5 fill, batch 10k/request, 2 producers (events/s)" "$(median "${fill[@]}")" "—" "info"
}

# Each piece runs in a subshell with `set -e`: a failure marks its row FAILED, stops whatever
# it left running, and the suite goes on.
for piece in P1 P2 P3 P4 P5; do
    [[ $ONLY == *" $piece "* ]] || continue
    set +e
    (
        set -e
        "${piece,,}"
    )
    rc=$?
    set -e
    if [ $rc != 0 ]; then
        log "$piece failed (exit $rc)"
        row "$piece" "FAILED (exit $rc; see $OUT)" "—" "—"
        kill_leftovers
    fi
done

if [ -n "${BENCH_MICRO:-}" ]; then
    log "micro-benchmarks (criterion)…"
    cargo bench --bench hot_paths >"$OUT/micro.log" 2>&1 || log "cargo bench failed; see $OUT/micro.log"
    grep -E '^[a-z_0-9]+/|time:' "$OUT/micro.log" >&2 || true
fi

{
    echo
    echo "Courier benchmarks — $(nproc) × $CPU; tree $TREE (as built); median of $REPEAT; $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "| benchmark | Courier | baseline | ratio / target |"
    echo "|---|---|---|---|"
    cat "$ROWS_FILE"
    echo
    echo "Background CPU before the $(wc -l <"$OUT/busy.txt") measured runs: median $(median $(cat "$OUT/busy.txt")) %, max $(sort -n "$OUT/busy.txt" | tail -n1) %; runs started on a busy machine (> ${BENCH_QUIET_PCT:-15} %): $(wc -l <"$OUT/noisy.txt")."
    echo "logs: $OUT"
} | tee "$OUT/table.md"
