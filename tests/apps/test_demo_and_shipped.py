"""The demo's harmonization of the bundled melody, and the shipped model against `stripes evaluate`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import symusic


def test_demo_harmonizes_the_bundled_melody(smoke_model_file: Path, tmp_path: Path) -> None:
    from stripes.apps.demo import harmonize_example

    outs = harmonize_example(tmp_path / "h", fallback_run=smoke_model_file)
    names = {p.name for p in outs}
    assert {"morning_walk.harmonized.mid", "morning_walk.png", "morning_walk.chords.txt",
            "morning_walk.wav"} <= names
    score = symusic.Score(str(tmp_path / "h" / "morning_walk.harmonized.mid"))
    examples = Path(__file__).parents[2] / "src/stripes/apps/harmonize/examples"
    src = symusic.Score(str(examples / "morning_walk.mid"))
    mel = next(t for t in score.tracks if t.name == "melody")
    assert len(mel.notes) == sum(len(t.notes) for t in src.tracks)


def _window_to_midi(path: Path, melody: np.ndarray, chroma: np.ndarray) -> None:
    """A POP909 window as a user's file: a `melody` track and a `chords` track of block chords, 16 tpq."""
    from stripes.metrics import extract_notes

    score = symusic.Score(16)
    mel = symusic.Track("melody", 0, False)
    for pitch, on, off in extract_notes(melody):
        mel.notes.append(symusic.Note(int(on), int(off - on), int(pitch), 90))
    chords = symusic.Track("chords", 0, False)
    change = np.flatnonzero(np.any(np.diff(chroma, axis=0) != 0, axis=1)) + 1
    bounds = [0, *change.tolist(), len(chroma)]
    for on, off in zip(bounds[:-1], bounds[1:]):
        for pc in np.flatnonzero(chroma[on] > 0.5):
            chords.notes.append(symusic.Note(int(on), int(off - on), int(48 + pc), 60))
    score.tracks.extend([mel, chords])
    score.dump_midi(str(path))


def _roll(track, n: int) -> np.ndarray:
    r = np.zeros((n, 128), bool)
    for note in track.notes:
        r[note.start : min(note.end, n), note.pitch] = True
    return r


def test_shipped_model_matches_evaluate_on_pop909_test_melodies(shared_data: Path, tmp_path: Path) -> None:
    """The shipped checkpoint loads (weights_only, < 5 MB) and harmonizes POP909 test melodies given as MIDI
    files (melody + chords track, no bridge) with note F1 close to `stripes evaluate`'s path on the same
    windows (which also sees the bridge track)."""
    import torch

    from stripes.apps.harmonize.model import SHIPPED_MODEL, load_model
    from stripes.apps.harmonize.pipeline import Options, harmonize_files
    from stripes.config import load_run_config
    from stripes.metrics import binarize, onset_prf
    from stripes.train.data import make_dataset
    from stripes.train.predict import forward_logits

    assert SHIPPED_MODEL.is_file(), f"the shipped model is missing: {SHIPPED_MODEL}"
    assert SHIPPED_MODEL.stat().st_size < 5 * 2**20
    loaded = load_model()
    test = make_dataset(load_run_config("harmonizer"), "test", 16, shared_data, tmp_path / "cache")
    idx = list(range(0, len(test), len(test) // 8))[:8]
    f_app, f_eval, files = [], [], []
    for i in idx:
        item = test[i]
        x, chroma = item["x"].numpy(), item["pos"].numpy()
        files.append(tmp_path / f"w{i}.mid")
        _window_to_midi(files[-1], x[:, :128] > 0.5, chroma)
        logits = forward_logits(loaded.model, item["x"][None], item["pos"][None])[0]
        pred = binarize(torch.sigmoid(logits).numpy(), loaded.threshold, loaded.merge)
        f_eval.append(onset_prf(pred, item["y"].numpy() > 0.5)[2])
    results = harmonize_files(files, Options(out_dir=tmp_path / "out", png=False), log=lambda m: None,
                              loaded=loaded)
    for i, res in zip(idx, results):
        assert res.error is None, res.error
        out = symusic.Score(str(tmp_path / "out" / f"w{i}.harmonized.mid"))
        acc = next(t for t in out.tracks if t.name == "accompaniment")
        target = test[i]["y"].numpy() > 0.5
        f_app.append(onset_prf(_roll(acc, len(target)), target)[2])
    assert np.mean(f_eval) > 0.1  # a trained model, not noise
    assert abs(np.mean(f_app) - np.mean(f_eval)) < 0.05, (np.mean(f_app), np.mean(f_eval))


@pytest.mark.parametrize("bad", [b"", b"\x80\x02garbage"])
def test_shipped_loader_refuses_bad_files(tmp_path: Path, bad: bytes) -> None:
    from stripes.apps.harmonize.errors import HarmonizeError
    from stripes.apps.harmonize.model import load_model

    f = tmp_path / "m.pt"
    f.write_bytes(bad)
    with pytest.raises(HarmonizeError, match="cannot load model"):
        load_model(f)


def test_harmonize_refuses_a_code_running_checkpoint(tmp_path: Path, capsys) -> None:
    import os

    import torch

    from stripes.cli import main

    target = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):  # noqa: ANN204
            return (os.system, (f"touch {target}",))

    torch.save({"config": {}, "model": {}, "context_dim": 12, "x": Evil()}, tmp_path / "evil.pt")
    assert main(["harmonize", "--example", "--out", str(tmp_path / "o"), "--checkpoint",
                 str(tmp_path / "evil.pt")]) == 2
    err = capsys.readouterr().err
    assert "refusing to load" in err and "Traceback" not in err
    assert not target.exists() and not (tmp_path / "o" / "morning_walk.harmonized.mid").exists()
