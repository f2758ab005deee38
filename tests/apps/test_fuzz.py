"""Byte-mutated and truncated MIDI files: every one gives a result or a one-line error, never a crash."""

import numpy as np

from stripes.apps.harmonize import Options, harmonize_files

from .conftest import make_midi, scale_melody

N_MUTATED, N_TRUNCATED = 200, 100


def test_fuzz_midi(tmp_path, loaded_model):
    base = make_midi(
        tmp_path / "base.mid",
        scale_melody(6, tpq=96),
        tpq=96,
        tempos=((0, 100.0), (192, 80.0)),
        extra_tracks=[("Chords", [(0, 384, 48), (0, 384, 52)], False)],
    ).read_bytes()
    rng = np.random.default_rng(12)
    files = []
    for i in range(N_MUTATED):
        data = bytearray(base)
        for _ in range(int(rng.integers(1, 8))):
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        files.append(tmp_path / f"m{i}.mid")
        files[-1].write_bytes(bytes(data))
    for i in range(N_TRUNCATED):
        files.append(tmp_path / f"t{i}.mid")
        files[-1].write_bytes(base[: int(rng.integers(0, len(base)))])
    logs = []
    res = harmonize_files(
        files, Options(out_dir=tmp_path / "out", png=False), log=logs.append, loaded=loaded_model
    )
    assert len(res) == len(files)
    failed = [r for r in res if r.error]
    assert all("\n" not in r.error and str(r.input) in r.error for r in failed)
    assert not any("cannot harmonize (" in r.error for r in failed), [r.error for r in failed][:5]
    ok = [r for r in res if not r.error]
    assert all(p.is_file() for r in ok for p in r.outputs)
    print(f"fuzz: {len(files)} files, {len(ok)} harmonized, {len(failed)} one-line errors")
