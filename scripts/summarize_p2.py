"""P2 Table I summary from a report's runs.csv: per-row means and p-values of P2's comparisons.

    python scripts/summarize_p2.py docs/results/p2-table1-cpu/runs.csv
"""

from __future__ import annotations

import csv
import statistics as st
import sys
from collections import defaultdict

from stripes.analysis.stats import compare
from stripes.experiments.report.runs import P2_METHODS
from stripes.experiments.sweep import load_sweep


def row_labels() -> dict[tuple[str, str], str]:
    """(method, context) as runs.csv spells them -> the P2 row label, from the p2-table1 sweep config."""
    out = {}
    for m in load_sweep("p2-table1")["methods"]:
        ctx = m["context"]
        out[(m["pe"], "+".join(ctx) if isinstance(ctx, list) else ctx)] = m["label"]
    return out


PAIRS = [("S S-RPE", "NoPE"), ("S S-RPE", "SPE"), ("F-StrIPE", "NoPE"), ("F-StrIPE", "SPE"),
         ("F-StrIPE", "S S-RPE"), ("F-StrIPE", "F-StrIPE:SFF"), ("F-StrIPE:C", "F-StrIPE:SFF:C"),
         ("F-StrIPE:C", "F-StrIPE"), ("F-StrIPE:C", "S S-RPE"), ("NoPE", "F-StrIPE:M"),
         ("NoPE", "F-StrIPE:P")]
# (column, bars, lower is better)
TESTS = [("test_bce", "16", True), ("test_bce", "64", True), ("onset_f1", "16", False),
         ("cs_at_0_5", "16", False), ("ndd_at_0_5", "16", True)]


def mean_std(v: list[float], scale: float = 1, nd: int = 2) -> str:
    v = [x * scale for x in v]
    return f"{st.mean(v):.{nd}f} ± {st.stdev(v):.{nd}f}" if len(v) > 1 else f"{v[0]:.{nd}f}"


def main(path: str) -> None:
    labels = row_labels()
    by: dict[str, dict[tuple[str, str], list[float]]] = defaultdict(lambda: defaultdict(list))
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k in ("test_bce", "onset_f1", "cs", "cs_at_0_5", "ndd_at_0_5", "train_seconds"):
            if r[k]:
                by[labels[(r["method"], r["context"])]][(k, r["bars"])].append(float(r[k]))
    print("| method | n | test BCE×100, 16 | BCE×100, 64 | onset F1 %, 16 | CS, 16 (val. thr.) | "
          "CS@0.5, 16 | NDD@0.5, 16 | train s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for m in sorted(by, key=P2_METHODS.index):
        d, secs = by[m], by[m][("train_seconds", "16")]
        print(f"| {m} | {len(d[('test_bce', '16')])} | {mean_std(d[('test_bce', '16')], 100)} | "
              f"{mean_std(d[('test_bce', '64')], 100)} | {mean_std(d[('onset_f1', '16')], 100, 1)} | "
              f"{mean_std(d[('cs', '16')], 1, 1)} | {mean_std(d[('cs_at_0_5', '16')], 1, 1)} | "
              f"{mean_std(d[('ndd_at_0_5', '16')], 1, 1)} | {min(secs):.0f}–{max(secs):.0f} |")
    print("| a vs b | BCE 16 | BCE 64 | onset F1 16 | CS@0.5 16 | NDD@0.5 16 |")
    print("|---|---|---|---|---|---|")
    for a, b in PAIRS:
        if a not in by or b not in by:
            continue
        cells = []
        for k, bars, lower in TESTS:
            x, y = by[a][(k, bars)], by[b][(k, bars)]
            if len(x) < 2 or len(y) < 2:
                cells.append("–")
                continue
            better = (st.mean(x) < st.mean(y)) == lower
            cells.append(f"{float(compare(x, y)['p']):.1g}" + ("" if better else " (behind)"))
        print(f"| {a} vs {b} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
