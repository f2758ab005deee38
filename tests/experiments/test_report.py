"""Report from fake run folders: tables, marks, verdicts, figures; published numbers vs papers.md."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from stripes.analysis import published as pub
from stripes.analysis.stats import significance_marks
from stripes.cli import main
from stripes.config import load_run_config
from stripes.errors import DataError
from stripes.experiments import report as rp

REPO = Path(__file__).resolve().parents[2]
PAPERS = Path(os.environ.get("STRIPES_PAPERS", REPO.parent / "shared" / "docs" / "reference" / "papers.md"))


# --------------------------------------------------------------------------------------- published data


def _md_table(section: str) -> list[list[str]]:
    if not PAPERS.is_file():
        pytest.skip(f"papers.md not found at {PAPERS}")
    text = PAPERS.read_text()
    start = text.index(section)
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("#"):
            break
        if line.startswith("|") and "---" not in line:
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows[1:]  # drop the header


@pytest.mark.parametrize(
    ("section", "table"),
    [("### 12.2 P1 Table II", pub.P1_TABLE_II), ("### 12.3 P1 Table III", pub.P1_TABLE_III)],
)
def test_p1_published_tables_match_papers_md(section: str, table: dict) -> None:
    rows = _md_table(section)
    assert len(rows) == len(table) == 12
    for row in rows:
        assert tuple(row[2:]) == table[(row[0], row[1])], row


def test_p2_published_table_and_mi_match_papers_md() -> None:
    rows = _md_table("### 12.4 P2 Table I")
    assert len(rows) == len(pub.P2_TABLE_I) == 9
    for row in rows:
        assert tuple(row[1:]) == pub.P2_TABLE_I[row[0]], row
    mi = {r[0]: float(r[1]) for r in _md_table("### 12.1 P1 Table I")}
    assert mi == pub.P1_TABLE_I


def test_published_spot_checks_and_parse_cell() -> None:
    c = pub.published_cells("p1-table3", "bin", "RoPEPool")
    assert c is not None and c[("cs", 16)] == pub.Cell("25.83±1.02†", 25.83, 1.02, "†")
    assert c[("ndd", 64)].mean == 73.77  # type: ignore[union-attr]
    t2 = pub.published_cells("p1-table2", "TIME", "RoPE(C)")
    assert t2 is not None and t2[("ssmd", 64)] == pub.Cell("13.79±0.0∗", 13.79, 0.0, "∗")
    p2 = pub.published_cells("p2-table1", None, "S S-RPE")
    assert p2 is not None and p2[("cs", 64)] is None and p2[("cs", 16)].mean == 14.52  # type: ignore[union-attr]
    nope = pub.parse_cell("29.31±0.0*")
    assert nope is not None and nope.std_below_005 and nope.mark == ""
    assert pub.published_cells("p1-table3", "BIN", "RoPE(A)") is None
    with pytest.raises(ValueError):
        pub.parse_cell("12.3")
    with pytest.raises(KeyError):
        pub.published_cells("p9", None, "x")


# -------------------------------------------------------------------------------------------- fake runs


def make_run(root: Path, pe: str, context: str | list[str], seed: int, vals16: dict[str, float],
             vals64: dict[str, float] | None = None, *, lr: float = 1e-3, variant: str | None = None,
             val_bce: float = 0.4, attention: str = "linear", png: bool = True) -> Path:
    ov = {"pe": pe, "context": context, "seed": seed, "train.lr": lr, "attention": attention}
    if variant:
        ov["model.pe_options.variant"] = variant
    cfg = load_run_config("smoke", overrides=ov).to_dict()
    ctx = context if isinstance(context, str) else "+".join(context)
    run = root / f"{pe}{variant or ''}_{ctx}_s{seed}_lr{lr}"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(cfg))
    (run / "log.csv").write_text(f"epoch,step,val_bce\n1,10,{val_bce + 0.1}\n2,20,{val_bce}\n")
    for bars, vals in ((16, vals16), (64, vals64)):
        if vals is None:
            continue
        vals = dict(vals)
        bce = vals.pop("bce", 0.2)
        sel = {"ssmd": 14.0, "gs": 20.0, "ndd": 90.0, "onset_f1": 0.1, "frame_f1": 0.25, **vals}
        fixed = {k: v - 1.0 for k, v in sel.items()}  # the 0.5 threshold scores 1 lower everywhere
        selected = {"method": "threshold", "threshold": 0.3, "merge": None, "criterion": "val onset F1",
                    "at_grid_edge": pe == "fstripe1"}
        m = {"bars": bars, "n_windows": 4, "selected": selected,
             "at_selected": sel, "at_0.5": fixed, "bce": bce,
             "bce_per_position": list(np.linspace(0.1, 0.3, bars * 64))}
        (run / f"metrics_{bars}.json").write_text(json.dumps(m))
    if png:
        (run / "examples_16").mkdir()
        (run / "examples_16" / "song001_t0.png").write_bytes(b"\x89PNG fake")
    return run


ROPE = {"TIME": "C", "REP": "B", "KEY": "C", "BIN": "C"}
# CS at 16 bars per (context, method): BIN > KEY > REP > TIME clearly; on BIN RoPEPool > F-StrIPE1 > RoPE
BASE = {"TIME": 5.0, "REP": 10.0, "KEY": 15.0, "BIN": 20.0}
OFFSET = {"rope": 0.0, "fstripe1": 3.0, "ropepool": 6.0}
NOISE = (-0.5, 0.0, 0.5)


def make_p1_runs(root: Path, gain64: float = 2.0, noise: tuple[float, ...] = NOISE) -> dict:
    truth: dict[tuple[str, str], list[float]] = {}
    for ctx, base in BASE.items():
        for pe, off in OFFSET.items():
            vals = []
            for seed, e in enumerate(noise):
                cs = base + off + e
                vals.append(cs)
                bce = 0.3 - cs / 1000  # threshold-free loss follows CS
                v16 = {"cs": cs, "gs": cs + 1, "bce": bce, "onset_f1": cs / 100}
                make_run(root, pe, ctx.lower(), seed, v16,
                         {"cs": cs + gain64, "gs": cs + 1 + gain64, "ssmd": 14.0 - gain64 / 10 - 0.01 * seed,
                          "ndd": 90.0 - gain64 - 0.1 * seed, "bce": bce},
                         variant=ROPE[ctx] if pe == "rope" else None, val_bce=0.4 - cs / 1000)
            names = {"rope": f"RoPE({ROPE[ctx]})", "fstripe1": "F-StrIPE₁", "ropepool": "RoPEPool"}
            label = names[pe]
            truth[(ctx, label)] = vals
    return truth


def _row(md: str, heading_part: str, ctx: str, method: str, source: str = "ours") -> list[str]:
    section = md[md.index(heading_part):]
    section = section[: section.index("\n## ", 1)] if "\n## " in section[1:] else section
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) > 4 and cells[0] == ctx and cells[1] == method and cells[2] == source:
            return cells
    raise AssertionError(f"row {ctx} {method} {source} not in {heading_part}")


def _section(md: str, heading: str) -> str:
    """The report's text from the line ``heading`` (exact) to the next ``## `` heading."""
    start = md.index(heading + "\n")
    end = md.find("\n## ", start + 1)
    return md[start:] if end < 0 else md[start:end]


def _num(cell: str) -> tuple[float, float, str]:
    m = re.match(r"^\**(-?[\d.]+) ± ([\d.]+)([*∗†]?)\**$", cell)
    assert m, cell
    return float(m.group(1)), float(m.group(2)), m.group(3)


# ----------------------------------------------------------------------------------------------- tests


def test_method_and_context_labels() -> None:
    def lab(**ov: object) -> str:
        return rp.method_label(load_run_config("smoke", overrides=ov).to_dict())

    assert lab(pe="rope", **{"model.pe_options.variant": "B"}) == "RoPE(B)"
    assert lab(pe="fstripe1") == "F-StrIPE₁"
    assert lab(pe="fstripe", context=["melody", "chord", "phrase"]) == "F-StrIPE"
    assert lab(pe="fstripe", context="chord") == "F-StrIPE:C"
    assert lab(pe="fstripe_sff", context=["chord"]) == "F-StrIPE:SFF:C"
    assert lab(pe="fstripe", context="bin") == "F-StrIPE[BIN]"
    assert lab(pe="srpe", attention="softmax") == "S S-RPE"
    assert rp.context_label({"context": ["melody", "chord"]}) == "MELODY+CHORD"


def test_report_tables_means_marks_and_published(tmp_path: Path) -> None:
    truth = make_p1_runs(tmp_path / "runs")
    path = rp.make_report([tmp_path / "runs"], tmp_path / "out")
    md = path.read_text()
    sel = "P1 Table III (best RoPE vs F-StrIPE₁ vs RoPEPool) — binarization selected"
    fixed = "P1 Table III (best RoPE vs F-StrIPE₁ vs RoPEPool) — fixed 0.5"
    for (ctx, method), vals in truth.items():
        cells = _row(md, sel, ctx, method)
        assert cells[3] == "3"
        mean, std, _ = _num(cells[4])
        assert mean == pytest.approx(np.mean(vals), abs=0.005)
        assert std == pytest.approx(np.std(vals, ddof=1), abs=0.005)
        assert _num(_row(md, fixed, ctx, method)[4])[0] == pytest.approx(np.mean(vals) - 1, abs=0.005)
        assert _num(cells[8])[0] == pytest.approx(np.mean(vals) + 2, abs=0.005)  # CS at 64 bars
        # the published row follows, exactly as printed
        assert tuple(_row(md, sel, ctx, method, "P1")[4:]) == pub.P1_TABLE_III[(ctx, method)]
    # marks: computed as P1 does, per context and column
    for ctx in BASE:
        group = {m: v for (c, m), v in truth.items() if c == ctx}
        expected = significance_marks(group, True)
        for m in group:
            assert _num(_row(md, sel, ctx, m)[4])[2] == expected[m]
        assert expected["RoPEPool"] == "*"  # 3 points ahead with std 0.5: must be significant
        assert _row(md, sel, ctx, "RoPEPool")[4].startswith("**")  # best mean in bold
    # threshold-free BCE and note F1, x100, with marks (lower BCE is better)
    extra = "P1 Table III (best RoPE vs F-StrIPE₁ vs RoPEPool) — threshold-free"
    for (ctx, method), vals in truth.items():
        cells = _row(md, extra, ctx, method)
        assert _num(cells[4])[0] == pytest.approx(100 * (0.3 - np.mean(vals) / 1000), abs=0.005)
        assert _num(cells[6])[0] == pytest.approx(np.mean(vals), abs=0.005)  # onset F1 %, 16 bars
        assert _num(cells[8])[0] == pytest.approx(25.0)  # frame F1 %, 16 bars
    assert _num(_row(md, extra, "BIN", "RoPEPool")[4])[2] == "*"
    assert _row(md, extra, "BIN", "RoPEPool")[4].startswith("**")
    # binarization summary: 3 methods x 4 contexts x 3 seeds, two window lengths; F-StrIPE1 at the grid edge
    assert "16 bars: 0.3: 36; 64 bars: 0.3: 36" in md
    assert "⚠ 24 choices lie at the edge of the threshold grid" in md
    # one RoPE variant per context: Table II would repeat Table III's rows, so it is left out with a note
    assert "P1 Table II (RoPE baselines) —" not in md
    assert "P1 Table II is not shown" in md


def test_report_verdicts_reproduced(tmp_path: Path) -> None:
    make_p1_runs(tmp_path / "runs", gain64=2.0)
    (tmp_path / "runs" / "mi").mkdir()
    rows = [{"context": c.lower(), "plugin": v * 1.1, "miller_madow": v, "shuffle": v * 0.9, "p1": v}
            for c, v in pub.P1_TABLE_I.items()]
    (tmp_path / "runs" / "mi" / "mi.json").write_text(json.dumps({"unit": "nats", "rows": rows}))
    md = rp.make_report([tmp_path / "runs"], tmp_path / "out").read_text()
    claims = _section(md, "## Claims of P1")
    assert "**MI ranking BIN > KEY > REP > TIME (P1 Table I)** — *reproduced*" in claims
    assert "**Context ranking BIN > KEY > REP > TIME" in claims
    verdicts = re.findall(r"— \*([^*]+)\*", claims)
    assert verdicts == ["reproduced"] * 6, verdicts
    assert "threshold-free test BCE** — *reproduced*" in claims
    assert "BIN BCE@16: RoPEPool vs RoPE(C): 0.2740 vs 0.2800" in claims
    assert "BIN CS@16: RoPEPool vs RoPE(C): 26.00 vs 20.00" in claims
    # the same claims on the binarized metrics at the fixed 0.5 threshold (CS 1 lower there): no MI, no BCE
    fixed = _section(md, "## Claims of P1 at the fixed 0.5 threshold")
    assert re.findall(r"— \*([^*]+)\*", fixed) == ["reproduced"] * 3
    assert "BIN CS@16: RoPEPool vs RoPE(C): 25.00 vs 19.00" in fixed
    assert "MI ranking" not in fixed and "BCE@" not in fixed and "threshold-free" not in fixed
    # MI table with P1's column and Fig. 4
    assert "| BIN | 1.1083 | 1.0075 | 0.9068 | 1.0075 |" in md
    for png in ("fig4_mi.png", "bce_per_position_64.png"):
        data = (tmp_path / "out" / png).read_bytes()
        assert data[:4] == b"\x89PNG" and len(data) > 1000
        assert f"]({png})" in md


def test_report_verdicts_not_reproduced_and_not_separable(tmp_path: Path) -> None:
    make_p1_runs(tmp_path / "a", gain64=-3.0)  # every score gets worse at 64 bars
    claims = _section(rp.make_report([tmp_path / "a"], tmp_path / "oa").read_text(), "## Claims of P1")
    assert "**Scores improve from 16 to 64 bars (all but RoPE on REP)** — *not reproduced*" in claims
    assert "No MI" not in claims

    # large seed noise: every difference is within noise
    make_p1_runs(tmp_path / "b", gain64=0.5, noise=(-30.0, 0.0, 30.0))
    claims = _section(rp.make_report([tmp_path / "b"], tmp_path / "ob").read_text(), "## Claims of P1")
    assert re.findall(r"— \*([^*]+)\*", claims) == ["not separable at this scale"] * 5


def test_comparison_and_verdict_logic() -> None:
    good = rp.Comparison("a>b", [10, 11, 12], [1, 2, 3], True)
    assert good.status == "holds" and good.p is not None and good.p < 0.05
    assert rp.Comparison("a<b", [10, 11, 12], [1, 2, 3], False).status == "reversed"
    assert rp.Comparison("noise", [1, 5, 9], [2, 6, 8], True).status == "within noise"
    one = rp.Comparison("1 seed", [10], [1], True)
    assert one.p is None and one.status == "within noise" and "no test" in one.describe()
    missing = rp.Comparison("m", [], [1, 2], True)
    assert missing.status == "missing"
    assert rp.verdict([good]) == "reproduced"
    assert rp.verdict([good, one]) == "not separable at this scale"
    assert rp.verdict([good, rp.Comparison("r", [1, 2, 3], [10, 11, 12], True)]) == "not reproduced"
    assert rp.verdict([missing]).startswith("not evaluated")


def test_learning_rate_selected_on_validation_bce(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    for seed in (0, 1):
        make_run(root, "ropepool", "bin", seed, {"cs": 30.0 + seed}, lr=1e-3, val_bce=0.3)
        make_run(root, "ropepool", "bin", seed, {"cs": 50.0 + seed}, lr=1e-4, val_bce=0.5)
        make_run(root, "fstripe1", "bin", seed, {"cs": 10.0 + seed})
    runs = rp.collect_runs([root])
    kept, chosen = rp.select_lr(runs)
    assert chosen[("BIN", "RoPEPool")] == 1e-3 and len(kept) == 4
    md = rp.make_report([root], tmp_path / "out").read_text()
    assert _num(_row(md, "P1 Table III", "BIN", "RoPEPool")[4])[0] == 30.5  # not the 1e-4 runs' 50.5
    assert "BIN RoPEPool: 0.001" in md
    # only 16-bar metrics: 64-bar cells are dashes, no BCE figure
    assert _row(md, "P1 Table III", "BIN", "RoPEPool")[8] == "–"
    assert "No 64-bar metrics" in md
    assert "No MI table given or found" in md


def test_p2_table_scales_ssmd_and_links_pianorolls(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    for seed in (0, 1, 2):
        make_run(root, "fstripe", "chord", seed, {"cs": 16.0 + seed, "ssmd": 14.0}, {"cs": 13.0})
        make_run(root, "nope", "time", seed, {"cs": 2.0 + seed / 10, "ssmd": 14.6})
        make_run(root, "srpe", ["melody", "chord", "phrase"], seed, {"cs": 14.0}, attention="softmax")
    out = tmp_path / "out"
    md = rp.make_report([root], out).read_text()
    head = "P2 Table I (melody harmonization, F-StrIPE variants) — binarization"
    cells = _row(md, head, "chord", "F-StrIPE:C")
    assert _num(cells[5])[0] == 28.0  # SSMD x2 to P2's x100 scale
    assert cells[4].startswith("**")  # best CS among all P2 rows
    assert tuple(_row(md, head, "chord", "F-StrIPE:C", "P2")[4:]) == pub.P2_TABLE_I["F-StrIPE:C"]
    assert _row(md, head, "melody+chord+phrase", "S S-RPE", "P2")[8] == "⧹"
    # pianorolls are copied beside the report (one context, lowest seed per method) and embedded
    links = re.findall(r"!\[[^]]*\]\((pianorolls/[^)]+song001_t0\.png)\)", md)
    assert len(links) == 1 and (out / links[0]).read_bytes() == b"\x89PNG fake"
    assert "_s0_" in links[0]


def test_report_remade_from_its_records_keeps_its_pianorolls(tmp_path: Path) -> None:
    """Committed run records carry no examples: remaking the report in its own folder from them keeps the
    pianorolls it had, while a PNG of no run in the report is removed and a run's own examples win."""
    import shutil

    root = tmp_path / "runs"
    for seed in (0, 1):
        make_run(root, "fstripe", "chord", seed, {"cs": 16.0})
        make_run(root, "nope", "time", seed, {"cs": 2.0})
    out = tmp_path / "report"
    first = rp.make_report([root], out).read_text()
    links = sorted(re.findall(r"\]\((pianorolls/[^)]+\.png)\)", first))
    assert len(links) == 1  # one context shown (chord, first in order), lowest seed
    for run in root.iterdir():
        shutil.rmtree(run / "examples_16")  # as a committed record
    (out / "pianorolls" / "stale_run_examples_16_song001_t0.png").write_bytes(b"old")
    again = rp.make_report([root], out).read_text()
    assert sorted(re.findall(r"\]\((pianorolls/[^)]+\.png)\)", again)) == links
    assert (out / links[0]).read_bytes() == b"\x89PNG fake"
    assert not (out / "pianorolls" / "stale_run_examples_16_song001_t0.png").exists()
    # a run that has examples again supersedes the kept image
    ex = root / Path(links[0]).name.split("_examples_16_")[0] / "examples_16"
    ex.mkdir()
    (ex / "song002_t0.png").write_bytes(b"\x89PNG new")
    third = rp.make_report([root], out).read_text()
    (link,) = re.findall(r"\]\((pianorolls/[^)]+\.png)\)", third)
    assert link.endswith("song002_t0.png") and (out / link).read_bytes() == b"\x89PNG new"
    assert not (out / links[0]).exists()


def test_report_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no evaluated runs"):
        rp.make_report([tmp_path / "empty"], tmp_path / "out")
    with pytest.raises(DataError, match="no such run folder"):
        rp.make_report([tmp_path / "missing"], tmp_path / "out")
    run = make_run(tmp_path / "bad", "rope", "bin", 0, {"cs": 1.0}, variant="C")
    (run / "metrics_64.json").write_text(json.dumps({"bars": 64}))
    with pytest.raises(DataError, match="at_selected"):
        rp.make_report([tmp_path / "bad"], tmp_path / "out")
    assert main(["report", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.startswith("stripes: error: no evaluated runs")
    mixed = make_run(tmp_path / "mixed", "rope", "bin", 0, {"cs": 1.0}, variant="C")
    other = make_run(tmp_path / "mixed", "ropepool", "bin", 0, {"cs": 1.0})
    cfg = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**cfg, "profile": "paper"}))
    with pytest.raises(DataError, match="several profiles"):
        rp.make_report([mixed.parent], tmp_path / "out")
    bad_mi = tmp_path / "mi.json"
    bad_mi.write_text("{}")
    good = make_run(tmp_path / "good", "rope", "bin", 0, {"cs": 1.0}, variant="C")
    with pytest.raises(DataError, match="not an MI table"):
        rp.make_report([good], tmp_path / "out", bad_mi)


def test_report_cli_writes_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_run(tmp_path / "runs", "ropepool", "bin", 0, {"cs": 3.0}, {"cs": 4.0})
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "rep")]) == 0
    assert (tmp_path / "rep" / "report.md").is_file()
    assert "wrote" in capsys.readouterr().out


def test_table_ii_shown_with_several_rope_variants(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    for seed in (0, 1):
        # RoPE(A) has the better test CS, RoPE(B) the better validation BCE: validation must choose
        make_run(root, "rope", "rep", seed, {"cs": 18.0 + seed}, variant="B", val_bce=0.30)
        make_run(root, "rope", "rep", seed, {"cs": 20.0 + seed}, variant="A", val_bce=0.35)
        make_run(root, "ropepool", "rep", seed, {"cs": 12.0 + seed})
    md = rp.make_report([root], tmp_path / "out").read_text()
    head = "P1 Table II (RoPE baselines) — binarization"
    assert _num(_row(md, head, "REP", "RoPE(A)")[4])[0] == 20.5
    assert _num(_row(md, head, "REP", "RoPE(B)")[4])[0] == 18.5
    assert "P1 Table II is not shown" not in md
    # Table III keeps only the best variant on validation (not by test CS), and says so
    assert "REP: RoPE(B) (best of 2 RoPE variants by mean validation BCE" in md
    t3 = "P1 Table III (best RoPE vs F-StrIPE₁ vs RoPEPool) — binarization"
    _row(md, t3, "REP", "RoPE(B)")
    with pytest.raises(AssertionError):
        _row(md, t3, "REP", "RoPE(A)")


def test_p2_claims_verdicts(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    for seed, e in enumerate((-0.3, 0.0, 0.3)):
        make_run(root, "fstripe", ["melody", "chord", "phrase"], seed, {"cs": 12 + e, "bce": 0.2 + e / 100})
        make_run(root, "fstripe", "chord", seed, {"cs": 16.0 + e, "bce": 0.18 + e / 100})
        make_run(root, "nope", "time", seed, {"cs": 2.0 + e, "bce": 0.30 + e / 100})
        make_run(root, "spe", "time", seed, {"cs": 1.0 + e, "bce": 0.31 + e / 100})
        make_run(root, "srpe", ["melody", "chord", "phrase"], seed, {"cs": 14.0 + e, "bce": 0.19 + e / 100},
                 attention="softmax")
    md = rp.make_report([root], tmp_path / "out").read_text()
    assert "## Claims of P2" in md and "## Claims of P1" not in md
    assert "mutual information" not in md  # P1's MI table belongs to P1's contexts only
    lines = {ln.split("** — ")[0].lstrip("- *"): ln.split("** — ")[1] for ln in md.splitlines()
             if ln.startswith("- **") and "** — " in ln}
    assert lines["Structure helps: S S-RPE and F-StrIPE beat NoPE and SPE"] == "*reproduced*"
    # only one of the two RFF-vs-SFF pairs and none of M/P were run: not evaluated pieces are left out
    ctx = "Which context helps: chords alone (F-StrIPE:C) beat all levels; M or P alone are worse than NoPE"
    assert lines[ctx] == "*reproduced (on 1 of 3 comparisons; the rest not run)*"
    assert "F-StrIPE:C vs F-StrIPE" in md and "p=" in md


def test_claims_are_judged_again_at_the_fixed_threshold(tmp_path: Path) -> None:
    """A claim can fail at the validation-chosen binarization (dense outputs at a low threshold) and hold at
    the fixed 0.5 threshold, or the reverse: the report gives both verdicts, each from its own scores."""
    root = tmp_path / "runs"
    for seed, e in enumerate((-0.3, 0.0, 0.3)):
        for pe, ctx, cs_sel, cs_fixed in (("fstripe", ["melody", "chord", "phrase"], 40.0, 12.0),
                                          ("nope", "time", 50.0, 2.0)):
            run = make_run(root, pe, ctx, seed, {"cs": cs_sel + e})
            metrics = json.loads((run / "metrics_16.json").read_text())
            metrics["at_0.5"]["cs"] = cs_fixed + e
            (run / "metrics_16.json").write_text(json.dumps(metrics))
    md = rp.make_report([root], tmp_path / "out").read_text()
    claim = "**Structure helps: S S-RPE and F-StrIPE beat NoPE and SPE** — "
    selected = _section(md, "## Claims of P2")
    fixed = _section(md, "## Claims of P2 at the fixed 0.5 threshold")
    assert claim + "*not reproduced (on 1 of 4 comparisons; the rest not run)*" in selected
    assert "CS@16: F-StrIPE vs NoPE: 40.00 vs 50.00" in selected
    assert claim + "*reproduced (on 1 of 4 comparisons; the rest not run)*" in fixed
    assert "CS@16: F-StrIPE vs NoPE: 12.00 vs 2.00" in fixed
    assert "threshold-free" in selected and "threshold-free" not in fixed


def test_runs_csv_schema_one_row_per_run_and_length(tmp_path: Path) -> None:
    import csv

    make_p1_runs(tmp_path / "runs")
    rp.make_report([tmp_path / "runs"], tmp_path / "out", table="p1-table3")
    rows = list(csv.DictReader(open(tmp_path / "out" / "runs.csv")))
    assert list(rows[0]) == ["table", "context", "method", "seed", "bars", "test_bce", "onset_f1", "frame_f1",
                             "cs", "ssmd", "gs", "ndd", "cs_at_0_5", "ndd_at_0_5", "threshold", "merge",
                             "steps", "train_seconds"]
    assert len(rows) == 4 * 3 * 3 * 2  # contexts x methods x seeds x (16, 64)
    assert {r["method"] for r in rows} == {"rope_c", "rope_b", "fstripe1", "ropepool"}
    assert {r["context"] for r in rows} == {"time", "rep", "key", "bin"} and {r["table"] for r in rows} == {
        "p1-table3"}
    keys = {(r["context"], r["method"], r["seed"], r["bars"]) for r in rows}
    assert len(keys) == len(rows)  # one row per (run, bars)
    r = next(r for r in rows if r["context"] == "bin" and r["method"] == "ropepool" and r["seed"] == "0"
             and r["bars"] == "16")
    assert float(r["cs"]) == pytest.approx(20.0 + 6.0 - 0.5) and float(r["cs_at_0_5"]) == pytest.approx(24.5)
    assert r["steps"] == "20" and r["threshold"] == "0.3"


def test_report_refuses_to_pool_other_configs_or_duplicate_seeds(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    make_run(root, "ropepool", "bin", 0, {"cs": 20.0})
    make_run(root, "ropepool", "bin", 1, {"cs": 21.0})
    other = make_run(root / "b", "ropepool", "bin", 1, {"cs": 30.0})  # seed 1 again
    with pytest.raises(DataError, match="seed 1 .* appears twice"):
        rp.make_report([root], tmp_path / "out")
    cfg = json.loads((other / "config.json").read_text())
    cfg["seed"], cfg["train"]["max_len"] = 2, 999  # another experiment, not a third seed
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(DataError, match=r"differ beyond seed and lr \(train.max_len"):
        rp.make_report([root], tmp_path / "out")


def test_copy_runs_exports_a_committable_record_that_reports_the_same(tmp_path: Path) -> None:
    make_p1_runs(tmp_path / "runs")
    one = sorted((tmp_path / "runs").iterdir())[0]
    (one / "checkpoints").mkdir()
    (one / "checkpoints" / "best.pt").write_bytes(b"weights")
    (one / "metrics_16_windows.csv").write_text("window,bce\n0,0.1\n")
    (one / "DONE").write_text("")
    out = tmp_path / "rep"
    assert main(["report", str(tmp_path / "runs"), "--out", str(out), "--copy-runs", "--with-pngs"]) == 0
    copied = sorted((out / "runs").iterdir())
    assert [c.name for c in copied] == sorted(p.name for p in (tmp_path / "runs").iterdir())
    c = out / "runs" / one.name
    assert {f.name for f in c.iterdir()} == {"config.json", "log.csv", "metrics_16.json", "metrics_64.json",
                                             "DONE", "examples_16"}
    assert not (c / "checkpoints").exists() and (c / "examples_16" / "song001_t0.png").is_file()
    # the copy alone gives the same runs.csv, and re-exporting it onto itself is a no-op
    again = tmp_path / "rep2"
    assert main(["report", str(out / "runs"), "--out", str(again)]) == 0
    assert (again / "runs.csv").read_text() == (out / "runs.csv").read_text()
    assert main(["report", str(out / "runs"), "--out", str(out), "--copy-runs"]) == 0
    assert (c / "config.json").read_text() == (one / "config.json").read_text()
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "rep3"), "--copy-runs"]) == 0
    assert not (tmp_path / "rep3" / "runs" / one.name / "examples_16").exists()  # PNGs only when asked


def test_copy_runs_refuses_two_runs_with_one_name(tmp_path: Path) -> None:
    a = make_run(tmp_path / "a", "ropepool", "bin", 0, {"cs": 3.0})
    b = make_run(tmp_path / "b", "ropepool", "bin", 1, {"cs": 3.0})
    b = b.rename(b.parent / a.name)
    with pytest.raises(DataError, match="share the folder name"):
        rp.export_runs(rp.collect_runs([a, b]), tmp_path / "out")
