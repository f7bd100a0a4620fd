#!/usr/bin/env bash
# Helpers for the pair scripts of benches/compare (sourced, not run):
#   ROOT, OUT            the repository and target/compare/
#   OTP_SRC, OTP_EBIN    the OTP baseline's sources (../shared, read-only; OTP_SRC in the environment
#                        overrides it, e.g. from a git worktree elsewhere) and where they are compiled
#   warden_bench NAME    builds the release bench binary NAME (idempotent) and records its path
#   warden_bin NAME      prints the recorded path of bench binary NAME
#   otp_build            compiles the OTP baseline into $OTP_EBIN (idempotent)
#   otp_run SCHED MOD    runs `erl +S SCHED -run MOD main` (settings in the environment); its report
#                        (the modules write it to stderr) goes to stdout, the VM's stdout is dropped
# Pair scripts: see the header of benches/compare/run.sh for the protocol.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="$ROOT/target/compare"
OTP_SRC="${OTP_SRC:-$ROOT/../shared/anchors/otp-bench/src}"
OTP_EBIN="$OUT/otp-ebin"
mkdir -p "$OUT/bin"
# The panic hook prints a backtrace per crash when this is set: the benchmarks run without it.
unset RUST_BACKTRACE

warden_bench() {
    local name="$1" json
    json="$OUT/bin/$name.json"
    (cd "$ROOT" && cargo bench --no-run --bench "$name" --message-format=json) >"$json"
    python3 - "$json" "$name" >"$OUT/bin/$name.path" <<'PY'
import json, sys
path, name = sys.argv[1], sys.argv[2]
exe = None
for line in open(path):
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    t = msg.get("target") or {}
    if msg.get("reason") == "compiler-artifact" and t.get("name") == name and "bench" in t.get("kind", []):
        exe = msg.get("executable") or exe
if not exe:
    sys.exit(f"no executable for bench {name} in cargo's output")
print(exe)
PY
}

warden_bin() {
    local p
    p="$(cat "$OUT/bin/$1.path" 2>/dev/null || true)"
    if [[ -z "$p" || ! -x "$p" ]]; then
        echo "bench binary $1 not built: run setup first" >&2
        return 1
    fi
    echo "$p"
}

otp_build() {
    command -v erlc >/dev/null || { echo "erlc not found: install erlang-nox" >&2; return 1; }
    mkdir -p "$OTP_EBIN"
    local src beam
    # The baseline's modules, and Warden's own OTP twins of benchmarks the baseline lacks.
    for src in "$OTP_SRC"/*.erl "$ROOT"/benches/compare/otp/*.erl; do
        beam="$OTP_EBIN/$(basename "${src%.erl}").beam"
        if [[ ! -f "$beam" || "$src" -nt "$beam" ]]; then
            erlc -o "$OTP_EBIN" "$src"
        fi
    done
}

otp_run() {
    local sched="$1" mod="$2"
    erl -noshell +S "$sched" -pa "$OTP_EBIN" -run "$mod" main 2>&1 >/dev/null
}

# Reads a bench's output on stdin and prints its `METRIC <key> <value> <unit>` lines as
# `RESULT <pair> <side> <metric> <value> <unit>`. The metric name is the key with `/` turned
# into `_`, the runtime names turned into OTP's (`mt2` → `S2`, `mt2w` → `S2w`, `ct` → `S1`) and the prefix
# $3 (a regular expression, may be empty) removed. The bench's whole output goes to stderr,
# which run.sh keeps in the log.
emit_metrics() {
    local pair="$1" side="$2" strip="${3:-}"
    tee /dev/stderr | awk -v pair="$pair" -v side="$side" -v strip="$strip" '
        $1 == "METRIC" && NF == 4 {
            key = $2
            if (strip != "") sub("^" strip, "", key)
            key = "/" key "/"
            gsub("/mt2/", "/S2/", key); gsub("/mt2w/", "/S2w/", key); gsub("/ct/", "/S1/", key)
            gsub("^/|/$", "", key); gsub("/", "_", key)
            print "RESULT", pair, side, key, $3, $4
        }'
}

