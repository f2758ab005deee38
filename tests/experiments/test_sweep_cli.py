"""``stripes sweep`` / ``stripes reproduce`` through the CLI, with fake train / evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import stripes.experiments.sweep as sw
from stripes.cli import main
from stripes.config import load_run_config
from stripes.experiments.reproduce import reproduce


def _mi_rows() -> list[dict]:
    """A small MI table in the format of stripes.analysis.mi.mi_table."""
    return [{"context": c, "plugin": v, "miller_madow": v, "shuffle": v, "p1": v, "n_samples": 10,
             "n_labels": 3} for c, v in (("time", 0.01), ("rep", 0.04), ("key", 0.05), ("bin", 1.0))]


def test_sweep_dry_run_lists_runs_and_states(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "runs"
    assert main(["sweep", "p1-table3", "--seeds", "1", "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    quick_lr = load_run_config("quick").train.lr  # a null lr in the sweep means the profile's own
    assert "12 runs in" in text and sw.run_name("ropepool", {}, "bin", 0, quick_lr, "quick") + "_" in text
    assert not out.exists()  # a dry run creates nothing


def test_sweep_cli_runs_resumes_and_reports_failures(tmp_path: Path, fake_runner,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "s.json"
    cfg.write_text(json.dumps({"name": "s", "profile": "smoke", "seeds": [0], "contexts": ["time"],
                               "methods": [{"pe": "rope"}, {"pe": "fstripe_sff"}]}))
    out = tmp_path / "runs"
    argv = ["sweep", str(cfg), "--out", str(out), "--set", "train.epochs=1"]
    assert main(argv) == 1  # one run failed
    text = capsys.readouterr().out
    assert "failed 1" in text and "SFF exploded" in text
    (rope,) = out.glob("smoke_rope_time_s0_lr1e-3_*")
    assert json.loads((rope / "config.json").read_text())["train"]["epochs"] == 1
    assert main(argv + ["--dry-run"]) == 0
    listing = capsys.readouterr().out
    assert "done" in listing and "failed" in listing


def test_sweep_cli_bad_config_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "nope-table", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("stripes: error: unknown sweep")


def test_reproduce_runs_sweeps_once_and_writes_report(tmp_path: Path, fake_runner,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "repro"
    argv = ["reproduce", "--profile", "smoke", "--out", str(out), "--tables", "p1-table2,p1-table3",
            "--seeds", "2", "--no-mi"]
    assert main(argv) == 0
    runs = [p for p in (out / "runs").iterdir() if p.is_dir()]
    assert len(runs) == (12 + 12 - 4) * 2  # the 4 best-RoPE rows are shared between the two tables
    assert all((r / sw.DONE).exists() for r in runs)
    report = (out / "report" / "report.md").read_text()
    assert "P1 Table II" in report and "P1 Table III" in report
    n = len(fake_runner.calls(out / "runs"))
    assert main(argv) == 0  # resumable: nothing reruns
    assert len(fake_runner.calls(out / "runs")) == n


def test_reproduce_mi_step_runs_once_and_feeds_report(tmp_path: Path, fake_runner,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import stripes.analysis.mi as mi_mod

    calls = []

    def fake_mi_table(data_root, cache_dir, split="train", **kw):  # noqa: ANN001, ANN003
        calls.append(split)
        return _mi_rows()

    monkeypatch.setattr(mi_mod, "mi_table", fake_mi_table)
    out = tmp_path / "repro"
    res = reproduce(["p1-table3"], profile="smoke", out=out, n_seeds=2, log=lambda s: None)
    assert calls == ["train"] and (out / "mi" / "mi.json").is_file()
    md = Path(res["report"]).read_text()
    assert "P1 Table I — mutual information" in md and (out / "report" / "fig4_mi.png").is_file()
    assert "MI ranking BIN > KEY > REP > TIME (P1 Table I)** — *reproduced*" in md
    assert "From `mi.json` (beside this report)." in md  # no path of this machine in a committed report
    # the report folder is commit-ready: mi.json and every run's record, without checkpoints
    rep = out / "report"
    assert json.loads((rep / "mi.json").read_text()) == json.loads((out / "mi" / "mi.json").read_text())
    records = sorted(p.name for p in (rep / "runs").iterdir())
    assert records == sorted(p.name for p in (out / "runs").iterdir() if (p / "config.json").is_file())
    assert not list((rep / "runs").rglob("*.pt"))
    assert all((rep / "runs" / n / "DONE").is_file() for n in records)
    from stripes.experiments.report import make_report

    again = make_report([rep / "runs"], tmp_path / "again", table="p1-table3")  # finds rep/mi.json
    assert (again.parent / "runs.csv").read_text() == (rep / "runs.csv").read_text()
    assert "P1 Table I — mutual information" in again.read_text()
    reproduce(["p1-table3"], profile="smoke", out=out, n_seeds=2, log=lambda s: None)
    assert calls == ["train"]  # mi.json exists: not recomputed


def test_reproduce_reuse_continues_from_a_committed_report(tmp_path: Path, fake_runner,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A sweep continued elsewhere: --reuse copies the committed records (and mi.json) and reruns none."""
    first = tmp_path / "first"
    base = ["reproduce", "--profile", "smoke", "--tables", "p1-table3", "--no-mi"]
    assert main(base + ["--out", str(first), "--seeds", "1"]) == 0
    committed = first / "report"
    (committed / "mi.json").write_text(json.dumps({"unit": "nats", "rows": _mi_rows()}))
    second = tmp_path / "second"
    assert main(base + ["--out", str(second), "--seeds", "2", "--reuse", str(committed)]) == 0
    assert "reused 12 finished run record(s)" in capsys.readouterr().out
    trained = {c["run"] for c in fake_runner.calls(second / "runs") if c.get("what") == "train"}
    assert len(trained) == 12 and all("_s1_" in name for name in trained)  # only the new seed ran
    assert (second / "mi" / "mi.json").read_text() == (committed / "mi.json").read_text()
    rows = (second / "report" / "runs.csv").read_text().splitlines()
    assert len(rows) == 1 + 24 * 2  # 24 runs x (16, 64 bars)
    assert main(base + ["--out", str(tmp_path / "bad"), "--reuse", str(tmp_path / "nowhere")]) == 2
    assert "--reuse" in capsys.readouterr().err
