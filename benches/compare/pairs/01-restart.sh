#!/usr/bin/env bash
# Pair 1, restart latency (crash → every restarted child started again and answered a ping):
# Warden (benches/restart.rs) against OTP (otpb_restart), both with a fresh supervisor every
# 100 crashes. Metrics <strategy>_<children>_<crash>_<S2|S2w|S1>_<p50|p99>: S2 = Warden on
# tokio's 2-worker multi-thread runtime with its defaults vs `erl +S 2`; S2w = Warden on the
# same from `warden::runtime::multi_thread()` (idle workers wait briefly before they park) vs
# the same `erl +S 2` figures (OTP is measured once for both rows); S1 = a current-thread
# runtime vs `erl +S 1`.
# Protocol: benches/compare/run.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
PAIR=restart
SCENARIOS="one_for_one:1:kill,one_for_one:1:call,one_for_all:10:kill,one_for_all:10:call,rest_for_one:10:kill,rest_for_one:10:call"

counts() {  # RUNS and CRASHES by mode
    if [[ "$1" == quick ]]; then echo "1 300"; else echo "3 10000"; fi
}

case "${1:-}" in
    setup)
        warden_bench restart
        otp_build
        echo "NOTE $PAIR S2w rows: Warden on warden::runtime::multi_thread() (2 workers that sleep 100 us before they park), against the same erl +S 2 run as the S2 rows"
        ;;
    sides) echo "warden otp" ;;
    run)
        side="${2:?side}" mode="${3:?mode}"
        read -r runs crashes < <(counts "$mode")
        case "$side" in
            warden)
                RUNS="$runs" CRASHES="$crashes" BATCH=100 SCENARIOS="$SCENARIOS" WARDEN_BENCH_RUNTIME=mt2,mt2w,ct \
                    "$(warden_bin restart)" 2>/dev/null | emit_metrics "$PAIR" warden
                ;;
            otp)
                for s in 2 1; do
                    RUNS="$runs" CRASHES="$crashes" BATCH=100 PERIOD=1 LOGGING=off SCENARIOS="$SCENARIOS" \
                        otp_run "$s" otpb_restart |
                        awk -v s="$s" '$1 == "SUMMARY" {
                            sub(/^p50=/, "", $4); sub(/us$/, "", $4); sub(/^p99=/, "", $5); sub(/us$/, "", $5)
                            print "METRIC", $2 "/S" s "/p50", $4, "us"; print "METRIC", $2 "/S" s "/p99", $5, "us"
                            if (s == 2) { print "METRIC", $2 "/S2w/p50", $4, "us"; print "METRIC", $2 "/S2w/p99", $5, "us" } }' |
                        emit_metrics "$PAIR" otp
                done
                ;;
            *) echo "unknown side $side" >&2; exit 2 ;;
        esac
        ;;
    *) echo "usage: $0 setup MODE | sides | run SIDE MODE" >&2; exit 2 ;;
esac
