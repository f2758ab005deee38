"""P1's significance marks (docs/papers.md §10.5): two-sided Levene, then Student's or Welch's t-test.

For each metric within a context, the method with the best mean gets
    "*"  when it differs significantly (p < alpha) from the next-best method,
    "†"  when it does not, but does differ from the third-best method,
    ""   otherwise; every other method gets "".
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

from stripes.errors import DataError


def compare(a: Sequence[float], b: Sequence[float], *, alpha: float = 0.05, center: str = "median") -> dict:
    """Two-sided test of equal means of samples a and b.

    Levene's test (``center``: scipy's default "median", i.e. Brown-Forsythe; "mean" is the original)
    decides equal variances (p >= alpha) -> Student's t-test, else Welch's. Returns
    {"p": t-test p-value, "test": "student" | "welch", "levene_p": float}. When both samples are constant
    (zero variance on both sides, e.g. identical or rounded scores) no t-test is defined: the result is
    ``{"p": nan, "test": "not testable", ...}`` and a difference of means, however it looks, decides nothing.
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or y.ndim != 1 or x.size < 2 or y.size < 2:
        raise DataError(f"each sample needs >= 2 values (one per seed), got sizes {x.size} and {y.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise DataError("samples contain NaN or inf")
    if np.ptp(x) == 0 and np.ptp(y) == 0:
        return {"p": float("nan"), "test": "not testable", "levene_p": float("nan")}
    with (
        warnings.catch_warnings()
    ):  # equal absolute deviations make Levene 0/0 (NaN): read as equal variances
        warnings.simplefilter("ignore", RuntimeWarning)
        lev = float(stats.levene(x, y, center=center).pvalue)
        lev = lev if math.isfinite(lev) else 1.0
        equal_var = lev >= alpha
        p = float(stats.ttest_ind(x, y, equal_var=equal_var).pvalue)
    if not math.isfinite(p):
        p = 1.0
    return {"p": p, "test": "student" if equal_var else "welch", "levene_p": lev}


def compare_paired(a: Sequence[float], b: Sequence[float]) -> dict:
    """Two-sided paired t-test of a[i] against b[i] (e.g. two models of the same seed that start from the same
    weights). Returns {"p": p-value, "test": "paired", "n": pairs, "mean_diff": mean of a - b}; when every
    difference is the same (a constant shift or none) no test is defined and p is NaN."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or x.size < 2:
        raise DataError(f"a paired test needs two equal-length samples of >= 2 values, got sizes {x.size} "
                        f"and {y.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise DataError("samples contain NaN or inf")
    d = x - y
    if np.ptp(d) == 0:
        return {"p": float("nan"), "test": "not testable", "n": int(d.size), "mean_diff": float(d.mean())}
    p = float(stats.ttest_rel(x, y).pvalue)
    return {"p": p, "test": "paired", "n": int(d.size), "mean_diff": float(d.mean())}


def compare_groups(samples: Mapping[str, Sequence[float]], *, alpha: float = 0.05,
                   center: str = "median") -> dict:
    """Two-sided test that k >= 2 groups (e.g. the four contexts of one method, one value per seed) share a
    mean: P1's two-sample procedure carried over to k groups.

    Levene's test across the groups decides equal variances (p >= alpha) -> one-way ANOVA (F test), else the
    Alexander-Govern test (no equal-variance assumption; scipy's heteroscedastic one-way test). Returns
    {"p": float, "test": "anova" | "alexander-govern" | "not testable", "levene_p": float, "k": groups}.
    When every group is constant no test is defined and p is NaN (as in :func:`compare`). When Levene finds
    unequal variances but some group is constant, Alexander-Govern is undefined and the ANOVA is used
    (reported as "anova", with the Levene p beside it).
    """
    groups = [np.asarray(v, dtype=np.float64) for v in samples.values()]
    if len(groups) < 2 or any(g.ndim != 1 or g.size < 2 for g in groups):
        raise DataError(f"a test across groups needs >= 2 groups of >= 2 values each, got sizes "
                        f"{[int(np.size(g)) for g in groups]} for {list(samples)}")
    if not all(np.all(np.isfinite(g)) for g in groups):
        raise DataError(f"samples contain NaN or inf ({list(samples)})")
    k = len(groups)
    if all(np.ptp(g) == 0 for g in groups):
        return {"p": float("nan"), "test": "not testable", "levene_p": float("nan"), "k": k}
    with warnings.catch_warnings():  # as in compare: Levene's 0/0 reads as equal variances
        warnings.simplefilter("ignore", RuntimeWarning)
        lev = float(stats.levene(*groups, center=center).pvalue)
        lev = lev if math.isfinite(lev) else 1.0
        if lev >= alpha or any(np.ptp(g) == 0 for g in groups):  # A-G needs a variance in every group
            p, test = float(stats.f_oneway(*groups).pvalue), "anova"
        else:
            p, test = float(stats.alexandergovern(*groups).pvalue), "alexander-govern"
    return {"p": p if math.isfinite(p) else 1.0, "test": test, "levene_p": lev, "k": k}


def anova_two_way(cells: Mapping[tuple[str, str], Sequence[float]], *, blocks: bool = False) -> dict:
    """Two-way ANOVA with interaction of a balanced, fully crossed design (e.g. context x method, one value
    per seed): do the levels of the first factor differ, pooled over the second, and the reverse?

    ``cells[(a, b)]`` holds the n >= 2 replicates of level a of factor A and level b of factor B; every
    combination must be there with the same n. Sums of squares of the balanced design: A, B, A x B and the
    within-cell error on a*b*(n-1) degrees of freedom. Returns {"A": {"F", "df", "p"}, "B": {...},
    "AxB": {...}, "df_error": int, "mse": error mean square, "levels": ([A levels], [B levels]),
    "n": replicates}.

    ``blocks=True``: replicate i of every cell belongs to block i (e.g. seed i: the runs of one seed share the
    data order), a randomized complete block design. The block sum of squares, a*b * sum_i (block mean_i -
    grand mean)^2 on n-1 degrees of freedom, leaves the error, which is then on (a*b-1)(n-1) degrees of
    freedom, and is returned as "block"; A, B and A x B are tested against the smaller error (which assumes
    no block x treatment interaction: a seed shifts every cell alike). When the terms
    explain every value (no error left but rounding) nothing is testable: each F and p is NaN.
    """
    a_levels = list(dict.fromkeys(k[0] for k in cells))
    b_levels = list(dict.fromkeys(k[1] for k in cells))
    missing = [(a, b) for a in a_levels for b in b_levels if (a, b) not in cells]
    sizes = {len(v) for v in cells.values()}
    if len(a_levels) < 2 or len(b_levels) < 2 or missing or len(sizes) != 1 or min(sizes) < 2:
        raise DataError(f"a two-way ANOVA needs a fully crossed design of >= 2 x 2 cells with the same "
                        f"n >= 2 replicates; missing cells {missing}, replicates per cell {sorted(sizes)}")
    y = np.array([[cells[(a, b)] for b in b_levels] for a in a_levels], dtype=np.float64)  # (A, B, n)
    if not np.all(np.isfinite(y)):
        raise DataError("samples contain NaN or inf")
    na, nb, n = y.shape
    m = y.mean()
    cell = y.mean(axis=2)
    ma, mb = cell.mean(axis=1), cell.mean(axis=0)
    ss = {"A": nb * n * float(((ma - m) ** 2).sum()), "B": na * n * float(((mb - m) ** 2).sum()),
          "AxB": n * float(((cell - ma[:, None] - mb[None, :] + m) ** 2).sum())}
    df = {"A": na - 1, "B": nb - 1, "AxB": (na - 1) * (nb - 1)}
    df_err = na * nb * (n - 1)
    sse = float(((y - cell[..., None]) ** 2).sum())
    if blocks:
        ss["block"] = na * nb * float(((y.mean(axis=(0, 1)) - m) ** 2).sum())
        df["block"] = n - 1
        sse, df_err = sse - ss["block"], df_err - df["block"]
    sst = float(((y - m) ** 2).sum())
    # an error that is rounding only (the terms explain every value) tests nothing: F and p are NaN
    mse = sse / df_err if sse > 1e-12 * sst else float("nan")
    out: dict = {"df_error": df_err, "mse": mse, "levels": (a_levels, b_levels), "n": n}
    for key in ss:
        f = ss[key] / df[key] / mse  # NaN propagates to F and p when no error is left
        out[key] = {"F": f, "df": df[key], "p": float(stats.f.sf(f, df[key], df_err))}
    return out


def rank_methods(results: Mapping[str, Sequence[float]], higher_is_better: bool) -> list[str]:
    """Methods sorted from best to worst mean (ties keep the input order)."""
    means = {m: float(np.mean(v)) for m, v in results.items()}
    return sorted(results, key=lambda m: -means[m] if higher_is_better else means[m])


def significance_marks(
    results: Mapping[str, Sequence[float]],
    higher_is_better: bool,
    *,
    alpha: float = 0.05,
    center: str = "median",
) -> dict[str, str]:
    """Marks for one metric: {method: "*" | "†" | ""} from per-seed scores {method: [score per seed]}."""
    if len(results) < 2:
        raise DataError(f"need at least two methods to compare, got {len(results)}")
    order = rank_methods(results, higher_is_better)
    marks = {m: "" for m in results}
    best = order[0]
    p_next = compare(results[best], results[order[1]], alpha=alpha, center=center)["p"]
    if math.isnan(p_next):  # best vs next-best not testable: no claim about it, so no mark at all
        return marks
    if p_next < alpha:
        marks[best] = "*"
    elif (
        len(order) > 2 and compare(results[best], results[order[2]], alpha=alpha, center=center)["p"] < alpha
    ):
        marks[best] = "†"
    return marks
