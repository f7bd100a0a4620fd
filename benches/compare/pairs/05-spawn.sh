#!/usr/bin/env bash
# Pair 5, N supervised children started one after another (100,000 in full mode): Warden's
# `DynamicSupervisor::start_child` (its simple_one_for_one; benches/spawn.rs section
# warden_dynamic, 2-worker multi-thread runtime) against OTP's `supervisor:start_child` into
# simple_one_for_one (otpb_spawn, `erl +S 2`).
# Metrics: total_ms, op_p50 / op_p99 (one start_child), bytes_per_child (Warden: live heap by a
# counting allocator; OTP: erlang:memory(total) delta), stop_ms (stop the supervisor with all its
# children), supervisor_bytes_per_child (Warden: start_child − a bare linked ractor actor; OTP:
# the supervisor process's own memory). The same figures for Warden's regular one_for_one
# `Supervisor::start_child(ChildSpec)` (section warden_start_child) are Warden-only rows
# `one_for_one_*`, against OTP's one_for_one `supervisor:start_child(Sup, Spec)` for its bytes
# (benches/compare/otp/otpw_one_for_one.erl: the shared baseline has no such module).
# op_p50_S2w / op_p99_S2w (and one_for_one_op_*_S2w): one start_child with Warden on
# warden::runtime::multi_thread() (2 workers that wait 100 us before they park), against the
# same `erl +S 2` figures, as the restart and escalation pairs' S2w rows.
# Protocol: benches/compare/run.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
PAIR=spawn

counts() {  # RUNS and N by mode
    if [[ "$1" == quick ]]; then echo "1 2000"; else echo "1 100000"; fi
}

case "${1:-}" in
    setup)
        warden_bench spawn
        otp_build
        echo "NOTE $PAIR bytes: Warden counts the live heap (requested bytes, a counting allocator), OTP the erlang:memory(total) delta after a GC; supervisor_bytes_per_child: Warden = start_child − a bare linked ractor actor, OTP = the simple_one_for_one supervisor's own memory; Warden's side is its DynamicSupervisor (simple_one_for_one), one_for_one_* rows are its regular Supervisor::start_child(ChildSpec), against OTP's one_for_one supervisor:start_child(Sup, Spec) with atom ids (otpw_one_for_one, Warden's module: the baseline has none)"
        ;;
    sides) echo "warden otp" ;;
    run)
        side="${2:?side}" mode="${3:?mode}"
        read -r runs n < <(counts "$mode")
        case "$side" in
            warden)
                RUNS="$runs" N="$n" SECTIONS=bare_linked,warden_start_child,warden_dynamic WARDEN_BENCH_RUNTIME=mt2,mt2w \
                    "$(warden_bin spawn)" 2>/dev/null | tee /dev/stderr |
                    sed -n -E -e 's|^METRIC warden_dynamic/mt2w/(op_p[0-9]+) |METRIC \1_S2w |p' \
                        -e 's|^METRIC warden_start_child/mt2w/(op_p[0-9]+) |METRIC one_for_one_\1_S2w |p' \
                        -e 's|^METRIC warden_dynamic/mt2/|METRIC |p' \
                        -e 's|^METRIC split/warden_dynamic/mt2/|METRIC |p' \
                        -e 's|^METRIC warden_start_child/mt2/|METRIC one_for_one_|p' \
                        -e 's|^METRIC split/warden_start_child/mt2/|METRIC one_for_one_|p' |
                    emit_metrics "$PAIR" warden
                ;;
            otp)
                RUNS="$runs" N="$n" RESTART=permanent otp_run 2 otpb_spawn |
                    awk '$1 == "SUMMARY" && $2 == "simple_one_for_one_start" {
                        for (i = 4; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
                        print "METRIC total_ms", v["total_ms"], "ms"
                        print "METRIC op_p50", v["start_child_p50_us"], "us"
                        print "METRIC op_p99", v["start_child_p99_us"], "us"
                        print "METRIC op_p50_S2w", v["start_child_p50_us"], "us"
                        print "METRIC op_p99_S2w", v["start_child_p99_us"], "us"
                        print "METRIC bytes_per_child", v["mem_total_per_child_B"], "B"
                        print "METRIC stop_ms", v["shutdown_ms"], "ms"
                        print "METRIC supervisor_bytes_per_child", v["sup_proc_mem_per_child_B"], "B" }' |
                    emit_metrics "$PAIR" otp
                N="$n" IDTYPE=atom otp_run 2 otpw_one_for_one |
                    awk '$1 == "SUMMARY" && $2 == "one_for_one_start_child" {
                        for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
                        print "METRIC one_for_one_bytes_per_child", v["mem_total_per_child_B"], "B"
                        print "METRIC one_for_one_supervisor_bytes_per_child", v["sup_proc_mem_per_child_B"], "B" }' |
                    emit_metrics "$PAIR" otp
                ;;
            *) echo "unknown side $side" >&2; exit 2 ;;
        esac
        ;;
    *) echo "usage: $0 setup MODE | sides | run SIDE MODE" >&2; exit 2 ;;
esac
