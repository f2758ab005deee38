"""The generative runs' report (``stripes report --table accompany``): cells, the two comparisons with the
report's test, distances to the human piano, records and refusals, on hand-made run folders."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from stripes.cli import main
from stripes.errors import DataError
from stripes.experiments.report.accompany import collect_accompany_runs, compare_cells, make_accompany_report

HUMAN = {"mean_oa": 0.97, "chord_tone_share": 0.87, "notes_per_bar": 13.0, "onset_times_per_bar": 8.0,
         "mean_note_length": 0.8}


def fake_run(root: Path, pe: str, context: str, seed: int, *, nll: float, chord: float, notes: float,
             variant: str | None = None, task: str = "accompany", bars: tuple[int, ...] = (16,)) -> Path:
    name = f"acc_{pe}{variant or ''}_{context}_s{seed}"
    d = root / name
    d.mkdir(parents=True)
    opts = {"variant": variant} if variant else {}
    cfg = {"task": task, "pe": pe, "context": context, "seed": seed, "model": {"pe_options": opts}}
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "log.csv").write_text("epoch,val_nll\n1,1.5\n")
    (d / "DONE").write_text("")
    (d / "checkpoints").mkdir()
    (d / "checkpoints" / "best.pt").write_bytes(b"x" * 10)
    for b in bars:
        sampled = dict(HUMAN, mean_oa=0.9, chord_tone_share=chord, notes_per_bar=notes)
        m = {"bars": b, "test_nll": nll, "settings": {"temperature": 1.0, "top_p": 0.9},
             "metrics": {"cs": 50.0 + chord, "ssmd": 15.0, "gs": 80.0, "ndd": 30.0, "onset_f1": 0.05},
             "texture": {"rows": {"sampled": sampled, "human": HUMAN}}}
        (d / f"metrics_accompany_{b}.json").write_text(json.dumps(m))
    return d


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    root = tmp_path / "sweep"
    for s in range(3):
        # RoPEPool + BIN: clearly more chord tones than TIME, the same NLL up to noise
        d = 0.01 * s
        fake_run(root, "ropepool", "bin", s, nll=1.50 + d, chord=0.70 + d, notes=13.0 + 10 * d)
        fake_run(root, "ropepool", "time", s, nll=1.51 - d, chord=0.48 + d, notes=13.0 - 10 * d)
        fake_run(root, "rope", "bin", s, variant="C", nll=1.50, chord=0.53 + d, notes=8.0 + 10 * d)
    # a parallel (harmonize) run with accompaniment-like files is not collected
    fake_run(root, "ropepool", "bin", 9, nll=1.0, chord=0.1, notes=1.0, task="harmonize")
    return root


def test_collects_accompany_runs_only(sweep: Path):
    runs = collect_accompany_runs([sweep])
    assert len(runs) == 9
    assert {(r.method, r.context) for r in runs} == {("RoPEPool", "BIN"), ("RoPEPool", "TIME"),
                                                     ("RoPE(C)", "BIN")}


def test_comparisons_test_the_right_direction(sweep: Path):
    runs = collect_accompany_runs([sweep])
    cell = {(m, c): [r for r in runs if (r.method, r.context) == (m, c)] for m, c in
            {(r.method, r.context) for r in runs}}
    rows = {r["metric"]: r for r in compare_cells(cell[("RoPEPool", "BIN")], cell[("RoPEPool", "TIME")], 16)}
    assert rows["chord-tone share"]["verdict"] == "first ahead" and rows["chord-tone share"]["p"] < 1e-4
    assert rows["test NLL (nats/tick)"]["verdict"] == "not separable"
    # notes/bar is judged by the distance to the human piano (13.0): both sides sit on it, symmetric noise
    assert rows["notes/bar"]["verdict"] == "not separable"
    rows = {r["metric"]: r for r in compare_cells(cell[("RoPEPool", "BIN")], cell[("RoPE(C)", "BIN")], 16)}
    # RoPE(C) plays 8 notes a bar against the human 13: RoPEPool (13.0-13.2) is closer, so ahead
    assert rows["notes/bar"]["verdict"] == "first ahead"
    assert rows["notes/bar"]["a"] == pytest.approx(13.1) and rows["notes/bar"]["b"] == pytest.approx(8.1)


def test_report_csv_and_records(sweep: Path, tmp_path: Path):
    out = tmp_path / "rep"
    rc = main(["report", str(sweep), "--out", str(out), "--table", "accompany", "--copy-runs"])
    assert rc == 0
    text = (out / "report.md").read_text()
    assert "**RoPEPool: BIN vs TIME** (16 bars)" in text and "**BIN: RoPEPool vs RoPE(C)** (16 bars)" in text
    assert "| RoPEPool | BIN | 3 | 1.5100 ± 0.0100 |" in text
    rows = list(csv.DictReader((out / "runs.csv").open()))
    assert len(rows) == 9 and {r["table"] for r in rows} == {"accompany"}
    copied = sorted(p.name for p in (out / "runs").iterdir())
    assert len(copied) == 9
    one = out / "runs" / "acc_ropepool_bin_s0"
    want = ["DONE", "config.json", "log.csv", "metrics_accompany_16.json"]  # no checkpoints
    assert sorted(p.name for p in one.iterdir()) == want
    # the report reads its own copied records back to the same table
    again = make_accompany_report([out / "runs"], tmp_path / "rep2", table="accompany")
    assert again.read_text() == text


def test_refusals(tmp_path: Path):
    with pytest.raises(DataError, match="no evaluated accompaniment runs"):
        collect_accompany_runs([tmp_path])
    with pytest.raises(DataError, match="not a folder"):
        collect_accompany_runs([tmp_path / "missing"])
    fake_run(tmp_path / "a", "ropepool", "bin", 0, nll=1.5, chord=0.7, notes=13)
    fake_run(tmp_path / "b", "ropepool", "bin", 0, nll=1.5, chord=0.7, notes=13)
    with pytest.raises(DataError, match="two runs of RoPEPool \\+ BIN seed 0"):
        collect_accompany_runs([tmp_path / "a", tmp_path / "b"])
    bad = fake_run(tmp_path / "c", "ropepool", "bin", 1, nll=1.5, chord=0.7, notes=13)
    (bad / "metrics_accompany_16.json").write_text("{}")
    with pytest.raises(DataError, match="not an accompaniment metrics file"):
        collect_accompany_runs([tmp_path / "c"])


def test_single_seed_cells_say_too_few_seeds(tmp_path: Path):
    fake_run(tmp_path, "ropepool", "bin", 0, nll=1.5, chord=0.7, notes=13)
    fake_run(tmp_path, "ropepool", "time", 0, nll=1.5, chord=0.5, notes=13)
    text = make_accompany_report([tmp_path], tmp_path / "rep").read_text()
    assert "too few seeds" in text and "| not separable |" not in text


def test_validation_nll_by_head_from_the_best_epoch(tmp_path: Path):
    for s in range(3):
        for ctx, count in (("bin", 0.43), ("time", 0.33)):
            d = fake_run(tmp_path, "ropepool", ctx, s, nll=1.5, chord=0.6, notes=13)
            rows = ["epoch,val_nll,val_count_nll,val_onset_nll,val_hold_nll",
                    f"1,1.60,{count + 0.1},0.50,0.70",  # a worse first epoch: not the one reported
                    f"2,1.50,{count + 0.001 * s},{0.40 if ctx == 'bin' else 0.46},0.63"]
            (d / "log.csv").write_text("\n".join(rows) + "\n")
    runs = collect_accompany_runs([tmp_path])
    assert {r.heads["val_nll"] for r in runs} == {1.5}
    text = make_accompany_report([tmp_path], tmp_path / "rep").read_text()
    assert "| RoPEPool | BIN | 3 | 1.5000 ± 0.0000 | 0.4310 ± 0.0010 | 0.4000 ± 0.0000 |" in text
    line = next(ln for ln in text.splitlines() if ln.startswith("- RoPEPool + BIN vs RoPEPool + TIME"))
    assert "count (when) p = " in line and "all p = nan" in line  # equal totals: not testable


def test_a_run_that_reads_the_chroma_as_input_is_its_own_cell(tmp_path: Path):
    fake_run(tmp_path, "ropepool", "bin", 0, nll=1.5, chord=0.65, notes=13)
    d = fake_run(tmp_path / "posin", "ropepool", "bin", 0, nll=1.48, chord=0.89, notes=13)
    cfg = json.loads((d / "config.json").read_text())
    cfg["model"]["pos_input"] = True
    (d / "config.json").write_text(json.dumps(cfg))
    runs = collect_accompany_runs([tmp_path, tmp_path / "posin"])  # not "two runs of RoPEPool + BIN seed 0"
    assert sorted(r.method for r in runs) == ["RoPEPool", "RoPEPool + chroma input"]
