#!/usr/bin/env bash
# Side by side: Warden against Erlang/OTP, bare ractor and other frameworks, in one run on one
# machine, each pair interleaved (A B A B ...) over several rounds. See BENCHMARKS.md, "Side by side".
#
#   bash benches/compare/run.sh                 # full: 5 rounds, rewrites BENCHMARKS.md's comparison section
#   bash benches/compare/run.sh --rounds 3      # full, 3 rounds
#   bash benches/compare/run.sh --quick         # smoke (CI): small counts, 1 round, table in target/compare/quick.md
#   bash benches/compare/run.sh --quick --only 01-restart   # some pairs only (comma-separated script names)
#
# Protocol of a pair script benches/compare/pairs/NN-name.sh (run in name order):
#   X.sh setup MODE        once per run (MODE: quick | full); builds/installs what it needs, idempotently
#   X.sh sides             prints its side names on one line, e.g. "warden otp"
#   X.sh run SIDE MODE     one measurement of one side; prints on stdout
#                            RESULT <pair-id> <side> <metric> <value> <unit>
#                            NOTE <pair-id> <text>        (a remark for the table)
#                            VERSION <pair-id> <text>     (a version to list with the table)
#                          everything else it prints is kept in the run's log only.
#   A script exits non-zero only on a real failure; so does a `run` that prints no RESULT line.
# Each round runs every pair's sides in turn, alternating which goes first (A B, then B A, ...).
# Output: target/compare/<mode>-<UTC time>/ (results.txt, one log per step), then report.py's table.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

MODE=full
ROUNDS=""
ONLY=""
CMD="bash benches/compare/run.sh${*:+ $*}"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) MODE=quick ;;
        --rounds) ROUNDS="${2:?--rounds needs a number}"; shift ;;
        --rounds=*) ROUNDS="${1#--rounds=}" ;;
        --only) ONLY="${2:?--only needs pair names}"; shift ;;
        -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [[ -z "$ROUNDS" ]]; then
    if [[ "$MODE" == quick ]]; then ROUNDS=1; else ROUNDS=5; fi
fi
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "--rounds must be a positive number" >&2; exit 2; }
# One `run` of one side may take this long before it counts as a failure.
if [[ "$MODE" == quick ]]; then STEP_TIMEOUT=300; else STEP_TIMEOUT=1800; fi

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
LOGDIR="$ROOT/target/compare/$MODE-$STAMP"
mkdir -p "$LOGDIR"
RESULTS="$LOGDIR/results.txt"
META="$LOGDIR/meta.txt"
: >"$RESULTS"
say() { echo "[compare $(date -u +%H:%M:%S)] $*" >&2; }
say "mode=$MODE rounds=$ROUNDS logs in ${LOGDIR#"$ROOT"/}"

# ---- what every pair needs -----------------------------------------------------------------
export CARGO_TERM_COLOR=never
if ! command -v erl >/dev/null 2>&1 || ! command -v erlc >/dev/null 2>&1; then
    say "installing erlang-nox (Erlang/OTP)"
    if [[ "$(id -u)" == 0 ]]; then SUDO=""; else SUDO="sudo"; fi
    { $SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y erlang-nox; } \
        >"$LOGDIR/install-erlang.log" 2>&1 || { cat "$LOGDIR/install-erlang.log" >&2; exit 1; }
fi
# The panic hook prints a backtrace per crash when this is set; the benchmarks run without it.
unset RUST_BACKTRACE

PAIRS=()
for p in "$HERE"/pairs/*.sh; do
    [[ -e "$p" ]] || continue
    name="$(basename "$p" .sh)"
    if [[ -n "$ONLY" && ",$ONLY," != *",$name,"* ]]; then continue; fi
    PAIRS+=("$name")
done
[[ ${#PAIRS[@]} -gt 0 ]] || { echo "no pair scripts in $HERE/pairs" >&2; exit 1; }

FAILED=()
declare -A SIDES=()
for name in "${PAIRS[@]}"; do
    say "$name: setup $MODE"
    if ! bash "$HERE/pairs/$name.sh" setup "$MODE" >"$LOGDIR/$name.setup.log" 2>&1; then
        say "$name: setup FAILED (log: ${LOGDIR#"$ROOT"/}/$name.setup.log)"
        tail -n 30 "$LOGDIR/$name.setup.log" >&2
        FAILED+=("$name: setup")
        continue
    fi
    grep -E '^(NOTE|VERSION) ' "$LOGDIR/$name.setup.log" >>"$RESULTS" || true
    SIDES[$name]="$(bash "$HERE/pairs/$name.sh" sides)"
    [[ -n "${SIDES[$name]}" ]] || { FAILED+=("$name: no sides"); unset 'SIDES[$name]'; }
done

# ---- machine and versions, before ------------------------------------------------------------
{
    echo "date $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine $(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1), nproc $(nproc), $(uname -sr)"
    echo "load_before $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "rustc $(rustc --version)"
    echo "otp $(erl -noshell -eval '{ok, V} = file:read_file(filename:join([code:root_dir(), "releases", erlang:system_info(otp_release), "OTP_VERSION"])), io:format("OTP ~s (erts ~s)", [string:trim(V), erlang:system_info(version)]), halt().' 2>/dev/null || echo unknown)"
    echo "ractor $(awk '/^name = "ractor"$/ {getline; gsub(/"/, "", $3); print $3; exit}' Cargo.lock)"
    echo "command $CMD"
    echo "mode $MODE"
    echo "rounds $ROUNDS"
} >"$META"

# ---- the rounds ----------------------------------------------------------------------------------
for ((round = 1; round <= ROUNDS; round++)); do
    for name in "${PAIRS[@]}"; do
        [[ -n "${SIDES[$name]:-}" ]] || continue
        read -r -a sides <<<"${SIDES[$name]}"
        if ((round % 2 == 0)); then
            # Even rounds: the other order (B A), so neither side always goes first.
            rev=()
            for ((i = ${#sides[@]} - 1; i >= 0; i--)); do rev+=("${sides[i]}"); done
            sides=("${rev[@]}")
        fi
        for side in "${sides[@]}"; do
            log="$LOGDIR/$name.r$round.$side.log"
            say "round $round/$ROUNDS $name $side"
            rc=0
            timeout "$STEP_TIMEOUT" bash "$HERE/pairs/$name.sh" run "$side" "$MODE" >"$log" 2>"$log.stderr" || rc=$?
            n="$(grep -c '^RESULT ' "$log" || true)"
            grep -E '^(RESULT|NOTE|VERSION) ' "$log" >>"$RESULTS" || true
            if [[ "$rc" != 0 || "$n" == 0 ]]; then
                say "$name $side: FAILED (exit $rc, $n RESULT lines; log: ${log#"$ROOT"/})"
                tail -n 20 "$log" "$log.stderr" >&2 || true
                FAILED+=("$name $side round $round (exit $rc, $n results)")
            fi
        done
    done
done
echo "load_after $(cut -d' ' -f1-3 /proc/loadavg)" >>"$META"
for f in "${FAILED[@]}"; do echo "failed $f" >>"$META"; done

# ---- the table -------------------------------------------------------------------------------------
if [[ "$MODE" == quick ]]; then
    python3 "$HERE/report.py" "$RESULTS" --meta "$META" --out "$ROOT/target/compare/quick.md"
elif [[ ${#FAILED[@]} -eq 0 && -z "$ONLY" ]]; then
    python3 "$HERE/report.py" "$RESULTS" --meta "$META" --out "$LOGDIR/table.md" --benchmarks "$ROOT/BENCHMARKS.md"
    say "BENCHMARKS.md's comparison section rewritten"
else
    # A partial run does not replace the published table.
    python3 "$HERE/report.py" "$RESULTS" --meta "$META" --out "$LOGDIR/table.md"
fi
if [[ ${#FAILED[@]} -gt 0 ]]; then
    say "FAILED: ${FAILED[*]}"
    exit 1
fi
say "done; logs in ${LOGDIR#"$ROOT"/}"
