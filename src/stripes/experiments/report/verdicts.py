"""Statistics and verdicts: P1's significance marks over seeds and the verdict on each claim of P1 and P2.

Every "best method" a claim compares is chosen on validation (:func:`.runs.best_on_validation`); the test
scores only enter the comparison itself.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stripes.experiments.report.runs import (
    ALPHA,
    HIGHER,
    METRICS,
    P1_CONTEXTS,
    P1_T3_OTHERS,
    ROPES,
    Run,
    best_on_validation,
    scores,
)

# ------------------------------------------------------------------------------------------------ stats


def _marks(group: dict[Any, list[float]], higher: bool) -> dict[Any, str]:
    """P1's marks over the methods with >= 2 seeds (fewer: no test, no marks)."""
    from stripes.analysis.stats import significance_marks

    ok = {k: v for k, v in group.items() if len(v) >= 2}
    if len(ok) < 2:
        return {}
    with warnings.catch_warnings():  # Levene on constant samples divides by zero; stats handles the NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return significance_marks(ok, higher)


def _test(a: Sequence[float], b: Sequence[float]) -> float | None:
    from stripes.analysis.stats import compare

    if len(a) < 2 or len(b) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(compare(a, b)["p"])


@dataclass
class Comparison:
    """``a`` claimed better than ``b`` on one metric."""

    what: str
    a: list[float]
    b: list[float]
    higher: bool

    @property
    def p(self) -> float | None:
        return _test(self.a, self.b)

    @property
    def status(self) -> str:
        if not self.a or not self.b:
            return "missing"
        diff = float(np.mean(self.a) - np.mean(self.b)) * (1 if self.higher else -1)
        p = self.p
        if p is not None and p < ALPHA:
            return "holds" if diff > 0 else "reversed"
        return "within noise"

    def describe(self) -> str:
        if not self.a or not self.b:
            return f"{self.what}: no runs"
        p = self.p
        if p is None:
            ptxt = "no test (<2 seeds)"
        elif math.isnan(p):
            ptxt = "not testable (constant samples)"
        else:
            ptxt = f"p={p:.3g}"
        a, b = _short(np.mean(self.a)), _short(np.mean(self.b))
        return f"{self.what}: {a} vs {b} ({ptxt}, n={len(self.a)}/{len(self.b)}) → {self.status}"


def _short(x: float) -> str:
    """Two decimals for scores, four for small quantities such as BCE."""
    return f"{x:.2f}" if abs(x) >= 1 else f"{x:.4f}"


def verdict(comps: Sequence[Comparison]) -> str:
    """reproduced (all hold) / not reproduced (one significantly reversed) / not separable at this scale;
    when some comparisons had no runs, the verdict says on how many of them it rests."""
    ran = [c for c in comps if c.status != "missing"]
    if not ran:
        return "not evaluated (no runs)"
    part = "" if len(ran) == len(comps) else f" (on {len(ran)} of {len(comps)} comparisons; the rest not run)"
    if any(c.status == "reversed" for c in ran):
        return "not reproduced" + part
    if all(c.status == "holds" for c in ran):
        return "reproduced" + part
    return "not separable at this scale" + part


# ----------------------------------------------------------------------------------------------- claims


def _metrics(with_bce: bool) -> tuple[tuple[str, str], ...]:
    """The (metric, claim-title suffix) pairs a claim is judged on: CS, and the threshold-free BCE."""
    return (("cs", ""), ("bce", " — threshold-free test BCE")) if with_bce else (("cs", ""),)


def claims(groups: dict[tuple[str, str], list[Run]], mi: dict[str, float] | None,
           setting: str = "at_selected", with_bce: bool = True) -> list[dict[str, Any]]:
    """P1's claims with a verdict and the comparisons behind it, on the binarized metrics of ``setting``
    (``"at_selected"`` or ``"at_0.5"``) and, with ``with_bce``, on the threshold-free test BCE."""
    out: list[dict[str, Any]] = []
    p1_methods = ROPES + P1_T3_OTHERS
    if mi and all(c in mi for c in P1_CONTEXTS):
        order = sorted(P1_CONTEXTS, key=lambda c: -mi[c])
        ok = order == ["BIN", "KEY", "REP", "TIME"]
        out.append({"claim": "MI ranking BIN > KEY > REP > TIME (P1 Table I)",
                    "verdict": "reproduced" if ok else "not reproduced",
                    "details": [" > ".join(f"{c} {mi[c]:.4f}" for c in order) + " nats (plug-in)"]})

    def best_of(ctx: str, metric: str) -> tuple[str, list[float]] | None:
        """The method chosen on validation in ``ctx`` and its test scores."""
        m = best_on_validation(groups, ctx, p1_methods)
        if m is None:
            return None
        return m, scores(groups[(ctx, m)], setting, metric, 16)

    rope = best_on_validation(groups, "BIN", ROPES)
    for metric, suffix in _metrics(with_bce):
        name = "BCE" if metric == "bce" else "CS"
        comps = []
        ranking = ["BIN", "KEY", "REP", "TIME"]
        for hi, lo in [*zip(ranking, ranking[1:], strict=False), ("BIN", "TIME")]:  # + the two ends
            a, b = best_of(hi, metric), best_of(lo, metric)
            what = f"{name}@16 best {hi} ({a[0] if a else '-'}) vs best {lo} ({b[0] if b else '-'})"
            comps.append(Comparison(what, a[1] if a else [], b[1] if b else [], HIGHER[metric]))
        claim = f"Context ranking BIN > KEY > REP > TIME (best method per context, {name} at 16 bars){suffix}"
        out.append({"claim": claim, "verdict": verdict(comps), "details": [c.describe() for c in comps]})

        comps = []
        for other in P1_T3_OTHERS:
            for bars in (16, 64):
                a = scores(groups.get(("BIN", other), []), setting, metric, bars)
                b = scores(groups.get(("BIN", rope), []), setting, metric, bars) if rope else []
                what = f"BIN {name}@{bars}: {other} vs {rope or 'RoPE'}"
                comps.append(Comparison(what, a, b, HIGHER[metric]))
        out.append({"claim": f"RoPEPool and F-StrIPE₁ ahead of (the best) RoPE on BIN{suffix}",
                    "verdict": verdict(comps), "details": [c.describe() for c in comps]})

    comps = []
    for ctx in P1_CONTEXTS:
        for m in p1_methods:
            if (ctx == "REP" and m in ROPES) or not groups.get((ctx, m)):
                continue
            for metric in METRICS:
                a = scores(groups[(ctx, m)], setting, metric, 64)
                b = scores(groups[(ctx, m)], setting, metric, 16)
                comps.append(Comparison(f"{ctx} {m} {metric.upper()} 64 bars vs 16", a, b, HIGHER[metric]))
    v = verdict(comps)
    counts = defaultdict(int)
    for c in comps:
        counts[c.status] += 1
    summary = ", ".join(f"{k}: {n}" for k, n in sorted(counts.items()))
    order = {"reversed": 0, "within noise": 1, "holds": 2, "missing": 3}
    ranked = sorted(comps, key=lambda c: order[c.status])  # counter-evidence first
    out.append({"claim": "Scores improve from 16 to 64 bars (all but RoPE on REP)", "verdict": v,
                "details": [f"{len(comps)} comparisons ({summary})"] + [c.describe() for c in ranked]})
    return out




def p2_claims(groups: dict[tuple[str, str], list[Run]], setting: str = "at_selected",
              with_bce: bool = True) -> list[dict[str, Any]]:
    """P2's claims (docs/papers.md §11.4) with verdicts, on CS of ``setting`` and (``with_bce``) on the
    threshold-free BCE at 16 bars. Empty when no P2 method was run."""
    by_method: dict[str, list[Run]] = defaultdict(list)
    for (_, m), runs in groups.items():
        by_method[m].extend(runs)
    if not any(m in by_method for m in ("F-StrIPE", "F-StrIPE:C", "SPE", "S S-RPE", "F-StrIPE:SFF")):
        return []
    pairs = {
        "Structure helps: S S-RPE and F-StrIPE beat NoPE and SPE":
            [("S S-RPE", "NoPE"), ("S S-RPE", "SPE"), ("F-StrIPE", "NoPE"), ("F-StrIPE", "SPE")],
        "RFF ≫ SFF (F-StrIPE beats F-StrIPE:SFF, with all levels and with chords)":
            [("F-StrIPE", "F-StrIPE:SFF"), ("F-StrIPE:C", "F-StrIPE:SFF:C")],
        "Which context helps: chords alone (F-StrIPE:C) beat all levels; M or P alone are worse than NoPE":
            [("F-StrIPE:C", "F-StrIPE"), ("NoPE", "F-StrIPE:M"), ("NoPE", "F-StrIPE:P")],
    }
    out: list[dict[str, Any]] = []
    for metric, suffix in _metrics(with_bce):
        name = "BCE" if metric == "bce" else "CS"
        for claim, cmp in pairs.items():
            comps = [Comparison(f"{name}@16: {a} vs {b}", scores(by_method.get(a, []), setting, metric, 16),
                                scores(by_method.get(b, []), setting, metric, 16), HIGHER[metric])
                     for a, b in cmp]
            out.append({"claim": f"{claim}{suffix}", "verdict": verdict(comps),
                        "details": [c.describe() for c in comps]})
    comps = []
    for m, runs in sorted(by_method.items()):
        for metric in ("ssmd", "ndd"):
            comps.append(Comparison(f"{m} {metric.upper()} 64 bars vs 16", scores(runs, setting, metric, 64),
                                    scores(runs, setting, metric, 16), HIGHER[metric]))
    out.append({"claim": "SSMD and NDD (marginally) better at 64 bars for all methods (P2)",
                "verdict": verdict(comps), "details": [c.describe() for c in comps]})
    return out
