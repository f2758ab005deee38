"""P1 significance marks: Levene then Student / Welch, '*' and '†'."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from stripes.analysis.stats import compare, rank_methods, significance_marks
from stripes.errors import DataError


def test_student_p_matches_pooled_formula():
    a = np.array([10.0, 10.4, 9.8, 10.1, 9.7])
    b = np.array([9.6, 9.9, 9.4, 9.8, 9.5])
    r = compare(a, b)
    assert r["test"] == "student"
    n1, n2 = len(a), len(b)
    sp2 = ((n1 - 1) * a.var(ddof=1) + (n2 - 1) * b.var(ddof=1)) / (n1 + n2 - 2)
    t = (a.mean() - b.mean()) / np.sqrt(sp2 * (1 / n1 + 1 / n2))
    assert r["p"] == pytest.approx(2 * sps.t.sf(abs(t), n1 + n2 - 2))


def test_unequal_variances_switch_to_welch():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.01, 20)
    b = rng.normal(0.5, 5.0, 20)
    r = compare(a, b)
    assert r["levene_p"] < 0.05 and r["test"] == "welch"
    assert r["p"] == pytest.approx(sps.ttest_ind(a, b, equal_var=False).pvalue)


def test_star_when_best_beats_next_best():
    res = {"A": [10, 10.1, 9.9, 10.05, 9.95], "B": [5, 5.2, 4.8, 5.1, 4.9], "C": [1, 1.1, 0.9, 1.0, 1.05]}
    assert significance_marks(res, higher_is_better=True) == {"A": "*", "B": "", "C": ""}
    # lower is better: C is best
    assert significance_marks(res, higher_is_better=False) == {"A": "", "B": "", "C": "*"}


def test_dagger_when_only_third_best_differs():
    res = {
        "best": [10.0, 10.2, 9.8, 10.1, 9.9],
        "second": [9.9, 10.3, 9.7, 10.0, 9.8],
        "third": [5.0, 5.1, 4.9, 5.05, 4.95],
    }
    assert significance_marks(res, True) == {"best": "†", "second": "", "third": ""}


def test_no_mark_when_nothing_differs():
    rng = np.random.default_rng(1)
    res = {m: list(rng.normal(0, 1, 5) + 0.01 * i) for i, m in enumerate("XYZ")}
    marks = significance_marks(res, True)
    best = rank_methods(res, True)[0]
    p2 = compare(res[best], res[rank_methods(res, True)[1]])["p"]
    p3 = compare(res[best], res[rank_methods(res, True)[2]])["p"]
    assert p2 >= 0.05 and p3 >= 0.05
    assert set(marks.values()) == {""}


def test_two_methods_and_degenerate_samples():
    # constant samples cannot be tested: no mark however far apart the means are
    assert significance_marks({"a": [1.0, 1.0, 1.0], "b": [2.0, 2.0, 2.0]}, True) == {"a": "", "b": ""}
    assert significance_marks({"a": [1.0, 1.0], "b": [1.0, 1.0]}, True) == {"a": "", "b": ""}


def test_levene_zero_over_zero_reads_as_equal_variances(recwarn):
    r = compare([1.0, 3.0], [5.0, 7.0])  # equal absolute deviations from the medians: Levene is 0/0
    assert r["test"] == "student" and r["levene_p"] == 1.0
    assert r["p"] == pytest.approx(sps.ttest_ind([1.0, 3.0], [5.0, 7.0]).pvalue)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_bad_input():
    with pytest.raises(DataError):
        significance_marks({"a": [1.0, 2.0]}, True)
    with pytest.raises(DataError):
        compare([1.0], [2.0, 3.0])
    with pytest.raises(DataError):
        compare([1.0, float("nan")], [2.0, 3.0])


def test_constant_samples_are_not_testable() -> None:
    from stripes.analysis.stats import compare, significance_marks

    # rounding-level difference between two constant samples: no p = 0, no verdict
    r = compare([0.5, 0.5, 0.5], [0.5000001, 0.5000001, 0.5000001])
    assert r["test"] == "not testable" and math.isnan(r["p"])
    assert math.isnan(compare([1.0, 1.0], [1.0, 1.0])["p"])
    assert significance_marks({"a": [2.0, 2.0], "b": [1.0, 1.0]}, True) == {"a": "", "b": ""}
    # one constant side is still a defined Welch test
    assert compare([1.0, 1.0, 1.0], [2.0, 2.1, 1.9])["p"] < 0.05


def test_report_says_not_testable(tmp_path) -> None:
    from stripes.experiments.report.verdicts import Comparison

    c = Comparison("x", [1.0, 1.0], [2.0, 2.0], True)
    assert "not testable" in c.describe() and c.status == "within noise"


def test_compare_paired_known_value_and_untestable_shift():
    from stripes.analysis.stats import compare_paired

    # differences 1, 2, 3: mean 2, sd 1, t = 2 / (1 / sqrt 3) = 3.464 on 2 df -> two-sided p = 0.0742
    r = compare_paired([11.0, 22.0, 33.0], [10.0, 20.0, 30.0])
    assert r["test"] == "paired" and r["n"] == 3 and r["mean_diff"] == pytest.approx(2.0)
    assert r["p"] == pytest.approx(0.07418, abs=1e-4)
    # the same numbers unpaired are far from significant: pairing is what the test adds
    assert compare([11.0, 22.0, 33.0], [10.0, 20.0, 30.0])["p"] > 0.8
    shift = compare_paired([1.0, 2.0, 3.0], [0.5, 1.5, 2.5])
    assert shift["test"] == "not testable" and math.isnan(shift["p"])
    with pytest.raises(DataError, match="equal-length"):
        compare_paired([1.0, 2.0], [1.0, 2.0, 3.0])


def test_compare_groups_matches_the_one_way_anova_and_switches_on_unequal_variances():
    from stripes.analysis.stats import compare_groups

    # three groups of three, means 1, 2, 3, each sd 1: SSB = 3 * (1 + 0 + 1) = 6 on 2 df, SSW = 3 * 2 = 6 on
    # 6 df -> F = (6 / 2) / (6 / 6) = 3 on (2, 6) df, p = 0.125
    g = {"a": [0.0, 1.0, 2.0], "b": [1.0, 2.0, 3.0], "c": [2.0, 3.0, 4.0]}
    r = compare_groups(g)
    assert r["test"] == "anova" and r["k"] == 3
    assert r["p"] == pytest.approx(sps.f.sf(3.0, 2, 6))
    assert r["p"] == pytest.approx(0.125)
    # well separated groups: significant
    assert compare_groups({"a": [1.0, 1.1, 0.9], "b": [5.0, 5.1, 4.9]})["p"] < 1e-4
    # variances 1e-4 against 25: Levene says unequal -> Alexander-Govern, as scipy computes it
    rng = np.random.default_rng(1)
    a, b, c = rng.normal(0, 0.01, 12), rng.normal(1, 5, 12), rng.normal(0, 0.01, 12)
    r = compare_groups({"a": a, "b": b, "c": c})
    assert r["levene_p"] < 0.05 and r["test"] == "alexander-govern"
    assert r["p"] == pytest.approx(sps.alexandergovern(a, b, c).pvalue)


def test_compare_groups_degenerate_and_bad_input():
    from stripes.analysis.stats import compare_groups

    # unequal variances with a constant group: Alexander-Govern is undefined, the ANOVA answers
    rng = np.random.default_rng(2)
    flat, wide, narrow = [1.0] * 12, rng.normal(0, 5, 12), rng.normal(0, 0.01, 12)
    r = compare_groups({"flat": flat, "wide": wide, "narrow": narrow})
    assert r["levene_p"] < 0.05 and r["test"] == "anova"
    assert r["p"] == pytest.approx(sps.f_oneway(flat, wide, narrow).pvalue)
    r = compare_groups({"a": [1.0, 1.0], "b": [2.0, 2.0]})
    assert r["test"] == "not testable" and math.isnan(r["p"])
    with pytest.raises(DataError, match=">= 2 groups"):
        compare_groups({"a": [1.0, 2.0]})
    with pytest.raises(DataError, match="'b'"):
        compare_groups({"a": [1.0, 2.0], "b": [1.0]})
    with pytest.raises(DataError, match="NaN"):
        compare_groups({"a": [1.0, 2.0], "b": [1.0, float("nan")]})


def _nested_rss(cells: dict, terms: set[str]) -> float:
    """Oracle for the two-way ANOVA: the residual sum of squares of a least-squares fit of the cells' values
    on dummy columns for ``terms`` (any of "A", "B", "AxB", "block"; replicate k of every cell = block k)."""
    A = list(dict.fromkeys(a for a, _ in cells))
    B = list(dict.fromkeys(b for _, b in cells))
    rows = [(A.index(a), B.index(b), k, v) for (a, b), vals in cells.items() for k, v in enumerate(vals)]
    n = len(next(iter(cells.values())))
    y = np.array([r[-1] for r in rows])
    ia = [np.array([r[0] == t for r in rows], float) for t in range(1, len(A))]
    jb = [np.array([r[1] == t for r in rows], float) for t in range(1, len(B))]
    kb = [np.array([r[2] == t for r in rows], float) for t in range(1, n)]
    cols = [np.ones(len(rows))] + (kb if "block" in terms else [])
    cols += (ia if "A" in terms else []) + (jb if "B" in terms else [])
    cols += [u * w for u in ia for w in jb] if "AxB" in terms else []
    X = np.stack(cols, axis=1)
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    return float(((y - X @ beta) ** 2).sum())


def test_anova_two_way_matches_nested_least_squares():
    from stripes.analysis.stats import anova_two_way

    # oracle: the F of each term from nested linear models fitted by least squares (full model = cell means)
    rng = np.random.default_rng(3)
    A, B, n = ("x", "y", "z", "w"), ("p", "q", "r"), 3
    effect_a = {"x": 0.0, "y": 0.5, "z": 0.0, "w": -0.5}
    cells = {(a, b): list(effect_a[a] + 0.2 * j + rng.normal(0, 0.4, n)) for a in A
             for j, b in enumerate(B)}
    r = anova_two_way(cells)
    y = [v for vals in cells.values() for v in vals]

    def rss(terms: set[str]) -> float:
        return _nested_rss(cells, terms)

    full = rss({"A", "B", "AxB"})
    mse = full / (len(y) - len(A) * len(B))
    assert r["df_error"] == 24 and r["n"] == 3
    # balanced design: each main effect is the drop from the additive model without it, the interaction the
    # drop from the additive model to the full one
    for term, df in (("A", 3), ("B", 2)):
        other = {"A", "B"} - {term}
        f = (rss(other) - rss({"A", "B"})) / df / mse
        assert r[term]["df"] == df and r[term]["F"] == pytest.approx(f, rel=1e-9)
        assert r[term]["p"] == pytest.approx(sps.f.sf(f, df, 24))
    f_ab = (rss({"A", "B"}) - full) / 6 / mse
    assert r["AxB"]["F"] == pytest.approx(f_ab, rel=1e-9)
    # A's effects (-0.5 to 0.5) against noise of sd 0.4 on 9 replicates a level are found
    assert r["A"]["p"] < 0.01


def test_anova_two_way_with_blocks_removes_a_shared_replicate_effect():
    from stripes.analysis.stats import anova_two_way

    # replicate i of every cell shares a large offset (a seed's data order); a small A effect hides under it
    # unblocked and shows once the blocks are taken out. Oracle: nested least squares with block dummies.
    rng = np.random.default_rng(4)
    A, B, n = ("x", "y", "z"), ("p", "q"), 4
    offset = np.array([0.0, 1.0, 2.0, 3.0])
    cells = {(a, b): list(0.1 * i + offset + rng.normal(0, 0.02, n)) for i, a in enumerate(A) for b in B}
    plain, blocked = anova_two_way(cells), anova_two_way(cells, blocks=True)
    assert plain["A"]["p"] > 0.5 and blocked["A"]["p"] < 1e-6
    assert blocked["df_error"] == (len(A) * len(B) - 1) * (n - 1) and blocked["block"]["df"] == n - 1

    def rss(terms: set[str]) -> float:
        return _nested_rss(cells, terms)

    full = {"A", "B", "AxB", "block"}
    mse = rss(full) / blocked["df_error"]
    assert blocked["mse"] == pytest.approx(mse, rel=1e-9)
    # balanced: each main effect's sum of squares is what dropping it from the additive model (blocks kept)
    # costs; the interaction's and the blocks' what dropping them from the full model costs
    additive = rss({"A", "B", "block"})
    drops = {"A": rss({"B", "block"}) - additive, "B": rss({"A", "block"}) - additive,
             "AxB": rss(full - {"AxB"}) - rss(full), "block": rss(full - {"block"}) - rss(full)}
    for term, ss in drops.items():
        df = blocked[term]["df"]
        assert blocked[term]["F"] == pytest.approx(ss / df / mse, rel=1e-6, abs=1e-9), term
        p = sps.f.sf(ss / df / mse, df, blocked["df_error"])
        assert blocked[term]["p"] == pytest.approx(p, abs=1e-12)
    # values that are exactly cell effect + block offset leave no error: nothing is testable
    exact = {(a, b): list(0.1 * i + offset) for i, a in enumerate(A) for b in B}
    r = anova_two_way(exact, blocks=True)
    assert all(math.isnan(r[k]["F"]) and math.isnan(r[k]["p"]) for k in ("A", "B", "AxB", "block"))
