#!/usr/bin/env bash
# Pair 8, across processes on loopback: Warden (cli/benches/cluster.rs: a `warden node` process
# hosts an echo placed by a supervisor in the bench process), raw ractor_cluster (two plain
# NodeServers, no Warden controller), and distributed Erlang (otpb_dist: two `erl -sname`
# nodes). Metrics: ask_rtt_<p50|p99> (a remote call, each timed alone: Warden's and raw's an
# RPC to the echo, OTP's a remote gen_server:call), cast_throughput (casts then a call for the
# count), failover_<p50|max> (Warden only: kill -9 of the echo's node until it answers from
# another node, default heartbeat settings). Protocol: benches/compare/run.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
PAIR=dist

counts() {  # RUNS, N_SAMPLE, N_CAST, FAILOVERS by mode
    if [[ "$1" == quick ]]; then echo "1 2000 20000 2"; else echo "3 20000 200000 10"; fi
}

bench_bin() {
    local json="$OUT/bin/cluster.json"
    (cd "$ROOT" && cargo bench -p warden-cli --features cluster --no-run --bench cluster --message-format=json) >"$json"
    python3 - "$json" >"$OUT/bin/cluster.path" <<'PY'
import json, sys
exe = None
for line in open(sys.argv[1]):
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    t = msg.get("target") or {}
    if msg.get("reason") == "compiler-artifact" and t.get("name") == "cluster" and "bench" in t.get("kind", []):
        exe = msg.get("executable") or exe
if not exe:
    sys.exit("no executable for bench cluster in cargo's output")
print(exe)
PY
}

case "${1:-}" in
    setup)
        bench_bin
        otp_build
        echo "NOTE $PAIR ask_rtt: Warden's message path is ractor_cluster's own (a remote actor stand-in, its node session, a writer task, TCP; the copy patched in vendor/ractor_cluster, without upstream's relay actor); raw is the same path without Warden's controller. Both callers run as tasks on a 2-worker runtime; a warden node has 1 worker. OTP's is a remote gen_server:call between two erl -sname nodes. Both nodes share the machine's 2 cores."
        ;;
    sides) echo "warden raw otp" ;;
    run)
        side="${2:?side}" mode="${3:?mode}"
        read -r runs n_sample n_cast failovers < <(counts "$mode")
        export RUNS="$runs" N_SAMPLE="$n_sample" N_CAST="$n_cast" FAILOVERS="$failovers"
        case "$side" in
            warden | raw)
                WARDEN_CLUSTER_BENCH_SIDE="$side" "$(cat "$OUT/bin/cluster.path")" 2>/dev/null | emit_metrics "$PAIR" "$side"
                ;;
            otp)
                host="$(hostname -s)"
                erl -sname otpb_b -setcookie otpb -noshell -pa "$OTP_EBIN" -run otpb_dist server >/dev/null 2>&1 &
                server=$!
                RUNS="$runs" N_SAMPLE="$n_sample" N_CAST="$n_cast" REMOTE="otpb_b@$host" \
                    erl -sname otpb_a -setcookie otpb -noshell -pa "$OTP_EBIN" -run otpb_dist client 2>&1 >/dev/null |
                    awk '$1 == "SUMMARY" {
                        for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
                        if ($2 == "remote_gen_server_call_rtt") {
                            print "METRIC", "ask_rtt/p50", v["p50_us"], "us"; print "METRIC", "ask_rtt/p99", v["p99_us"], "us" }
                        if ($2 == "remote_gen_server_cast_throughput") print "METRIC", "cast_throughput", v["msgs_per_s"], "ops/s" }' |
                    emit_metrics "$PAIR" otp
                kill "$server" 2>/dev/null || true
                wait "$server" 2>/dev/null || true
                epmd -kill >/dev/null 2>&1 || true
                ;;
            *) echo "unknown side $side" >&2; exit 2 ;;
        esac
        ;;
    *) echo "usage: $0 setup MODE | sides | run SIDE MODE" >&2; exit 2 ;;
esac
