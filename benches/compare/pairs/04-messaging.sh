#!/usr/bin/env bash
# Pair 4, messaging to one worker, as otpb_msg measures it: a supervised Warden worker
# (`warden`), the same ractor actor spawned bare (`bare`), and a gen_server (`otp`).
# Metrics <S2|S1>_cast (casts then a final call, ops/s), <S2|S1>_call_rtt_batch (back-to-back
# calls, mean round trip in ns), <S2|S1>_call_rtt_<p50|p99> (individually timed calls):
# S2 = a 2-worker multi-thread runtime vs `erl +S 2`, S1 = a current-thread runtime vs `+S 1`.
# Rust side: benches/msg_compare.rs. Protocol: benches/compare/run.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
PAIR=messaging

counts() {  # RUNS, N_CAST, N_CALL, N_SAMPLE by mode
    if [[ "$1" == quick ]]; then echo "1 100000 100000 20000"; else echo "3 1000000 1000000 200000"; fi
}

case "${1:-}" in
    setup)
        warden_bench msg_compare
        otp_build
        echo "NOTE $PAIR warden = the worker as the only child of a Warden supervisor, bare = the same ractor actor spawned with no parent, otp = a gen_server; the goal is against bare (ractor itself is the floor), the OTP rows are for reference"
        ;;
    sides) echo "warden bare otp" ;;
    run)
        side="${2:?side}" mode="${3:?mode}"
        read -r runs n_cast n_call n_sample < <(counts "$mode")
        export RUNS="$runs" N_CAST="$n_cast" N_CALL="$n_call" N_SAMPLE="$n_sample"
        case "$side" in
            warden)
                SIDE=supervised "$(warden_bin msg_compare)" 2>/dev/null | emit_metrics "$PAIR" warden "supervised/"
                ;;
            bare)
                SIDE=bare "$(warden_bin msg_compare)" 2>/dev/null | emit_metrics "$PAIR" bare "bare/"
                ;;
            otp)
                for s in 2 1; do
                    otp_run "$s" otpb_msg |
                        awk -v s="S$s" '$1 == "SUMMARY" {
                            for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
                            if ($2 == "gen_server_cast_throughput") print "METRIC", s "/cast", v["msgs_per_s"], "ops/s"
                            if ($2 == "gen_server_call_rtt_batch") print "METRIC", s "/call_rtt_batch", v["mean_rtt_ns"], "ns"
                            if ($2 == "gen_server_call_rtt_sampled") {
                                print "METRIC", s "/call_rtt_p50", v["p50_us"], "us"; print "METRIC", s "/call_rtt_p99", v["p99_us"], "us" } }' |
                        emit_metrics "$PAIR" otp
                done
                ;;
            *) echo "unknown side $side" >&2; exit 2 ;;
        esac
        ;;
    *) echo "usage: $0 setup MODE | sides | run SIDE MODE" >&2; exit 2 ;;
esac
