"""Fixtures of the harmonizer tests: a small model file and MIDI builders (no POP909 data needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch


@pytest.fixture(scope="session")
def smoke_model_file(tmp_path_factory) -> Path:
    """An (untrained) smoke-profile BIN model saved as an inference file with a stored threshold."""
    from stripes.config import load_run_config
    from stripes.models import build_model
    from stripes.train.checkpoint import save_inference

    config = load_run_config("smoke", overrides={"data.source": "synthetic"})
    torch.manual_seed(0)
    model = build_model(config, 12)
    path = tmp_path_factory.mktemp("model") / "harmonizer.pt"
    save_inference(path, model, config.to_dict(), context_dim=12, extra={"threshold": 0.5, "merge": None})
    return path


@pytest.fixture(scope="session")
def loaded_model(smoke_model_file):
    from stripes.apps.harmonize.model import load_model

    return load_model(smoke_model_file)


class ChordEcho(torch.nn.Module):
    """A stand-in harmonizer: plays the chord tones of the BIN context in octave 4 (logits +-8)."""

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        logits = torch.full((*x.shape[:2], 128), -8.0)
        logits[..., 60:72] = 16.0 * pos - 8.0
        return logits


@pytest.fixture
def echo_model():
    from stripes.apps.harmonize.model import LoadedModel

    return LoadedModel(ChordEcho(), 0.5, None, "chord echo", "test")


def make_midi(
    path: Path,
    notes,
    *,
    tpq: int = 480,
    tempos=((0, 120.0),),
    sigs=((0, 4, 4),),
    name: str = "melody",
    extra_tracks=(),
) -> Path:
    """Write a MIDI file: notes (time, duration, pitch) in ticks; extra_tracks: (name, notes, is_drum)."""
    import symusic

    s = symusic.Score(tpq)
    for t, q in tempos:
        s.tempos.append(symusic.Tempo(int(t), float(q)))
    for t, n, d in sigs:
        s.time_signatures.append(symusic.TimeSignature(int(t), int(n), int(d)))
    for tname, tnotes, drum in ((name, notes, False), *extra_tracks):
        tr = symusic.Track(tname, 0, drum)
        for t, d, p in tnotes:
            tr.notes.append(symusic.Note(int(t), int(d), int(p), 90))
        s.tracks.append(tr)
    s.dump_midi(str(path))
    return path


def scale_melody(n: int = 16, tpq: int = 480, start: int = 0) -> list[tuple[int, int, int]]:
    pitches = [60, 62, 64, 65, 67, 69, 71, 72]
    return [(start + i * tpq, tpq, pitches[i % 8]) for i in range(n)]


@pytest.fixture
def rng():
    return np.random.default_rng(0)
