"""Report section of question 2, "can a learned structure beat the hand-made chroma?": runs whose positions
go through a context learner (``model.context_learner``; context label ``BIN:linear`` and the like) beside
the same method on the hand-made context at the same recipe (equal steps), with p-values and the learner's
parameter count next to the model's."""

from __future__ import annotations

import math
from typing import Any

from stripes.experiments.report.quality import _fmt, _p, _vals
from stripes.experiments.report.runs import Run, mean_val_bce
from stripes.experiments.report.verdicts import _test

# (label, metric, setting, scale, lower is better, bars)
MEASURES = (("test BCE×100, 16", "bce", "at_selected", 100.0, True, 16),
            ("BCE×100, 64", "bce", "at_selected", 100.0, True, 64),
            ("onset F1 %, 16", "onset_f1", "at_selected", 100.0, False, 16),
            ("CS@0.5, 16", "cs", "at_0.5", 1.0, False, 16))
N_CHROMAS = 166  # distinct chroma vectors of the POP909 chord table (docs/papers.md §7): rows that can move


def learned_groups(groups: dict[tuple[str, str], list[Run]]) -> dict[str, list[tuple[str, str]]]:
    """Per hand-made context (``BIN``), the learned contexts run (``BIN:linear``, ...), {} when none."""
    out: dict[str, list[tuple[str, str]]] = {}
    for ctx, m in groups:
        if ":" in ctx:
            out.setdefault(ctx.split(":", 1)[0], []).append((ctx, m))
    return out


def parameter_counts(config: dict[str, Any]) -> tuple[int, int, int]:
    """(model parameters, learner parameters, learner parameters that can move) of a run's config."""
    from stripes.config import RunConfig
    from stripes.data.contexts import context_dim
    from stripes.models import build_model
    from stripes.models.context_learner import ChordEmbedding

    cfg = RunConfig.from_dict(config)
    model = build_model(cfg, context_dim(cfg.contexts))
    total = sum(p.numel() for p in model.parameters())
    learner = model.context_learner
    n = sum(p.numel() for p in learner.parameters()) if learner is not None else 0
    moving = min(n, N_CHROMAS * 12) if isinstance(learner, ChordEmbedding) else n
    return total, n, moving


def _learner(ctx: str) -> str:
    return ctx.split(":", 1)[1] if ":" in ctx else "none (hand-made)"


def _paired(runs: list[Run], ref: list[Run], metric: str, setting: str, scale: float,
            bars: int) -> float | None:
    """Paired t-test p of a learned context against its hand-made twin over the seeds both have (None
    below 2 pairs or when untestable)."""
    from stripes.analysis.stats import compare_paired

    def by_seed(rs: list[Run]) -> dict[int, float]:
        out = {}
        for r in rs:
            v = _vals([r], metric, setting, scale, bars)
            if v:
                out[r.seed] = v[0]
        return out

    a, b = by_seed(runs), by_seed(ref)
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        return None
    p = compare_paired([a[s] for s in seeds], [b[s] for s in seeds])["p"]
    return None if math.isnan(p) else float(p)


def q2_section(groups: dict[tuple[str, str], list[Run]]) -> list[str]:
    """Markdown lines of the Q2 section; [] without runs of a context learner."""
    learned = learned_groups(groups)
    if not learned:
        return []
    md = ["## Q2 — a learned structure against the hand-made chroma", "",
          "Each learned context maps the hand-made positions through a small module trained end to end "
          "(`model.context_learner`: linear `W p + b`, residual MLP, or one free vector per chord chroma "
          "added to it), initialised as the identity, so at step 0 every model equals its hand-made twin of "
          "the same seed; all runs of a method share the recipe (equal steps). Mean ± std over seeds; "
          "p: Levene then Student / Welch against the hand-made context of the same method; ‡ = better "
          "with p < 0.05; paired: the paired t-test over the seeds both have (a learner run and its "
          "hand-made twin start from the same weights).", ""]
    shares: dict[str, float] = {}
    for base, cells in sorted(learned.items()):
        methods = sorted({m for _, m in cells})
        for m in methods:
            ref = groups.get((base, m), [])
            rows = [(base, ref)] + [(c, groups[(c, mm)]) for c, mm in sorted(cells) if mm == m]
            md += [f"### {m} on {base}", "",
                   "| context learner | seeds | " + " | ".join(x[0] for x in MEASURES)
                   + " | val BCE×100 | learner params (moving) / model |",
                   "|---|---|" + "---|" * len(MEASURES) + "---|---|"]
            for ctx, runs in rows:
                if not runs:
                    md.append(f"| {_learner(ctx)} | 0 | " + " | ".join("–" for _ in MEASURES) + " | – | – |")
                    continue
                cols = []
                for _, metric, setting, scale, lower, bars in MEASURES:
                    v = _vals(runs, metric, setting, scale, bars)
                    cell = _fmt(v)
                    if ctx != base and ref:
                        r = _vals(ref, metric, setting, scale, bars)
                        p = _test(v, r)
                        better = v and r and ((sum(v) / len(v) < sum(r) / len(r)) == lower)
                        cell += f" (p {_p(p)}{' ‡' if p is not None and p < 0.05 and better else ''}"
                        pp = _paired(runs, ref, metric, setting, scale, bars)
                        cell += f"; paired {_p(pp)})" if pp is not None else ")"
                    cols.append(cell)
                total, n, moving = parameter_counts(runs[0].config)
                if n:
                    shares[_learner(ctx)] = 100.0 * moving / total
                params = "0" if n == 0 else f"{n:,} ({moving:,})"
                md.append(f"| {_learner(ctx)} | {len(runs)} | " + " | ".join(cols)
                          + f" | {100 * mean_val_bce(runs):.2f} | {params} / {total:,} |")
            md.append("")
    md += ["Extra parameters that can move, as a share of the model's: "
           + ", ".join(f"{k} {v:.2f} %" for k, v in sorted(shares.items()))
           + ". The chord embedding stores 4096 × 12 values but only the rows of chromas present in the data "
           f"(at most {N_CHROMAS}) ever receive a gradient.", ""]
    return md

