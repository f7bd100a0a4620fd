#!/usr/bin/env bash
# Runs every Warden benchmark as BENCHMARKS.md reports them, writing one file
# per benchmark to target/bench-results/<tag>/ with the load average before and
# after each. Usage: benches/run_all.sh [TAG]   (WARDEN_BENCH_QUICK=1 for a smoke run)
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-$(date -u +%Y%m%dT%H%M%SZ)}"
out="target/bench-results/$tag"
mkdir -p "$out"
cargo bench --no-run >/dev/null 2>&1 || cargo bench --no-run

run() {
    local name="$1"
    shift
    {
        echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"
        echo "# command: $*"
        # The panic hook writes to stderr; results go to stdout.
        "$@" 2>/dev/null
        echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
    } >"$out/$name.txt"
    grep -E "^# load|SUMMARY|time:" "$out/$name.txt" || true
}

run restart env -u RUST_BACKTRACE cargo bench --bench restart
run storm env -u RUST_BACKTRACE cargo bench --bench storm
run restart-backtrace env RUST_BACKTRACE=1 CRASHES="${CRASHES_BACKTRACE:-2000}" \
    SCENARIOS=one_for_one:1:panic,one_for_one:1:call,one_for_one:1:error,bare:1:panic,bare:1:call \
    cargo bench --bench restart
run spawn env -u RUST_BACKTRACE cargo bench --bench spawn
# Three processes: identical message paths differ by a few % from run to run on
# this machine, so BENCHMARKS.md takes the median of the three point estimates.
for i in 1 2 3; do
    run "messaging-$i" env -u RUST_BACKTRACE cargo bench --bench messaging
done
echo "results in $out"
