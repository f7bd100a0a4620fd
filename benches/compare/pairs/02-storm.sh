#!/usr/bin/env bash
# Pair 2, a crash storm into ONE supervisor (one_for_one, 1 child, back-to-back crashes, period
# 5 s, intensity never reached, so the restart history grows): Warden (benches/storm.rs, on a
# 2-worker multi-thread runtime) against OTP (otpb_restart with BATCH=0 PERIOD=5, `erl +S 2`).
# Metrics <crash>_S2_<p50|p99> over all restarts; Warden also reports the p50 of the first and
# last bucket of restarts and last ÷ first (flat = about 1; OTP's grows with the history).
# Protocol: benches/compare/run.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
PAIR=storm

counts() {  # RUNS, CRASHES and BUCKET by mode
    if [[ "$1" == quick ]]; then echo "1 3000 300"; else echo "3 10000 1000"; fi
}

case "${1:-}" in
    setup)
        warden_bench storm
        otp_build
        echo "NOTE $PAIR first_p50 / last_p50 are the first and last bucket of restarts (1,000 in full mode); OTP reports only the whole storm (its p50 grows with the restart history, RESULTS.md)"
        ;;
    sides) echo "warden otp" ;;
    run)
        side="${2:?side}" mode="${3:?mode}"
        read -r runs crashes bucket < <(counts "$mode")
        case "$side" in
            warden)
                RUNS="$runs" CRASHES="$crashes" BUCKET="$bucket" WARDEN_BENCH_RUNTIME=mt2 \
                    "$(warden_bin storm)" 2>/dev/null | emit_metrics "$PAIR" warden "storm/one_for_one/1/"
                ;;
            otp)
                RUNS="$runs" CRASHES="$crashes" BATCH=0 PERIOD=5 LOGGING=off \
                    SCENARIOS=one_for_one:1:kill,one_for_one:1:call otp_run 2 otpb_restart |
                    awk '$1 == "SUMMARY" {
                        split($2, a, "/"); sub(/^p50=/, "", $4); sub(/us$/, "", $4); sub(/^p99=/, "", $5); sub(/us$/, "", $5)
                        print "METRIC", a[3] "/S2/p50", $4, "us"; print "METRIC", a[3] "/S2/p99", $5, "us" }' |
                    emit_metrics "$PAIR" otp
                ;;
            *) echo "unknown side $side" >&2; exit 2 ;;
        esac
        ;;
    *) echo "usage: $0 setup MODE | sides | run SIDE MODE" >&2; exit 2 ;;
esac
