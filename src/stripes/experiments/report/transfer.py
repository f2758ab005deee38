"""Report section of question 4, "does the ranking transfer to a second task?": P1 Table III's grid trained on
the inverse task (``task = "melody"``: the melody from the piano, :mod:`stripes.data.melody`), and the two
rankings of melody harmonization asked about again, with their p-values: BIN ≫ TIME (per method) and
RoPEPool ≥ RoPE (per context)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from stripes.analysis.stats import anova_two_way, compare_groups, compare_paired
from stripes.experiments.report.quality import _fmt
from stripes.experiments.report.runs import (
    ALPHA,
    HIGHER,
    P1_CONTEXTS,
    P1_T3_OTHERS,
    ROPES,
    Run,
    best_on_validation,
    scores,
)
from stripes.experiments.report.verdicts import Comparison, verdict

# (column title, metric, setting, bars, scale): the threshold-free BCE first (the verdicts rest on it), then
# note-onset F1 at the binarization chosen on validation and CS at P1's fixed threshold
COLUMNS = (("BCE×100, 16", "bce", "at_selected", 16, 100.0), ("BCE×100, 64", "bce", "at_selected", 64, 100.0),
           ("onset F1 %, 16", "onset_f1", "at_selected", 16, 100.0), ("CS@0.5, 16", "cs", "at_0.5", 16, 1.0))
HARMONIZATION_ORDER = ("BIN", "KEY", "REP", "TIME")  # P1 Table I's MI order, P1's context ranking

PROTOCOL = """\
The inverse of melody harmonization on the same data: **input = the PIANO track's roll** (T, 128; the bridge
is left out: it is a second melodic line, not accompaniment, and much of it plays where the melody rests),
**target = the MELODY roll**, BCE. Windows, songs, splits, window starts and lengths and the context of every
tick are those of the harmonization runs (the same prepared arrays, read through
`stripes.data.melody.MelodyDataset`); the chords reach the model only through the positions, as there.
Binarization is chosen on validation by onset F1, as for harmonization, over the same thresholds and merges
and, because a melody is monophonic, also over the monophonic decoding (the most probable pitch of each tick
when it passes the threshold). Every choice (RoPE variant, best method per context) is made on mean
validation BCE.

Which of P1's metrics mean something for a monophonic target: **CS** (onset chroma per half bar) and
**SSMD** (its self-similarity) compare pitch content and repetition, and apply as they are; **GS** (onset
presence per quarter note) is the melody's rhythm and applies; **NDD** degenerates: per 16th it compares how
many (pitch, tick) cells sound in the prediction and the target, whatever their pitches, and extra notes are
free; for a target of (99 % of the time) one note per tick that is close to the share of the melody's sounding
time the prediction leaves silent (100 − voicing recall, counted per 16th), so a dense or polyphonic guess
scores well — read it only beside onset F1. **Note-onset F1** (pitch and onset must match) is the most
direct score of a melody and, with the threshold-free BCE, what the verdicts below rest on.
"""


def _p(c: Comparison) -> str:
    p = c.p
    if p is None or not np.isfinite(p):
        return "–"
    txt = f"{p:.2g}" if p >= 1e-3 else f"{p:.0e}"
    return txt + (" (reversed)" if c.status == "reversed" else "")


def _comparisons(a: Sequence[Run], b: Sequence[Run], what: str) -> list[Comparison]:
    """One :class:`Comparison` per column of ``a`` (claimed better) against ``b``."""
    return [Comparison(f"{what} {title}", [v * scale for v in scores(a, setting, metric, bars)],
                       [v * scale for v in scores(b, setting, metric, bars)], HIGHER[metric])
            for title, metric, setting, bars, scale in COLUMNS]


def _row(label: str, a: Sequence[Run], b: Sequence[Run], comps: Sequence[Comparison]) -> str:
    cells = []
    for comp in comps:
        cells.append(f"{_fmt(comp.a)} / {_fmt(comp.b)} | {_p(comp)}")
    return f"| {label} | {len(a)}/{len(b)} | " + " | ".join(cells) + " |"


def _head(first: str) -> list[str]:
    cols = " | ".join(f"{title} | p" for title, *_ in COLUMNS)
    return [f"| {first} | n | {cols} |", "|" + "---|" * (2 + 2 * len(COLUMNS))]


def _gain(a: Sequence[Run], b: Sequence[Run]) -> str:
    """Relative test BCE gain of a over b at 16 bars, in % of b."""
    va, vb = scores(a, "at_selected", "bce", 16), scores(b, "at_selected", "bce", 16)
    if not va or not vb:
        return "–"
    return f"{100.0 * (np.mean(vb) - np.mean(va)) / np.mean(vb):.1f} %"


def _ge_verdict(behind: int, ahead: int, noise: int) -> str:
    """Verdict on a "≥" claim from its comparisons: behind anywhere -> it does not hold; ahead somewhere and
    behind nowhere -> it holds; nothing separable -> it is only not contradicted (a non-significant test
    shows no "≥")."""
    if behind:
        return "does not hold"
    return "holds" if ahead else "not contradicted, nothing separable"


def _differ(vals: dict[str, list[float]]) -> str:
    """"; contexts A, B, ... differ: p = ... (test)" (or "do not differ significantly") from a test across
    the contexts with >= 2 seeds (one-way ANOVA, or Alexander-Govern on unequal variances), or "" when
    fewer than two contexts have them."""
    seeded = {c: v for c, v in vals.items() if len(v) >= 2}
    if len(seeded) < 2:
        return ""
    r = compare_groups(seeded)
    if r["test"] == "not testable":
        return f"; contexts {', '.join(seeded)}: not testable (no spread over seeds)"
    sig = "differ" if r["p"] < ALPHA else "do not differ significantly"
    return f"; contexts {', '.join(seeded)} {sig}: p = {r['p']:.2g} ({r['test']})"


def q4_section(groups: dict[tuple[str, str], list[Run]]) -> list[str]:
    """Markdown lines of the Q4 section for the groups of melody-task runs ([] when none of P1's cells)."""
    if not any(groups.get((c, m)) for c in P1_CONTEXTS for m in ROPES + P1_T3_OTHERS):
        return []
    md = ["## Q4 — does the ranking transfer to a second task? (the melody from the piano)", "", PROTOCOL]
    methods = [m for m in ("RoPE(C)", "F-StrIPE₁", "RoPEPool")
               if groups.get(("BIN", m)) or groups.get(("TIME", m))]

    # --- BIN >> TIME, per method and with the method of each context chosen on validation
    md += ["### BIN ≫ TIME?", "",
           "BIN / TIME, mean ± std over seeds, two-sided p (Levene, then Student or Welch; P1's procedure); "
           "*reversed*: significant against the claim.", ""]
    md += _head("method")
    bin_time: list[Comparison] = []
    for m in methods:
        a, b = groups.get(("BIN", m), []), groups.get(("TIME", m), [])
        comps = _comparisons(a, b, f"{m}: BIN vs TIME")
        bin_time += comps[:2]
        md.append(_row(m, a, b, comps))
    best_bin = best_on_validation(groups, "BIN", ROPES + P1_T3_OTHERS)
    best_time = best_on_validation(groups, "TIME", ROPES + P1_T3_OTHERS)
    if best_bin and best_time:
        a, b = groups[("BIN", best_bin)], groups[("TIME", best_time)]
        md.append(_row(f"best on validation ({best_bin} / {best_time})", a, b,
                       _comparisons(a, b, "best BIN vs best TIME")))
    md.append("")
    gains = "; ".join(f"{m} {_gain(groups.get(('BIN', m), []), groups.get(('TIME', m), []))}"
                      for m in methods)
    md += [f"- **BIN ≫ TIME (test BCE at 16 and 64 bars, every method): *{verdict(bin_time)}*.** Test BCE "
           f"gain of BIN over TIME at 16 bars: {gains}.", ""]

    # --- RoPEPool >= RoPE, per context
    md += ["### RoPEPool ≥ RoPE?", "",
           "RoPEPool / the context's RoPE (the variant with the lowest mean validation BCE among those run; "
           "the sweep runs P1's choice: C, and B on REP).", ""]
    md += _head("context")
    behind: list[Comparison] = []
    ahead: list[Comparison] = []
    noise: list[Comparison] = []
    for ctx in HARMONIZATION_ORDER:
        rope = best_on_validation(groups, ctx, ROPES)
        a = groups.get((ctx, "RoPEPool"), [])
        if rope is None or not a:
            continue
        b = groups[(ctx, rope)]
        comps = _comparisons(a, b, f"{ctx}: RoPEPool vs {rope}")
        md.append(_row(f"{ctx} ({rope})", a, b, comps))
        for c in comps[:2]:
            (behind if c.status == "reversed" else ahead if c.status == "holds" else noise).append(c)
    if md[-1].startswith("|---"):  # no context has both RoPEPool and a RoPE run yet
        md[-2:] = ["No context has both a RoPEPool and a RoPE run yet."]
    md.append("")
    if behind or ahead or noise:
        ge = _ge_verdict(len(behind), len(ahead), len(noise))
        where = "; ".join(c.what for c in behind) or "none"
        md += [f"- **RoPEPool ≥ RoPE (test BCE at 16 and 64 bars, every context): *{ge}*** — RoPEPool "
               f"significantly behind in {len(behind)}, ahead in {len(ahead)}, within noise in {len(noise)} "
               f"of {len(behind) + len(ahead) + len(noise)} comparisons (behind: {where}).",
               "- **RoPEPool ahead of RoPE on BIN (P1's claim, test BCE 16 and 64): "
               f"*{verdict([c for c in behind + ahead + noise if c.what.startswith('BIN')])}*.**", ""]

    # --- the whole context order, per method
    md += ["### Context order per method (mean test BCE at 16 bars, lower first)", "",
           "Melody harmonization's order (P1: MI and results) is BIN > KEY > REP > TIME; RoPE = the "
           "context's RoPE variant as above. p: do the contexts with >= 2 seeds differ at all (Levene, then "
           "one-way ANOVA or, on unequal variances, Alexander-Govern)? Pooled lines: the whole grid at once; "
           "*seeds as blocks* because the runs of one seed share the order of their training windows, so a "
           "seed can move every cell together; the paired lines compare within a seed.", ""]
    ropes = {c: best_on_validation(groups, c, ROPES) for c in P1_CONTEXTS}

    def cell(c: str, m: str, bars: int = 16) -> dict[int, float]:
        """Test BCE by seed of context c, method m ("RoPE": the context's variant)."""
        method = ropes[c] if m == "RoPE" else m
        runs = groups.get((c, method), []) if method else []
        return {r.seed: v[0] for r in runs if (v := scores([r], "at_selected", "bce", bars))}

    for m in ["RoPE"] + [m for m in methods if m not in ROPES]:
        vals = {c: list(cell(c, m).values()) for c in P1_CONTEXTS}
        vals = {c: v for c, v in vals.items() if v}
        if len(vals) < 2:
            continue
        order = sorted(vals, key=lambda c: float(np.mean(vals[c])))
        same = [c for c in HARMONIZATION_ORDER if c in vals] == order
        md.append(f"- {m}: " + " < ".join(f"{c} {100 * np.mean(vals[c]):.3f}" for c in order)
                  + f" (BCE×100) — {'the harmonization order' if same else 'differs from harmonization'}"
                  + _differ(vals))
    md += _pooled(cell, ["RoPE"] + [m for m in ("F-StrIPE₁", "RoPEPool") if m in methods])
    md += ["", f"Verdicts: *holds* / *reproduced* when every comparison has the claimed sign, p < {ALPHA}.",
           ""]
    return md


def _pooled(cell: Callable[[str, str, int], dict[int, float]], methods: list[str]) -> list[str]:
    """The context effect pooled over the methods, when the grid is complete (every cell with the same seeds):
    a two-way ANOVA (context x method, seeds as replicates), the same with the seeds as blocks (the runs of a
    seed share their data order), and BIN - TIME paired by (method, seed)."""
    out = []
    for bars in (16, 64):
        by_cell = {(c, m): cell(c, m, bars) for c in P1_CONTEXTS for m in methods}
        seeds = {tuple(sorted(v)) for v in by_cell.values()}
        if len(methods) < 2 or len(seeds) != 1 or len(next(iter(seeds))) < 2:
            sizes = sorted({len(v) for v in by_cell.values()})
            return out + [f"- Pooled over the methods, {bars} bars: needs the whole grid with the same "
                          f"seeds a cell (seeds per cell now: {', '.join(map(str, sizes))})."]
        order = next(iter(seeds))
        cells = {k: [v[s] for s in order] for k, v in by_cell.items()}
        names = (("A", "context"), ("B", "method"), ("AxB", "context × method"), ("block", "seed"))
        seed_means = " / ".join(f"{100 * np.mean([v[i] for v in cells.values()]):.3f}"
                                for i in range(len(order)))
        for blocks in (False, True):
            r = anova_two_way(cells, blocks=blocks)
            how = f"seeds as blocks, seed means {seed_means} BCE×100" if blocks else f"{r['n']} seeds a cell"
            if not np.isfinite(r["mse"]):
                out.append(f"- Pooled over the methods, test BCE at {bars} bars ({how}): not testable (the "
                           "terms explain every value, no error is left).")
                continue
            terms = "; ".join(f"{name} F({r[k]['df']}, {r['df_error']}) = {r[k]['F']:.2f}, "
                              f"p = {r[k]['p']:.2g}" for k, name in names if k in r)
            out.append(f"- Pooled over the methods, test BCE at {bars} bars (two-way ANOVA, context × "
                       f"method, {how}): {terms}.")
            if blocks:
                out.append(_contrast_line(bars, cells, methods, r))
        out.append(_paired_line(f"BIN − TIME at {bars} bars, paired by method and seed",
                                [v for m in methods for v in cells[("BIN", m)]],
                                [v for m in methods for v in cells[("TIME", m)]]))
        if "RoPEPool" in methods:
            out.append(_paired_line(f"RoPEPool − RoPE at {bars} bars, paired by context and seed",
                                    [v for c in P1_CONTEXTS for v in cells[(c, "RoPEPool")]],
                                    [v for c in P1_CONTEXTS for v in cells[(c, "RoPE")]]))
    return out


def _paired_line(what: str, a: list[float], b: list[float]) -> str:
    """One line: mean of a - b (x100), how many pairs have a lower, and the paired t-test."""
    x, y = [100 * v for v in a], [100 * v for v in b]
    d = [u - w for u, w in zip(x, y, strict=True)]
    r = compare_paired(x, y)
    test = (f"paired t-test p = {r['p']:.2g}" if np.isfinite(r["p"])
            else "no paired test (the same difference in every pair)")
    return (f"- {what} ({len(d)} pairs): {float(np.mean(d)):+.4f} BCE×100 on average, first lower in "
            f"{sum(v < 0 for v in d)}, equal in {sum(v == 0 for v in d)}; {test}.")


def _contrast_line(bars: int, cells: dict[tuple[str, str], list[float]], methods: list[str], r: dict) -> str:
    """BIN - TIME (means over methods and seeds) tested against the error of the blocked ANOVA ``r`` (which
    has an error left: the caller checks)."""
    from scipy import stats

    b = np.mean([cells[("BIN", m)] for m in methods])
    t = np.mean([cells[("TIME", m)] for m in methods])
    tv = float((b - t) / np.sqrt(r["mse"] * 2.0 / (len(methods) * r["n"])))
    p = float(2 * stats.t.sf(abs(tv), r["df_error"]))
    return (f"- BIN − TIME at {bars} bars against the blocked error (contrast of the ANOVA above): "
            f"{100 * (b - t):+.4f} BCE×100, t({r['df_error']}) = {tv:.2f}, p = {p:.2g}.")
