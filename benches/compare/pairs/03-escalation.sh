#!/usr/bin/env bash
# Pair 3, escalation: Warden (benches/escalate.rs) against OTP (otpb_escalate).
# exit_to_parent_K: a supervisor with intensity 0 and K workers gives up when worker 1 is
# killed; until its parent has the news: on both sides the parent is the benchmark, which
# started the supervisor and waits for its exit (OTP: receives the EXIT). Warden also reports
# exit_through_supervisor_K (no OTP twin): the parent is a Warden supervisor that hands the
# GaveUp escalation to its handler, one hop more. subtree_restart_K: two levels,
# the child supervisor gives up, the top one restarts it; until its K new workers answered a
# call. Metrics <scenario>_<K>_<S2|S2w|S1>_<p50|p99>: S2 = Warden on tokio's 2-worker
# multi-thread runtime with its defaults vs `erl +S 2`; S2w = Warden on the same from
# `warden::runtime::multi_thread()` (idle workers wait briefly before they park) vs the same
# `erl +S 2` figures (OTP is measured once for both rows); S1 = a current-thread runtime vs
# `erl +S 1`.
# Protocol: benches/compare/run.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
PAIR=escalation

counts() {  # RUNS and ITER by mode
    if [[ "$1" == quick ]]; then echo "1 200"; else echo "3 2000"; fi
}

case "${1:-}" in
    setup)
        warden_bench escalate
        otp_build
        echo "NOTE $PAIR exit_to_parent: on both sides the parent is the benchmark, which started the supervisor and waits for its exit (OTP: {'EXIT', Sup, shutdown}; Warden: Supervisor::wait, the GaveUp escalation already handed to the supervisor's handler); exit_through_supervisor (Warden only) has a Warden supervisor as the parent, which receives the exit and hands the GaveUp escalation to its handler (a channel to the benchmark), one hop more"
        echo "NOTE $PAIR S2w rows: Warden on warden::runtime::multi_thread() (2 workers that sleep 100 us before they park), against the same erl +S 2 run as the S2 rows"
        ;;
    sides) echo "warden otp" ;;
    run)
        side="${2:?side}" mode="${3:?mode}"
        read -r runs iter < <(counts "$mode")
        case "$side" in
            warden)
                RUNS="$runs" ITER="$iter" "$(warden_bin escalate)" 2>/dev/null | emit_metrics "$PAIR" warden
                ;;
            otp)
                for s in 2 1; do
                    RUNS="$runs" ITER="$iter" LOGGING=off otp_run "$s" otpb_escalate |
                        awk -v s="$s" '$1 == "SUMMARY" {
                            sub(/^p50_us=/, "", $4); sub(/^p99_us=/, "", $5)
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
