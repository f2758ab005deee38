"""Evaluation: metrics JSON schema, binarization selection, MIDI/PNG outputs, CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from stripes.cli import main
from stripes.experiments.evaluate import roll_to_track, select_binarization, write_midi
from stripes.metrics import binarize, extract_notes, onset_prf
from stripes.train import train

from ..train.conftest import tiny_config

SCHEMA_KEYS = {"bars", "checkpoint", "n_windows", "selected", "validation", "eval", "at_selected", "at_0.5",
               "bce", "bce_per_position"}
METRICS = {"cs", "ssmd", "gs", "ndd", "frame_p", "frame_r", "frame_f1", "onset_p", "onset_r", "onset_f1"}


def test_evaluate_smoke_run_writes_valid_metrics_json(tmp_path) -> None:
    from stripes.experiments.evaluate import evaluate_run

    cfg = tiny_config(**{"train.epochs": 1})
    run = train(cfg, tmp_path / "run", progress=False)
    res = evaluate_run(run, bars=2, progress=False)
    on_disk = json.loads((run / "metrics_2.json").read_text())
    assert on_disk == res
    assert set(res) == SCHEMA_KEYS
    assert res["bars"] == 2 and res["n_windows"] == 3
    sel = res["selected"]
    assert set(sel) == {"method", "threshold", "merge", "criterion", "at_grid_edge"}
    assert sel["threshold"] in cfg.eval.thresholds and sel["merge"] in cfg.eval.merges
    # the validation grid is kept: every point, the chosen one scoring best
    grid = res["validation"]["grid"]
    assert len(grid) == len(cfg.eval.thresholds) * len(cfg.eval.merges)
    assert grid[f"{sel['threshold']}|{sel['merge']}"] == res["validation"]["score"] == max(grid.values())
    assert res["eval"]["thresholds"] == cfg.eval.thresholds
    assert sel["method"] == ("threshold" if sel["merge"] is None else "threshold+merge")
    assert sel["criterion"] == "val onset F1"
    for key in ("at_selected", "at_0.5"):
        assert set(res[key]) == METRICS and all(math.isfinite(v) for v in res[key].values())
    assert len(res["bce_per_position"]) == 128  # 2 bars x 64 ticks
    assert math.isclose(res["bce"], float(np.mean(res["bce_per_position"])), rel_tol=1e-9)
    assert 0.0 < res["bce"] < 2.0
    lines = (run / "metrics_2_windows.csv").read_text().splitlines()
    assert len(lines) == 1 + 3
    import symusic

    mids = sorted((run / "examples_2").glob("*.mid"))
    assert len(mids) == cfg.eval.n_examples and (run / "examples_2" / (mids[0].stem + ".png")).is_file()
    score = symusic.Score(str(mids[0]))
    names = [t.name for t in score.tracks]  # symusic drops empty tracks (synthetic data has no bridge)
    assert names[0] == "MELODY" and set(names) <= {"MELODY", "BRIDGE", "PIANO"}
    assert score.ticks_per_quarter == 16


def _windows(rng: np.random.Generator, n: int = 4, t: int = 96) -> list[dict]:
    out = []
    for _ in range(n):
        target = np.zeros((t, 128), bool)
        for start in range(0, t, 12):
            target[start : start + 6, rng.integers(40, 80)] = True
        probs = np.where(target, 0.65, 0.0)
        noise = rng.random((t, 128)) < 0.02
        probs = np.where(noise & ~target, 0.55, probs)  # false notes between 0.5 and 0.6
        out.append({"probs": probs, "target": target})
    return out


def test_selection_picks_the_validation_best_grid_point() -> None:
    wins = _windows(np.random.default_rng(0))
    thresholds, merges = [0.2, 0.3, 0.4, 0.5, 0.6, 0.8], [None, 2, 4, 8]
    sel = select_binarization(wins, thresholds, merges, "onset_f1")
    brute = {
        (t, m): np.mean([onset_prf(binarize(w["probs"], t, m), w["target"])[2] for w in wins])
        for m in merges
        for t in thresholds
    }
    best = max(brute.values())
    assert math.isclose(sel["score"], best)
    assert brute[(sel["threshold"], sel["merge"])] == best
    assert (sel["threshold"], sel["merge"]) == (0.6, None)  # the oracle: exactly the true notes survive
    assert math.isclose(best, 1.0)


def test_selection_flags_a_choice_at_the_edge_of_the_grid() -> None:
    wins = _windows(np.random.default_rng(0))  # the oracle threshold is in (0.55, 0.65]
    assert not select_binarization(wins, [0.2, 0.6, 0.8], [None], "onset_f1")["at_grid_edge"]
    low = select_binarization(wins, [0.6, 0.7, 0.8], [None], "onset_f1")  # best at the grid's low end
    assert low["threshold"] == 0.6 and low["at_grid_edge"]
    assert not select_binarization(wins, [0.6], [None], "onset_f1")["at_grid_edge"]  # one point: no edge


def test_evaluate_overrides_only_eval_settings(tmp_path) -> None:
    from stripes.errors import ConfigError
    from stripes.experiments.evaluate import evaluate_run

    run = train(tiny_config(**{"train.epochs": 1}), tmp_path / "run", progress=False)
    res = evaluate_run(run, bars=2, progress=False, eval_overrides={"eval.thresholds": [0.25, 0.75]})
    assert res["selected"]["threshold"] in (0.25, 0.75) and res["eval"]["thresholds"] == [0.25, 0.75]
    assert {k.split("|")[0] for k in res["validation"]["grid"]} == {"0.25", "0.75"}
    with pytest.raises(ConfigError, match="only override eval"):
        evaluate_run(run, bars=2, progress=False, eval_overrides={"train.lr": 0.1})
    with pytest.raises(ConfigError, match="thresholds"):
        evaluate_run(run, bars=2, progress=False, eval_overrides={"eval.thresholds": [1.5]})


def test_selection_prefers_merge_when_predictions_are_fragmented() -> None:
    wins = _windows(np.random.default_rng(1))
    for w in wins:  # holes of 2 ticks inside every true note
        w["probs"] = np.where(w["target"], 0.65, 0.0)
        w["probs"][2::6] = 0.0
    sel = select_binarization(wins, [0.5], [None, 2, 4], "onset_f1")
    assert sel["merge"] in (2, 4) and sel["method"] == "threshold+merge"


def test_midi_round_trip(tmp_path) -> None:
    rng = np.random.default_rng(3)
    rolls = [(rng.random((64, 128)) < 0.03) for _ in range(3)]
    path = tmp_path / "song.mid"
    write_midi(path, *rolls)
    import symusic

    score = symusic.Score(str(path))
    for roll, track in zip(rolls, score.tracks):
        notes = sorted((n.pitch, n.time, n.time + n.duration) for n in track.notes)
        assert notes == sorted(map(tuple, extract_notes(roll).tolist()))
    assert len(roll_to_track(np.zeros((8, 128), bool), "x").notes) == 0


def test_cli_train_and_evaluate(tmp_path, capsys) -> None:
    out = tmp_path / "cli_run"
    sets = [
        "data.source=synthetic",
        "data.bars=2",
        "data.synthetic_windows=8",
        "train.max_len=32",
        "eval.max_val_windows=2",
        "eval.max_test_windows=2",
    ]
    argv = [
        "train",
        "--profile",
        "smoke",
        "--pe",
        "nope",
        "--context",
        "bin",
        "--seed",
        "3",
        "--epochs",
        "1",
        "--out",
        str(out),
        "--no-progress",
    ]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["pe"] == "nope" and cfg["seed"] == 3 and cfg["train"]["epochs"] == 1
    assert main(["train", "--out", str(out), "--resume", "--no-progress"]) == 0  # nothing left to do
    with pytest.raises(SystemExit):
        main(["evaluate", str(out), "--bars", "2"])  # only 16 or 64 on the command line
    assert main(["train", "--profile", "smoke", "--set", "train.nope=1", "--out", str(tmp_path / "bad")]) == 2
    assert "unknown config key" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "missing")]) == 2
    assert main(["evaluate", str(out), "--set", "train.lr=1"]) == 2
    assert "only override eval" in capsys.readouterr().err
