#!/usr/bin/env python3
"""The table of benches/compare/run.sh: Warden side by side with the other sides of each pair.

Usage (run.sh calls it; python3 standard library only):
    report.py RESULTS --meta META --out TABLE.md [--benchmarks BENCHMARKS.md]

RESULTS holds the lines the pair scripts printed, from every round:
    RESULT <pair-id> <side> <metric> <value> <unit>
    NOTE <pair-id> <text>
    VERSION <pair-id> <text>
META holds "key value" lines from run.sh (date, machine, load_before, load_after, rustc, otp,
ractor, command, mode, rounds, failed).

For each (pair, metric) the table has one row per side other than `warden`: the median across
rounds of each side's value, and the ratio Warden / other. The ratio reads the same way for
every unit except `ops/s`: for time and size lower is better, so below 1 means Warden is
better; for `ops/s` (a rate) higher is better, so above 1 means Warden is better. A metric that
only Warden reports (say, a flatness ratio) gets a row with no other side.

With --benchmarks, the part of that file between the markers `<!-- compare:begin -->` and
`<!-- compare:end -->` is replaced by the table.

GOALS below gives each row its verdict. An entry is a dict:
    pair     the pair id, as in the RESULT lines
    metric   a glob (fnmatch) over the metric names of that pair
    vs       the other side the ratio is taken against ("otp", "bare", ...), or None to judge
             Warden's own value (for a metric only Warden reports)
    max/min  the verdict is "met" when the ratio (or the value, with vs None) is <= max / >= min
    goal     the words for the table's goal column
The first entry that matches a row applies; a row that no entry matches has no verdict.
"""

import argparse
import datetime
import fnmatch
import re
import statistics
import sys
from collections import OrderedDict

GOALS = [
    # 1. Restart latency: at or below OTP.
    {"pair": "restart", "metric": "*", "vs": "otp", "max": 1.0, "goal": "<= OTP"},
    # 2. Crash storm: flat (last 1,000 restarts' p50 / first 1,000's), and below OTP's storm figures.
    {"pair": "storm", "metric": "*_last_over_first", "vs": None, "max": 1.25, "goal": "flat (<= 1.25)"},
    {"pair": "storm", "metric": "*", "vs": "otp", "max": 1.0, "goal": "<= OTP"},
    # 3. Escalation: at or below OTP.
    {"pair": "escalation", "metric": "*", "vs": "otp", "max": 1.0, "goal": "<= OTP"},
    # 4. Messaging: within 5% of bare ractor (rates: >= 0.95 of bare; latencies: <= 1.05 of bare).
    {"pair": "messaging", "metric": "*", "vs": "bare", "min": 0.95, "unit": "ops/s", "goal": "within 5% of bare"},
    {"pair": "messaging", "metric": "*", "vs": "bare", "max": 1.05, "goal": "within 5% of bare"},
    # 5. 100,000 supervised children: memory per child at or below OTP's.
    #    The supervisor's own bookkeeping per child within 2x OTP's (issue 11), for each twin:
    #    DynamicSupervisor vs simple_one_for_one, Supervisor::start_child vs one_for_one's; and one
    #    start_child's p99 at or below OTP's.
    {"pair": "spawn", "metric": "*supervisor_bytes_per_child", "vs": "otp", "max": 2.0, "goal": "<= 2x OTP"},
    {"pair": "spawn", "metric": "*bytes_per_child", "vs": "otp", "max": 1.0, "goal": "<= OTP"},
    {"pair": "spawn", "metric": "op_p99*", "vs": "otp", "max": 1.0, "goal": "<= OTP"},
    # 6. Rust peers (ractor-supervisor, kameo): no goal, an honest table (BENCHMARKS.md, "Rust peers").
    # 7. Fan-out to 1,000 agents at 100 ms: within 1.1x the ideal wall time, and at least 10x
    #    faster than AgentScope (its per-agent and its shared mode) on the same fake server.
    # 8. Across processes: a remote ask at or below OTP's; failover within 2 s.
    {"pair": "dist", "metric": "ask_rtt_p50", "vs": "otp", "max": 1.0, "goal": "<= OTP"},
    {"pair": "dist", "metric": "failover_max", "vs": None, "max": 2000.0, "goal": "<= 2 s"},
    {"pair": "fanout", "metric": "warden_over_ideal_n1000", "vs": None, "max": 1.1, "goal": "<= 1.1 x ideal"},
    {"pair": "fanout", "metric": "wall_n1000", "vs": "agentscope", "max": 0.1, "goal": ">= 10x faster"},
    {"pair": "fanout", "metric": "wall_n1000", "vs": "agentscope_shared", "max": 0.1, "goal": ">= 10x faster"},
]

HIGHER_IS_BETTER = {"ops/s"}
UNIT_WORDS = {"us": "µs"}


def parse(path):
    """The RESULT values by (pair, metric, side), with units, notes and versions, in first-seen order."""
    values = OrderedDict()
    units = {}
    sides = OrderedDict()
    notes = OrderedDict()
    versions = OrderedDict()
    bad = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            kind = parts[0]
            if kind == "RESULT":
                if len(parts) != 6:
                    bad.append(f"{path}:{n}: {line.strip()}")
                    continue
                _, pair, side, metric, value, unit = parts
                try:
                    v = float(value)
                except ValueError:
                    bad.append(f"{path}:{n}: {line.strip()}")
                    continue
                values.setdefault((pair, metric), OrderedDict()).setdefault(side, []).append(v)
                units[(pair, metric)] = unit
                sides.setdefault(pair, OrderedDict())[side] = True
            elif kind in ("NOTE", "VERSION") and len(parts) >= 3:
                target = notes if kind == "NOTE" else versions
                target.setdefault(parts[1], OrderedDict())[line.split(None, 2)[2].strip()] = True
    return values, units, sides, notes, versions, bad


def goal_for(pair, metric, vs, unit):
    for g in GOALS:
        if g["pair"] != pair or not fnmatch.fnmatchcase(metric, g["metric"]):
            continue
        if g["vs"] != vs:
            continue
        if "unit" in g and g["unit"] != unit:
            continue
        return g
    return None


def verdict(g, x):
    if g is None or x is None:
        return ""
    ok = True
    if "max" in g:
        ok = ok and x <= g["max"]
    if "min" in g:
        ok = ok and x >= g["min"]
    return "met" if ok else "**missed**"


def number(v, unit):
    a = abs(v)
    if a >= 1e6 and unit == "ops/s":
        return f"{v / 1e6:.2f} M"
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt(v, unit):
    if v is None:
        return "—"
    return f"{number(v, unit)} {UNIT_WORDS.get(unit, unit)}".replace(" M ops/s", " M/s")


def spread(vals, unit):
    if len(vals) < 2:
        return ""
    return f" ({number(min(vals), unit)}–{number(max(vals), unit)})"


def table(values, units, sides):
    rows = [
        "| pair | metric | Warden | vs | other | Warden ÷ other | goal | verdict |",
        "|---|---|---:|---|---:|---:|---|---|",
    ]
    for (pair, metric), by_side in values.items():
        unit = units[(pair, metric)]
        w = by_side.get("warden")
        wm = statistics.median(w) if w else None
        others = [s for s in sides[pair] if s != "warden" and s in by_side]
        if not others:
            g = goal_for(pair, metric, None, unit)
            rows.append(
                f"| {pair} | {metric} | {fmt(wm, unit)}{spread(w or [], unit)} | — | — | — | "
                f"{g['goal'] if g else ''} | {verdict(g, wm)} |"
            )
            continue
        for other in others:
            o = by_side[other]
            om = statistics.median(o)
            ratio = wm / om if wm is not None and om else None
            g = goal_for(pair, metric, other, unit)
            r = f"{ratio:.2f}" if ratio is not None else "—"
            rows.append(
                f"| {pair} | {metric} | {fmt(wm, unit)}{spread(w or [], unit)} | {other} | "
                f"{fmt(om, unit)}{spread(o, unit)} | {r} | {g['goal'] if g else ''} | {verdict(g, ratio)} |"
            )
    return "\n".join(rows)


def read_meta(path):
    meta = OrderedDict()
    failed = []
    if path:
        with open(path, encoding="utf-8") as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition(" ")
                if k == "failed":
                    failed.append(v)
                elif k:
                    meta[k] = v
    return meta, failed


def document(values, units, sides, notes, versions, meta, failed):
    m = meta.get
    lines = []
    lines.append(
        f"Measured {m('date', datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'))}, "
        f"{m('mode', 'full')} mode, {m('rounds', '?')} round(s), each pair's sides interleaved."
    )
    lines.append("")
    lines.append(f"* Machine: {m('machine', 'unknown')}; load average (1, 5, 15 min) "
                 f"before {m('load_before', '?')}, after {m('load_after', '?')}.")
    vs = [m("rustc", "rustc ?"), m("otp", "OTP ?"), f"ractor {m('ractor', '?')}"]
    for pair, texts in versions.items():
        vs.extend(f"{t} ({pair})" for t in texts)
    lines.append("* Versions: " + "; ".join(vs) + ".")
    lines.append(f"* Command: `{m('command', 'bash benches/compare/run.sh')}`")
    lines.append("* A figure is the median across rounds of each round's figure (the range across "
                 "rounds in brackets); ratio = Warden ÷ other: below 1 is better for Warden, except for "
                 "`ops/s` (a rate), where above 1 is better.")
    if m("mode") == "quick":
        lines.append("* **Quick mode**: small counts and one round, to check that every pair runs; "
                     "the figures and verdicts are not meaningful.")
    for f in failed:
        lines.append(f"* **Failed**: {f}")
    lines.append("")
    lines.append(table(values, units, sides))
    if notes:
        lines.append("")
        lines.append("Notes:")
        lines.append("")
        for pair, texts in notes.items():
            for t in texts:
                lines.append(f"* {pair}: {t}")
    return "\n".join(lines) + "\n"


def rewrite(benchmarks, body):
    with open(benchmarks, encoding="utf-8") as f:
        text = f.read()
    pat = re.compile(r"(<!-- compare:begin -->\n).*?(<!-- compare:end -->)", re.S)
    if not pat.search(text):
        sys.exit(f"{benchmarks}: no <!-- compare:begin --> ... <!-- compare:end --> markers")
    text = pat.sub(lambda mo: mo.group(1) + body + mo.group(2), text, count=1)
    with open(benchmarks, "w", encoding="utf-8") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results")
    ap.add_argument("--meta")
    ap.add_argument("--out")
    ap.add_argument("--benchmarks")
    a = ap.parse_args()
    values, units, sides, notes, versions, bad = parse(a.results)
    meta, failed = read_meta(a.meta)
    for b in bad:
        print(f"malformed line: {b}", file=sys.stderr)
    body = document(values, units, sides, notes, versions, meta, failed)
    print(body)
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(body)
    if a.benchmarks:
        rewrite(a.benchmarks, body)
    if bad:
        sys.exit(1)


if __name__ == "__main__":
    main()
