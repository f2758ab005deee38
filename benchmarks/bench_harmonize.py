"""Speed of ``stripes harmonize`` after the model is loaded: one 100-bar song (4/4, 100 bpm, about 4 min)
on one CPU thread, stage by stage, then a batch of 20 such songs in one process; then the same song with the
shipped generative model (sampled tick by tick, 64 ticks a bar) beside the parallel model, end to end.

    python benchmarks/bench_harmonize.py [--checkpoint RUN_DIR_OR_FILE] [--wav] [--threads 1] [--no-batch]

Without --checkpoint it uses the shipped model if present, else an untrained model of the ``quick`` shape
(the speed does not depend on the weights).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def make_song(path: Path, bars: int = 100, seed: int = 0) -> Path:
    import symusic

    rng = np.random.default_rng(seed)
    s = symusic.Score(480)
    s.tempos.append(symusic.Tempo(0, 100.0))
    s.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    tr = symusic.Track("melody", 0, False)
    t, end = 0, bars * 4 * 480
    while t < end:
        d = int(rng.choice([240, 480, 960]))
        if rng.random() < 0.9:
            tr.notes.append(symusic.Note(t, d, int(rng.choice([60, 62, 64, 65, 67, 69, 71, 72, 74, 76])), 90))
        t += d
    s.tracks.append(tr)
    s.dump_midi(str(path))
    return path


def quick_shaped_model():
    from stripes.apps.harmonize.model import LoadedModel
    from stripes.config import load_run_config
    from stripes.models import build_model

    cfg = load_run_config("quick", overrides={"data.source": "synthetic"})
    return LoadedModel(build_model(cfg, 12).eval(), 0.3, None, "untrained quick-shaped model", "default")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint")
    ap.add_argument("--wav", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-batch", action="store_true", help="skip the batch of 20 songs")
    args = ap.parse_args()
    from stripes.apps.harmonize import Options, harmonize_files
    from stripes.apps.harmonize.estimate import estimate_chords
    from stripes.apps.harmonize.model import SHIPPED_MODEL, choose_notes, load_model, predict_probs
    from stripes.apps.harmonize.pipeline import resolve_chords
    from stripes.apps.harmonize.render import build_score, write_png
    from stripes.apps.harmonize.song import read_midi_song

    t0 = time.perf_counter()
    if args.checkpoint or SHIPPED_MODEL.is_file():
        loaded = load_model(args.checkpoint)
    else:
        loaded = quick_shaped_model()
    torch.set_num_threads(args.threads)
    print(
        f"model: {loaded.source} (loaded in {time.perf_counter() - t0:.2f} s); torch threads {args.threads}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        song_path = make_song(tmp / "song100.mid")
        # warm-up (first-call costs: imports, allocator)
        harmonize_files(
            [song_path], Options(out_dir=tmp / "warm", png=True), log=lambda m: None, loaded=loaded
        )
        stages = {}
        t = time.perf_counter()
        song = read_midi_song(song_path)
        stages["read + quantize"] = time.perf_counter() - t
        t = time.perf_counter()
        estimate_chords(song.grid_notes, song.bar_starts, song.beats, song.n_ticks)
        stages["estimate chords"] = time.perf_counter() - t
        spans, chroma, _ = resolve_chords(song, None, lambda m: None)
        t = time.perf_counter()
        probs = predict_probs(loaded, song.melody_roll(), chroma)
        stages[f"forward pass (T={song.n_ticks})"] = time.perf_counter() - t
        t = time.perf_counter()
        chosen = choose_notes(probs, loaded.threshold, loaded.merge)
        build_score(song, chosen).dump_midi(str(tmp / "x.mid"))
        stages["binarize + MIDI"] = time.perf_counter() - t
        t = time.perf_counter()
        write_png(tmp / "x.png", song, probs, chosen, spans)
        stages["PNG"] = time.perf_counter() - t
        for k, v in stages.items():
            print(f"  {k:<28} {v:7.3f} s")
        t = time.perf_counter()
        (r,) = harmonize_files(
            [song_path], Options(out_dir=tmp / "one", wav=args.wav), log=lambda m: None, loaded=loaded
        )
        one = time.perf_counter() - t
        print(
            f"100-bar song ({len(song.bar_starts)} bars, {song.score.to('second').end():.0f} s of music), "
            f"end to end after the model is loaded{' with WAV' if args.wav else ''}: {one:.2f} s"
        )
        generative(song_path, tmp, one, args.wav)
        if args.no_batch:
            return
        songs = [make_song(tmp / f"s{i}.mid", bars=100, seed=i) for i in range(20)]
        t = time.perf_counter()
        res = harmonize_files(songs, Options(out_dir=tmp / "batch"), log=lambda m: None, loaded=loaded)
        dt = time.perf_counter() - t
        print(
            f"batch of 20 songs in one process: {dt:.1f} s ({dt / 20:.2f} s per song, "
            f"{sum(1 for x in res if not x.error)} written)"
        )


def generative(song_path: Path, tmp: Path, parallel_s: float, wav: bool) -> None:
    """The shipped generative model on the same song, end to end (read, chords, sampling, MIDI, PNG)."""
    from stripes.apps.harmonize import Options, harmonize_files
    from stripes.apps.harmonize.generative import load_for_mode

    loaded = load_for_mode(None, "generative")
    harmonize_files([song_path], Options(out_dir=tmp / "gwarm", mode="generative", seed=0),
                    log=lambda m: None, loaded=loaded)
    times = []
    for seed in range(3):
        t = time.perf_counter()
        opts = Options(out_dir=tmp / "gen", mode="generative", seed=seed, wav=wav)
        (r,) = harmonize_files([song_path], opts, log=lambda m: None, loaded=loaded)
        times.append(time.perf_counter() - t)
        if r.error:
            raise SystemExit(f"generative harmonize failed: {r.error}")
    best = min(times)
    print(
        f"generative model ({loaded.source}), same song end to end, best of 3 seeds: {best:.2f} s "
        f"(runs {', '.join(f'{x:.2f}' for x in times)}); parallel model {parallel_s:.2f} s; "
        f"ratio {best / parallel_s:.1f}x; goal < 10 s: {'met' if best < 10 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
