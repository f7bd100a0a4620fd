#!/usr/bin/env bash
# Issue 7, pair 7: fan-out of one question to N agents whose model is a fake
# OpenAI-compatible server answering after 100 ms, Warden (benches/fanout.rs)
# against AgentScope's fanout_pipeline (../shared/anchors/agentscope/fanout_bench.py),
# both on the very same server: the anchor's fake_openai.py, started here on
# 127.0.0.1 for each run and stopped by its PID.
#
#   bash benches/compare/pairs/07-fanout.sh setup quick|full   # venv + bench build (idempotent)
#   bash benches/compare/pairs/07-fanout.sh sides              # warden agentscope
#   bash benches/compare/pairs/07-fanout.sh run warden quick   # RESULT/NOTE/VERSION lines
#   bash benches/compare/pairs/07-fanout.sh run agentscope full
#
# Per N (quick: 10; full: 10, 100, 1000), each side in a fresh process per N:
# wall time of a warm fan-out (median of REPS runs after one cold run), its
# ratio to the ideal (the server's delay), CPU time (user+sys) of a warm run,
# and the process's peak RSS. AgentScope runs in the anchor's `per-agent`
# mode (each agent its own OpenAIChatModel, as AgentScope's examples do); in
# full mode also in `shared` mode (one model for all agents), whose RESULT
# lines name the side `agentscope_shared`. Each side's wall/ideal has a metric
# of its own (`warden_over_ideal_nN`, `agentscope_over_ideal_nN`), so that the
# table judges Warden's against the 1.1 goal and not against AgentScope's. Knobs (env): FANOUT_DELAY_MS (100), FANOUT_REPS (quick 2, full 5),
# FANOUT_SHARED (full: 1, quick: 0).
# The venv lives in target/compare/agentscope/venv, outputs in target/compare/fanout/.
set -euo pipefail

# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"   # ROOT, OUT, warden_bench, warden_bin
ANCHOR="$(cd "$ROOT/../shared/anchors/agentscope" && pwd)"
VENV="$ROOT/target/compare/agentscope/venv"
PY="$VENV/bin/python"
WORK="$ROOT/target/compare/fanout"
PAIR=fanout

usage() { echo "usage: $0 setup MODE | sides | run SIDE MODE   (MODE: quick|full; SIDE: warden|agentscope)" >&2; exit 2; }

mode_ok() { case "${1:-}" in quick|full) ;; *) usage ;; esac; }

setup() {
    mkdir -p "$WORK"
    if ! "$PY" -c 'import agentscope, aiohttp' >/dev/null 2>&1; then
        echo "[07] creating $VENV from requirements.lock ..." >&2
        rm -rf "$VENV"
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install -q -r "$ANCHOR/requirements.lock" >&2
    fi
    "$PY" -c 'import agentscope, aiohttp' >&2
    warden_bench fanout >&2
    warden_bin fanout >/dev/null
}

SERVER_PID=""
stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SERVER_PID" 2>/dev/null || true
    fi
    if [ -n "$SERVER_PID" ]; then wait "$SERVER_PID" 2>/dev/null || true; fi
    SERVER_PID=""
}

# Starts fake_openai.py on a free port of 127.0.0.1; sets PORT.
start_server() {
    PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
    "$PY" "$ANCHOR/fake_openai.py" --port "$PORT" --delay-ms "${FANOUT_DELAY_MS:-100}" \
        >"$WORK/fake_server.log" 2>&1 &
    SERVER_PID=$!
    trap stop_server EXIT INT TERM
    for _ in $(seq 100); do
        if "$PY" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/health', timeout=1)" 2>/dev/null; then
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/fake_server.log" >&2; exit 1; }
        sleep 0.1
    done
    echo "[07] the fake server did not come up" >&2
    exit 1
}

run_warden() {
    local mode="$1" bin n
    bin="$(warden_bin fanout)"
    echo "VERSION $PAIR Warden $(cd "$ROOT" && cargo pkgid -p warden-agents 2>/dev/null | sed 's/.*[#@]//'), $(rustc --version | cut -d' ' -f1-2), 2-worker tokio runtime"
    for n in $NS; do
        COMPARE=1 NS="$n" RUNS="$REPS" FANOUT_BASE_URL="http://127.0.0.1:$PORT/v1" "$bin" \
            >"$WORK/warden-n$n.txt" 2>"$WORK/warden-n$n.err" || {
            echo "[07] warden N=$n failed:" >&2
            tail -n 20 "$WORK/warden-n$n.err" >&2
            exit 1
        }
        grep '^RESULT ' "$WORK/warden-n$n.txt"
    done
    echo "NOTE $PAIR warden: N supervised ReAct agents (one_for_one) sharing one Model (one HTTP client per runtime), asked through pattern::FanOut; CPU = the process threads' time on a CPU (/proc/self/task/*/schedstat), averaged over the warm runs; peak RSS = VmHWM of a process per N"
}

run_agentscope() {
    local mode="$1" shared="$2" ns_csv
    ns_csv="$(echo "$NS" | tr ' ' ',')"
    local modes=(per-agent)
    [ "$shared" = "1" ] && modes+=(shared)
    for m in "${modes[@]}"; do
        (cd "$WORK" && "$PY" "$ANCHOR/fanout_bench.py" --base-url "http://127.0.0.1:$PORT/v1" \
            --ns "$ns_csv" --reps "$REPS" --seq-agents 0 --model-mode "$m" \
            --json-out "$WORK/agentscope-$m.json" >"$WORK/agentscope-$m.txt" 2>"$WORK/agentscope-$m.err") || {
            echo "[07] agentscope $m failed:" >&2
            tail -n 20 "$WORK/agentscope-$m.err" >&2
            exit 1
        }
        "$PY" - "$WORK/agentscope-$m.json" "$m" "$PAIR" <<'EOF'
import json, sys
path, mode, pair = sys.argv[1], sys.argv[2], sys.argv[3]
data = json.load(open(path))
side = "agentscope" if mode == "per-agent" else "agentscope_shared"
for r in data["results"]:
    n = r["n"]
    print(f"RESULT {pair} {side} wall_n{n} {r['wall_median_s'] * 1e3:.1f} ms")
    print(f"RESULT {pair} {side} {side}_over_ideal_n{n} {r['ratio']:.3f} x")
    print(f"RESULT {pair} {side} cpu_n{n} {r['cpu_median_s'] * 1e3:.1f} ms")
    print(f"RESULT {pair} {side} rss_n{n} {r['peak_rss_mib']:.1f} MiB")
    print(f"RESULT {pair} {side} build_n{n} {r['build_s'] * 1e3:.0f} ms")
    print(f"RESULT {pair} {side} server_cpu_n{n} {r['server_cpu_median_s'] * 1e3:.1f} ms")
m = data["meta"]
if mode == "per-agent":
    print(f"VERSION {pair} AgentScope {m['agentscope']} (openai {m['openai']}), Python {m['python']}")
EOF
    done
    if [ "$shared" = "1" ]; then
        echo "NOTE $PAIR agentscope: fanout_pipeline(enable_gather=True) over ReActAgents without tools, in the anchor's per-agent mode (each agent its own OpenAIChatModel and HTTP client; side agentscope) and shared mode (one model for all; side agentscope_shared); CPU = getrusage user+sys of a warm run (median); peak RSS = ru_maxrss of a fresh worker per N, agents' build time included"
    else
        echo "NOTE $PAIR agentscope: fanout_pipeline(enable_gather=True) over ReActAgents without tools, in the anchor's per-agent mode only (each agent its own OpenAIChatModel and HTTP client); CPU = getrusage user+sys of a warm run (median); peak RSS = ru_maxrss of a fresh worker per N"
    fi
}

run() {
    local side="$1" mode="$2" shared
    mode_ok "$mode"
    mkdir -p "$WORK"
    # A folder of this run's own, so that runs at the same time do not share files.
    WORK="$(mktemp -d "$WORK/$side-$mode.XXXXXX")"
    echo "[$PAIR] outputs in ${WORK#"$ROOT"/}" >&2
    if [ "$mode" = "quick" ]; then
        NS="${FANOUT_NS:-10}"
        REPS="${FANOUT_REPS:-2}"
        shared="${FANOUT_SHARED:-0}"
    else
        NS="${FANOUT_NS:-10 100 1000}"
        REPS="${FANOUT_REPS:-5}"
        shared="${FANOUT_SHARED:-1}"
    fi
    # 1000 concurrent sockets per side need more than the usual 1024 descriptors.
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    [ -x "$PY" ] || { echo "[07] run setup first: no venv at $VENV" >&2; exit 1; }
    start_server
    case "$side" in
        warden) run_warden "$mode" ;;
        agentscope) run_agentscope "$mode" "$shared" ;;
        *) usage ;;
    esac
    stop_server
    trap - EXIT INT TERM
    echo "NOTE $PAIR both sides on the anchor's fake_openai.py (aiohttp, 127.0.0.1) with a ${FANOUT_DELAY_MS:-100} ms delay, started afresh for each run; N in {$NS}, median of $REPS warm runs after one cold run"
}

case "${1:-}" in
    setup) mode_ok "${2:-}"; setup ;;
    sides) echo "warden agentscope" ;;
    run) [ "$#" -eq 3 ] || usage; run "$2" "$3" ;;
    *) usage ;;
esac
