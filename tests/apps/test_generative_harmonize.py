"""`stripes harmonize` with the generative model: modes, candidates, seeds, the sidecar, --regenerate.

A tiny untrained Accompanist (smoke profile, task=accompany) saved as an inference file stands in for a
trained one: what is tested is the plumbing (seeds, files, kept notes), not the music.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import symusic
import torch

from stripes.apps.harmonize import Options, harmonize_files
from stripes.apps.harmonize.errors import HarmonizeError
from stripes.cli import main

from .conftest import make_midi, scale_melody

CHORDS = "C | Am | F | G"


@pytest.fixture(scope="session")
def acc_model_file(tmp_path_factory) -> Path:
    """An untrained smoke-profile Accompanist (BIN) saved as an inference file with sampler settings."""
    from stripes.config import load_run_config
    from stripes.models.accompanist import build_accompanist
    from stripes.train.checkpoint import save_inference

    config = load_run_config("smoke", overrides={"task": "accompany", "data.source": "synthetic"})
    torch.manual_seed(0)
    model = build_accompanist(config, 12)
    path = tmp_path_factory.mktemp("acc") / "accompanist.pt"
    save_inference(path, model, config.to_dict(), context_dim=12, extra={"temperature": 1.0, "top_p": 0.9})
    return path


@pytest.fixture(scope="session")
def acc_loaded(acc_model_file):
    from stripes.apps.harmonize.generative import load_for_mode

    return load_for_mode(acc_model_file, "generative")


@pytest.fixture
def melody(tmp_path) -> Path:
    return make_midi(tmp_path / "tune.mid", scale_melody(16))  # 4 bars of 4/4


def _acc(path: Path) -> list[tuple[int, int, int, int]]:
    score = symusic.Score(str(path))
    (track,) = [t for t in score.tracks if t.name == "accompaniment"]
    return sorted((n.time, n.duration, n.pitch, n.velocity) for n in track.notes)


def _run(out: Path, inputs, loaded, **kw):
    logs: list[str] = []
    res = harmonize_files(inputs, Options(out_dir=out, png=kw.pop("png", False), **kw), log=logs.append,
                          loaded=loaded)
    return res, logs


def test_candidates_differ_same_seed_same_midi_and_sidecar(tmp_path, melody, acc_loaded, acc_model_file):
    (r,), logs = _run(tmp_path / "a", [melody], acc_loaded, chords=CHORDS, candidates=3, seed=5)
    assert r.error is None, r.error
    names = [p.name for p in r.outputs]
    assert names == ["tune.harmonized.mid", "tune.chords.txt", "tune.candidate2.harmonized.mid",
                     "tune.candidate3.harmonized.mid", "tune.harmonize.json"]
    mids = [tmp_path / "a" / n for n in names if n.endswith(".mid")]
    notes = [_acc(p) for p in mids]
    assert all(notes) and notes[0] != notes[1] != notes[2] != notes[0]
    side = json.loads((tmp_path / "a" / "tune.harmonize.json").read_text())
    assert side["seeds"] == [5, 6, 7] and [c["seed"] for c in side["candidates"]] == [5, 6, 7]
    assert [c["midi"] for c in side["candidates"]] == [p.name for p in mids]
    assert side["mode"] == "generative" and side["model"] == str(acc_model_file)
    assert (side["temperature"], side["top_p"]) == (1.0, 0.9)  # stored with the model
    assert side["sampler_settings_from"] == "stored with the model"
    assert side["key"] and side["chords"].startswith("given")
    # the same seed gives the same file; candidate k is seed + k - 1 on its own
    (r2,), _ = _run(tmp_path / "b", [melody], acc_loaded, chords=CHORDS, seed=6)
    assert (tmp_path / "b" / "tune.harmonized.mid").read_bytes() == mids[1].read_bytes()
    (r3,), _ = _run(tmp_path / "c", [melody], acc_loaded, chords=CHORDS, seed=5)
    assert (tmp_path / "c" / "tune.harmonized.mid").read_bytes() == mids[0].read_bytes()
    # temperature / top_p given: recorded; the default seed is 0
    (r4,), _ = _run(tmp_path / "d", [melody], acc_loaded, chords=CHORDS, temperature=0.7, top_p=0.5)
    side = json.loads((tmp_path / "d" / "tune.harmonize.json").read_text())
    assert (side["seeds"], side["temperature"], side["top_p"]) == ([0], 0.7, 0.5)
    assert _acc(tmp_path / "d" / "tune.harmonized.mid") != notes[0]


def test_velocities_follow_the_rule_and_melody_kept(tmp_path, melody, acc_loaded, monkeypatch):
    import stripes.apps.harmonize.generative as gen
    from stripes.apps.harmonize.render import accompaniment_velocities, notes_from_rolls
    from stripes.apps.harmonize.song import read_midi_song

    captured = {}
    real = gen.sample_rolls

    def spy(*a, **k):
        captured["out"] = real(*a, **k)
        return captured["out"]

    monkeypatch.setattr(gen, "sample_rolls", spy)
    (r,), _ = _run(tmp_path, [melody], acc_loaded, chords=CHORDS, seed=2)
    onset, frame, _ = captured["out"]
    grid = notes_from_rolls(frame, onset)
    song = read_midi_song(melody)
    vel = accompaniment_velocities(grid, song, 2)
    out = symusic.Score(str(r.outputs[0]))
    got = sorted((n.time, n.pitch, n.velocity) for n in out.tracks[1].notes)
    scale = out.ticks_per_quarter // 16
    assert got == sorted((int(a) * scale, int(p), int(v)) for (p, a, _), v in zip(grid, vel))
    mel = sorted((n.time, n.duration, n.pitch) for n in out.tracks[0].notes)
    assert mel == sorted(scale_melody(16))


def test_repeated_notes_are_separate_notes(tmp_path, melody, acc_loaded, monkeypatch):
    import stripes.apps.harmonize.generative as gen
    from stripes.apps.harmonize.render import build_score, notes_from_rolls
    from stripes.apps.harmonize.song import read_midi_song

    song = read_midi_song(melody)
    T = song.n_ticks
    frame = np.zeros((T, 128), bool)
    onset = np.zeros((T, 128), bool)
    frame[0:8, 60] = True  # C4 struck at 0 and again at 4: two notes
    onset[[0, 4], 60] = True
    frame[8:16, 64] = True  # E4 held over 8 ticks: one note
    onset[8, 64] = True
    assert notes_from_rolls(frame, onset).tolist() == [[60, 0, 4], [60, 4, 8], [64, 8, 16]]
    score = build_score(song, frame, onsets=onset)
    assert [(n.time, n.duration, n.pitch) for n in score.tracks[1].notes] == [
        (0, 120, 60), (120, 120, 60), (240, 240, 64)]  # 480 tpq: 30 input ticks per grid tick
    assert len(build_score(song, frame).tracks[1].notes) == 2  # without onsets (parallel): merged
    monkeypatch.setattr(gen, "sample_rolls", lambda *a, **k: (onset, frame, 1.0))
    (r,), _ = _run(tmp_path, [melody], acc_loaded, chords=CHORDS)
    acc = symusic.Score(str(r.outputs[0])).tracks[1].notes
    assert [(n.time, n.duration, n.pitch) for n in acc] == [(0, 120, 60), (120, 120, 60), (240, 240, 64)]


def _bar_range(path: Path, first: int, last: int) -> tuple[int, int]:
    """Input ticks [start of bar first, end of bar last) (1-based bars)."""
    from stripes.apps.harmonize.song import read_midi_song

    song = read_midi_song(path, "melody")
    edges = np.r_[song.bar_starts, song.n_ticks] * song.tpq // 16
    return int(edges[first - 1]), int(edges[last])


def test_regenerate_keeps_the_rest_note_for_note(tmp_path, acc_loaded):
    src = make_midi(tmp_path / "long.mid", scale_melody(24))  # 6 bars
    (r,), _ = _run(tmp_path / "o", [src], acc_loaded, chords="C | Am | F | G | C | G", seed=1)
    first = tmp_path / "o" / "long.harmonized.mid"
    before = first.read_bytes()
    (g,), logs = _run(tmp_path / "o", [first], acc_loaded, regenerate="3-4", seed=9, candidates=2)
    assert g.error is None, g.error
    assert [p.name for p in g.outputs] == ["long.regenerated.mid", "long.candidate2.regenerated.mid",
                                           "long.regenerate.json"]
    assert first.read_bytes() == before  # the input is never overwritten
    lo, hi = _bar_range(first, 3, 4)
    old = _acc(first)
    outside = [n for n in old if n[0] + n[1] <= lo or n[0] >= hi]
    assert outside and len(outside) < len(old)
    for out in g.outputs[:2]:
        new = _acc(out)
        have = Counter(new)
        assert all(have[n] >= c for n, c in Counter(outside).items()), "a note outside the bars changed"
        new_outside = [n for n in new if n[0] + n[1] <= lo or n[0] >= hi]
        inside_old = sorted(n for n in old if n not in outside)
        inside_new = sorted(n for n in new if n not in new_outside)
        assert inside_new != inside_old  # something changed in bars 3-4
        # nothing generated outside the bars: a note lying outside them now that was not there before is
        # what is kept of a note crossing the bars' edge (its start cut at the bar line, or its tail)
        crossing = [n for n in old if n not in outside]
        for t, d, p, v in Counter(new_outside) - Counter(outside):
            head = any((c[0], c[2], c[3]) == (t, p, v) and t + d == lo < c[0] + c[1] for c in crossing)
            tail = any(c[2] == p and c[0] < hi == t and c[0] + c[1] == t + d for c in crossing)
            assert head or tail, (t, d, p, v)
        score = symusic.Score(str(out))
        assert [t.name for t in score.tracks] == ["melody", "accompaniment"]
        mel = sorted((n.time, n.duration, n.pitch) for n in score.tracks[0].notes)
        assert mel == sorted(scale_melody(24))
        # the chords are read from the markers and written once again, not doubled
        assert [m.text for m in score.markers] == ["C", "Am", "F", "G", "C", "G"]
    assert _acc(g.outputs[0]) != _acc(g.outputs[1])
    side = json.loads((tmp_path / "o" / "long.regenerate.json").read_text())
    assert side["seeds"] == [9, 10] and side["regenerated_bars"] == "3-4"
    assert side["regenerated_from"] == str(first) and "chord markers" in side["chords"]
    # regenerating the regenerated file in its own folder replaces it, keeping the notes outside bar 6
    again = tmp_path / "o" / "long.regenerated.mid"
    keep = _acc(again)
    (h,), _ = _run(tmp_path / "o", [again], acc_loaded, regenerate="6", seed=3)
    assert h.outputs[0] == again and h.error is None
    lo6, _ = _bar_range(again, 6, 6)
    assert not Counter(n for n in keep if n[0] + n[1] <= lo6) - Counter(_acc(again))


def test_merge_regenerated_boundary_notes():
    """Notes at the bars' edges: a kept note the sampler holds past the bars' start stays as it was (the
    held part is a new note); a note crossing into the bars keeps its start and velocity."""
    from stripes.apps.harmonize.generative import merge_regenerated

    T, tpq = 32, 16  # input ticks = grid ticks
    regen = np.zeros(T, bool)
    regen[8:16] = True
    orig = np.array([
        [0, 8, 60, 70],  # ends at the bars' start (kept); the sampler holds it to 10
        [4, 8, 64, 71],  # crosses into the bars; the sampler releases it at 12
        [20, 4, 67, 72],  # after the bars: kept
        [12, 8, 72, 73],  # starts inside, ends after: its tail [16, 20) is kept
    ], np.int64)
    frame = np.zeros((T, 128), bool)
    onset = np.zeros((T, 128), bool)
    frame[0:10, 60] = True
    onset[0, 60] = True
    frame[4:12, 64] = True
    onset[4, 64] = True
    frame[20:24, 67] = True
    onset[20, 67] = True
    frame[16:20, 72] = True  # the kept tail; the sampler did not play 72 before it
    frame[9:11, 50] = True  # a sampled note
    onset[9, 50] = True
    grid, kept = merge_regenerated(orig, onset, frame, regen, tpq)
    assert sorted(map(tuple, kept.tolist())) == [(0, 8, 60, 70), (4, 8, 64, 71), (20, 4, 67, 72)]
    assert sorted(map(tuple, grid.tolist())) == [(50, 9, 11), (60, 8, 10), (72, 16, 20)]


def test_modes_auto_and_errors(tmp_path, melody, acc_model_file, smoke_model_file, monkeypatch, capsys):
    from stripes.apps.harmonize import model as model_mod
    from stripes.apps.harmonize.generative import LoadedAccompanist, load_for_mode, parse_bars
    from stripes.apps.harmonize.model import LoadedModel

    assert isinstance(load_for_mode(acc_model_file, "auto"), LoadedAccompanist)
    assert isinstance(load_for_mode(smoke_model_file, "auto"), LoadedModel)
    with pytest.raises(HarmonizeError, match="--mode generative"):
        load_for_mode(acc_model_file, "parallel")
    with pytest.raises(HarmonizeError, match="needs a generative model"):
        load_for_mode(smoke_model_file, "generative")
    # no --checkpoint: the shipped accompanist.pt beside the shipped harmonizer decides auto
    ship = tmp_path / "ship"
    ship.mkdir()
    shutil.copy(smoke_model_file, ship / "harmonizer.pt")
    monkeypatch.setattr(model_mod, "SHIPPED_MODEL", ship / "harmonizer.pt")
    assert isinstance(load_for_mode(None, "auto"), LoadedModel)
    with pytest.raises(HarmonizeError, match="no shipped generative model"):
        load_for_mode(None, "generative")
    shutil.copy(acc_model_file, ship / "accompanist.pt")
    assert isinstance(load_for_mode(None, "auto"), LoadedAccompanist)
    assert isinstance(load_for_mode(None, "parallel"), LoadedModel)
    assert parse_bars("2-4,7") == [1, 2, 3, 6] and parse_bars("3") == [2]
    for bad in ("0", "4-2", "x", "1-"):
        with pytest.raises(HarmonizeError, match="--regenerate"):
            parse_bars(bad)
    with pytest.raises(HarmonizeError, match="has 4 bars"):
        parse_bars("4-5", 4)
    out = str(tmp_path / "cli")
    # --regenerate / --candidates in parallel mode: one error line
    for extra in (["--regenerate", "2"], ["--candidates", "2"]):
        rc = main(["harmonize", str(melody), "--out", out, "--mode", "parallel", "--no-png", *extra])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and err.count("\n") == 0 and "needs the generative mode" in err
    rc = main(["harmonize", str(melody), "--out", out, "--regenerate", "1-x", "--no-png"])
    assert rc == 2 and "cannot read bars" in capsys.readouterr().err
    # a melody file without an accompaniment track cannot be regenerated
    rc = main(["harmonize", str(melody), "--out", out, "--regenerate", "2", "--no-png"])
    assert rc == 2 and "tracks 'melody' and 'accompaniment'" in capsys.readouterr().err
    # the CLI in generative mode (auto, shipped accompanist.pt) with candidates and a PNG per candidate
    rc = main(["harmonize", str(melody), "--out", out, "--chords", CHORDS, "--candidates", "2",
               "--temperature", "0.8", "--top-p", "0.9"])
    assert rc == 0
    names = sorted(p.name for p in Path(out).iterdir())
    assert names == ["tune.candidate2.harmonized.mid", "tune.candidate2.png", "tune.chords.txt",
                     "tune.harmonize.json", "tune.harmonized.mid", "tune.png"]
    side = json.loads((Path(out) / "tune.harmonize.json").read_text())
    assert (side["temperature"], side["top_p"], side["seeds"]) == (0.8, 0.9, [0, 1])
    capsys.readouterr()


def test_parallel_mode_gives_todays_output(tmp_path, melody, smoke_model_file):
    """--mode parallel (and auto with a parallel --checkpoint) is the thresholded path, file for file."""
    from stripes.apps.harmonize.estimate import melody_key
    from stripes.apps.harmonize.model import choose_notes, load_model, predict_probs
    from stripes.apps.harmonize.pipeline import resolve_chords
    from stripes.apps.harmonize.render import build_score
    from stripes.apps.harmonize.song import read_midi_song

    for mode in ("parallel", "auto"):
        assert main(["harmonize", str(melody), "--out", str(tmp_path / mode), "--checkpoint",
                     str(smoke_model_file), "--mode", mode, "--chords", CHORDS, "--seed", "4",
                     "--no-png"]) == 0
        names = sorted(p.name for p in (tmp_path / mode).iterdir())
        assert names == ["tune.chords.txt", "tune.harmonized.mid"]
    assert (tmp_path / "parallel/tune.harmonized.mid").read_bytes() == (
        tmp_path / "auto/tune.harmonized.mid").read_bytes()
    loaded = load_model(smoke_model_file)
    song = read_midi_song(melody)
    spans, chroma, _ = resolve_chords(song, CHORDS, lambda m: None)
    key = melody_key(song.grid_notes, song.bar_starts, song.beats, song.n_ticks, [s.chord for s in spans])
    probs = predict_probs(loaded, song.melody_roll(), chroma)
    chosen = choose_notes(probs, loaded.threshold, loaded.merge, 4)
    want = build_score(song, chosen, None, chords=spans, key=key, seed=4)
    got = symusic.Score(str(tmp_path / "parallel/tune.harmonized.mid"))
    assert sorted((n.time, n.duration, n.pitch, n.velocity) for n in got.tracks[1].notes) == sorted(
        (n.time, n.duration, n.pitch, n.velocity) for n in want.tracks[1].notes)


def test_shipped_accompanist_loads_and_plays_the_example(tmp_path):
    """When the package ships accompanist.pt: small, weights_only, sampler settings stored, and --example
    (auto mode) harmonizes the bundled melody with it."""
    from stripes.apps.harmonize.generative import LoadedAccompanist, load_for_mode
    from stripes.apps.harmonize.model import shipped_accompanist
    from stripes.train.checkpoint import load_checkpoint

    path = shipped_accompanist()
    if not path.is_file():
        pytest.skip("no shipped generative model")
    assert path.stat().st_size < 5 * 2**20
    ck = load_checkpoint(path)  # weights_only=True
    assert ck["config"]["task"] == "accompany" and {"temperature", "top_p"} <= set(ck["extra"])
    assert isinstance(load_for_mode(None, "auto"), LoadedAccompanist)
    assert main(["harmonize", "--example", "--out", str(tmp_path), "--no-png"]) == 0
    side = json.loads((tmp_path / "morning_walk.harmonize.json").read_text())
    assert side["mode"] == "generative" and side["model"] == str(path)
    notes = _acc(tmp_path / "morning_walk.harmonized.mid")
    assert 50 < len(notes) < 2000  # a trained model plays a sensible number of notes over 17 bars


def test_a_melody_model_is_named_as_such_in_generative_mode():
    """--mode generative with a task=melody run: the message names the melody task (it called the model a
    parallel task=harmonize one and suggested --mode parallel, which refuses it in turn)."""
    from stripes.apps.harmonize.generative import accompanist_from
    from stripes.config import load_run_config

    for task, expected in (("melody", "a task=melody model writes a melody"),
                           ("harmonize", "a parallel (task=harmonize) model")):
        cfg = load_run_config("smoke", overrides={"task": task})
        with pytest.raises(HarmonizeError) as info:
            accompanist_from(cfg, torch.nn.Linear(1, 1), {}, Path("run/model.pt"))
        assert str(info.value).startswith(f"run/model.pt: {expected}"), str(info.value)
        assert ("--mode parallel" in str(info.value)) == (task == "harmonize")
