#!/usr/bin/env bash
# Issue 7, pair 6: Warden's supervisor against its Rust peers, ractor-supervisor
# (the OTP-style crate on ractor) and kameo's supervision, on pair 1's work
# (restart latency: one_for_one with 1 child, a kill and a crash inside a call
# handler, p50/p99) and pair 5's (N supervised children started one at a time:
# total time, time per child, memory per child), plus the OTP conformance
# scenarios of ../shared/conformance (Warden through check.sh, ractor-supervisor
# through the peers project's runner; kameo has none).
#
#   bash benches/compare/pairs/06-peers.sh setup quick|full   # builds (idempotent)
#   bash benches/compare/pairs/06-peers.sh sides              # warden ractor_supervisor kameo
#   bash benches/compare/pairs/06-peers.sh run kameo quick    # RESULT/NOTE/VERSION lines
#
# Warden runs its own benches (benches/restart.rs with
# SCENARIOS=one_for_one:1:kill,one_for_one:1:call on the 2-worker runtime, and
# benches/spawn.rs's warden_start_child section); the peers run
# benches/compare/peers (its own cargo project, built into
# target/compare/peers-target), whose binaries do the same work the same way.
# quick: 300 crashes, 1 run, 1,000 children; full: 10,000 crashes, 5 runs,
# 100,000 children. Panic messages of the deliberate crashes go to /dev/null.
set -euo pipefail

# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"   # ROOT, OUT, warden_bench, warden_bin
PEERS="$ROOT/benches/compare/peers"
CONF="$(cd "$ROOT/../shared/conformance" && pwd)"
export CARGO_TARGET_DIR_PEERS="$ROOT/target/compare/peers-target"
BIN="$CARGO_TARGET_DIR_PEERS/release"
WORK="$ROOT/target/compare/peers"
PAIR=peers

usage() { echo "usage: $0 setup MODE | sides | run SIDE MODE   (MODE: quick|full; SIDE: warden|ractor_supervisor|kameo)" >&2; exit 2; }
mode_ok() { case "${1:-}" in quick|full) ;; *) usage ;; esac; }

peers_cargo() {
    (cd "$PEERS" && CARGO_TARGET_DIR="$CARGO_TARGET_DIR_PEERS" cargo "$@")
}

setup() {
    mkdir -p "$WORK"
    # The conformance runner first (with ractor's monitors), then the benches
    # without that feature, so restart and spawn run on the plain ractor.
    peers_cargo build --release --features conformance --bin conformance >&2
    peers_cargo build --release --bin restart --bin spawn >&2
    warden_bench restart >&2
    warden_bench spawn >&2
    (cd "$ROOT" && cargo build --release --example otp_conformance >&2)
}

# Lock-file version of a crate in a Cargo.lock.
locked() {
    awk -v n="$2" '$0 == "name = \"" n "\"" { getline; gsub(/version = |"/, ""); print; exit }' "$1"
}

sizes() {
    if [ "$1" = "quick" ]; then
        CRASHES="${PEERS_CRASHES:-300}"; RUNS="${PEERS_RUNS:-1}"; N="${PEERS_N:-1000}"
    else
        CRASHES="${PEERS_CRASHES:-10000}"; RUNS="${PEERS_RUNS:-5}"; N="${PEERS_N:-100000}"
    fi
}

# SUMMARY lines of our benches -> RESULT lines.
warden_results() {
    python3 -c '
import re, sys
pair = sys.argv[1]
for line in sys.stdin:
    m = re.match(r"SUMMARY one_for_one/1/(kill|call) mt2 median_of_runs: p50=([\d.]+) p99=([\d.]+)", line)
    if m:
        print(f"RESULT {pair} warden restart_{m[1]}_p50 {m[2]} us")
        print(f"RESULT {pair} warden restart_{m[1]}_p99 {m[3]} us")
        continue
    m = re.match(r"SUMMARY warden_start_child mt2 median_of_runs: total_ms=([\d.]+) per_child_us=([\d.]+) op_p50=([\d.]+) op_p99=([\d.]+) bytes/child=(-?\d+)", line)
    if m:
        print(f"RESULT {pair} warden spawn_total {m[1]} ms")
        print(f"RESULT {pair} warden spawn_per_child {m[2]} us")
        print(f"RESULT {pair} warden spawn_op_p50 {m[3]} us")
        print(f"RESULT {pair} warden spawn_op_p99 {m[4]} us")
        print(f"RESULT {pair} warden spawn_bytes_per_child {m[5]} B")
' "$PAIR"
}

run_warden() {
    local restart spawn out="$WORK/warden.txt" conf="$WORK/warden-conformance.txt" summary
    restart="$(warden_bin restart)"; spawn="$(warden_bin spawn)"
    [ -x "$restart" ] && [ -x "$spawn" ] || { echo "[06] run setup first: no restart/spawn bench" >&2; exit 1; }
    : >"$out"
    SCENARIOS=one_for_one:1:kill,one_for_one:1:call WARDEN_BENCH_RUNTIME=mt2 RUNS="$RUNS" \
        CRASHES="$CRASHES" BATCH=100 "$restart" >>"$out" 2>/dev/null
    SECTIONS=warden_start_child WARDEN_BENCH_RUNTIME=mt2 RUNS="$RUNS" N="$N" "$spawn" >>"$out"
    warden_results <"$out"
    (cd "$ROOT" && bash "$CONF/check.sh") >"$conf" 2>&1 || true
    summary="$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$conf" | tail -n 1)"
    [ -n "$summary" ] || { echo "[06] check.sh printed no summary:" >&2; tail -n 20 "$conf" >&2; exit 1; }
    local passed failed
    passed="$(echo "$summary" | awk '{print $1}')"; failed="$(echo "$summary" | awk '{print $3}')"
    echo "RESULT $PAIR warden conformance_passed $passed count"
    echo "RESULT $PAIR warden conformance_total $((passed + failed)) count"
    echo "VERSION $PAIR Warden on ractor $(locked "$ROOT/Cargo.lock" ractor)"
}

run_peer() {
    local side="$1" out="$WORK/$side.txt"
    [ -x "$BIN/restart" ] && [ -x "$BIN/spawn" ] || { echo "[06] run setup first: no peers build" >&2; exit 1; }
    : >"$out"
    TARGETS="$side" RUNS="$RUNS" CRASHES="$CRASHES" BATCH=100 "$BIN/restart" >>"$out" 2>/dev/null
    TARGETS="$side" RUNS="$RUNS" N="$N" "$BIN/spawn" >>"$out"
    grep '^RESULT ' "$out"
    local lock="$PEERS/Cargo.lock"
    if [ "$side" = "ractor_supervisor" ]; then
        local conf="$WORK/ractor_supervisor-conformance.txt" summary
        [ -x "$BIN/conformance" ] || { echo "[06] run setup first: no conformance runner" >&2; exit 1; }
        "$BIN/conformance" --check "$CONF/scenarios" >"$conf"
        cat "$conf" >&2
        summary="$(tail -n 1 "$conf")"
        echo "$summary" | grep -Eq '^[0-9]+ passed, [0-9]+ failed, [0-9]+ not expressible$' ||
            { echo "[06] the conformance runner printed no summary" >&2; exit 1; }
        local p f na
        read -r p _ f _ na _ <<<"$summary"
        echo "RESULT $PAIR ractor_supervisor conformance_passed $p count"
        echo "RESULT $PAIR ractor_supervisor conformance_total $((p + f + na)) count"
        echo "RESULT $PAIR ractor_supervisor conformance_not_expressible $na count"
        echo "NOTE $PAIR ractor_supervisor conformance: $(grep -E '^(PASS|FAIL|N/A)' "$conf" | awk '{print $1 "=" $2}' | sed 's/=\([0-9][0-9]\)_[a-z_]*/=\1/' | tr '\n' ' ')(the traces: this run's log; why: BENCHMARKS.md, Rust peers)"
        echo "VERSION $PAIR ractor-supervisor $(locked "$lock" ractor-supervisor) on ractor $(locked "$lock" ractor) (default features off: native async traits, as Warden)"
        echo "NOTE $PAIR ractor_supervisor: restart = static Supervisor, OneForOne, Restart::Permanent child; spawn = DynamicSupervisor::spawn_child (its run-time supervisor), each child named in ractor's global registry"
    else
        echo "VERSION $PAIR kameo $(locked "$lock" kameo) (default features off but macros: no tracing)"
        echo "NOTE $PAIR kameo: restart and spawn = a OneForOne kameo actor supervising Worker::supervise(&sup, args) children (RestartPolicy::Permanent); no conformance runner (no which/count_children, no run-time child operations, restart limits per child)"
    fi
}

run() {
    local side="$1" mode="$2"
    mode_ok "$mode"
    sizes "$mode"
    mkdir -p "$WORK"
    # A folder of this run's own, so that runs at the same time do not share files.
    WORK="$(mktemp -d "$WORK/$side-$mode.XXXXXX")"
    echo "[$PAIR] outputs in ${WORK#"$ROOT"/}" >&2
    case "$side" in
        warden) run_warden ;;
        ractor_supervisor | kameo) run_peer "$side" ;;
        *) usage ;;
    esac
    echo "NOTE $PAIR restart: one_for_one, 1 child, $CRASHES crashes per run, fresh supervisor every 100, median of $RUNS run(s) of p50/p99, 2-worker runtime; spawn: $N children started one at a time into a running supervisor, bytes live per child from a counting allocator"
}

case "${1:-}" in
    setup) mode_ok "${2:-}"; setup ;;
    sides) echo "warden ractor_supervisor kameo" ;;
    run) [ "$#" -eq 3 ] || usage; run "$2" "$3" ;;
    *) usage ;;
esac
