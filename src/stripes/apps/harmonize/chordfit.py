"""Fit the chord estimator of :mod:`stripes.apps.harmonize.estimate` on POP909 and measure its accuracy.

``python -m stripes.apps.harmonize.chordfit [--data-root DIR] [--write] [--test]`` reads the raw POP909
files (no prepared cache), fits the classifier, key profile and chord-sequence tables on the training songs,
picks ``gamma`` on the validation songs and prints the per-beat accuracy on validation;
``--write`` stores ``model/chord_hmm.json``; ``--test`` also scores the test songs (do that once, for
the report; ``--eval-only --test`` scores the shipped model).

Data (all on the MIDI time axis, seconds): the MELODY track of ``NNN.mid`` (top note per onset, cut at
the next onset), the beats and bar lines of ``beat_midi.txt`` (column 3 = bar line; a pickup before the
first bar line is a bar of its own) and the chords of ``chord_midi.txt``. Note times are mapped to the
beat grid by interpolating between the annotated beats (16 ticks per beat), so melody, chords and
scoring share one grid. The training key frame comes from ``analyzed_key.txt``; when scoring, the key is
estimated from the melody, as it would be for a user's melody.

Scoring: one reference per annotated beat, the chord sounding at the beat's midpoint, reduced to root +
major/minor as mir_eval's ``majmin`` does: maj, 7, maj7, maj6 -> major; min, min7, min6, minmaj7 ->
minor, inversions dropped. Beats whose chord is sus2, sus4, sus4(b7), dim, hdim7, dim7, aug or N are
left out (the estimator outputs neither).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np

from stripes.apps.harmonize import estimate as est

PC = {n: i for i, n in enumerate("C C# D Eb E F F# G Ab A Bb B".split())}
PC.update({"Db": 1, "D#": 3, "Gb": 6, "G#": 8, "A#": 10, "Cb": 11})
MAJOR = {"maj", "7", "maj7", "maj6"}
MINOR = {"min", "min7", "min6", "minmaj7"}
BEAT = 16
GAMMAS = (0.1, 0.2, 0.3, 0.4, 0.6)


def label_state(label: str) -> int:
    """``chord_midi.txt`` label -> root*2 + minor, or -1 (N or neither major nor minor)."""
    if ":" not in label:
        return -1
    root, quality = label.split(":", 1)
    quality = quality.split("/")[0]
    if quality in MAJOR:
        return 2 * PC[root]
    if quality in MINOR:
        return 2 * PC[root] + 1
    return -1


def load_song(root: Path, sid: int) -> dict[str, Any]:
    """One song on the beat grid: notes (n, 3), bar_starts, beats, end (ticks), ref (n_beats,), key."""
    import symusic

    d = root / "POP909" / f"{sid:03d}"
    b = np.loadtxt(d / "beat_midi.txt", ndmin=2)
    bt, nb = b[:, 0], len(b)
    score = symusic.Score(str(d / f"{sid:03d}.mid"), ttype="second")
    n = next(t for t in score.tracks if t.name.strip().upper() == "MELODY").notes.numpy()
    on = n["time"].astype(float)
    off = on + n["duration"].astype(float)

    def ticks(t: np.ndarray) -> np.ndarray:
        x = np.interp(t, bt, np.arange(nb))
        x = np.where(t < bt[0], (t - bt[0]) / (bt[1] - bt[0]), x)
        x = np.where(t > bt[-1], nb - 1 + (t - bt[-1]) / (bt[-1] - bt[-2]), x)
        return np.round(x * BEAT).astype(np.int64)

    a, e, p = ticks(on), ticks(off), n["pitch"].astype(np.int64)
    o = np.lexsort((-p, a))
    a, e, p = a[o], np.maximum(e[o], a[o] + 1), p[o]
    keep = np.r_[True, a[1:] != a[:-1]]
    a, e, p = a[keep], e[keep], p[keep]
    e = np.minimum(e, np.r_[a[1:], np.iinfo(np.int64).max])
    ok = (a >= 0) & (e > a)
    bars = np.flatnonzero(b[:, 2] > 0)
    starts = np.r_[[0] if bars.size == 0 or bars[0] > 0 else [], bars].astype(np.int64)
    rows = [ln.rstrip("\n").split("\t") for ln in open(d / "chord_midi.txt", encoding="utf-8") if ln.strip()]
    cstart = np.array([float(r[0]) for r in rows])
    mid = np.r_[(bt[:-1] + bt[1:]) / 2, bt[-1] + (bt[-1] - bt[-2]) / 2]
    idx = np.searchsorted(cstart, mid, side="right") - 1
    ref = np.array([label_state(rows[i][2]) if i >= 0 else -1 for i in idx], np.int64)
    key = (root / "POP909-structure" / f"{sid:03d}" / "analyzed_key.txt").read_text().split()[0]
    tonic, mode = key.split(":")
    return {
        "sid": sid, "notes": np.stack([a[ok], e[ok], p[ok]], 1), "bar_starts": starts * BEAT,
        "beats": np.diff(np.r_[starts, nb]), "end": nb * BEAT, "ref": ref,
        "frame": est.key_frame(PC[tonic], mode == "min"),
    }


def split_ids(root: Path) -> dict[str, list[int]]:
    with np.load(root / "structurePE" / "split.npz") as z:
        return {s: sorted(int(i) for i in z[f"{s}_idx"]) for s in ("train", "val", "test")}


def load_songs(data_root: Any = None, splits: tuple[str, ...] = ("train", "val", "test"),
               limit: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """Per split, per song (see :func:`load_song`); ``limit`` keeps the first songs of each split."""
    root = Path(data_root or os.environ.get("STRIPES_DATA") or Path.home() / ".cache/stripes/data")
    ids = split_ids(root)
    return {s: [load_song(root, i) for i in ids[s][:limit]] for s in splits}


def _rel(state: np.ndarray, frame: int) -> np.ndarray:
    return np.where(state >= 0, 2 * ((state // 2 - frame) % 12) + state % 2, -1)


def _beats(s: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, int]]]:
    edges, pos = est.beat_grid(s["bar_starts"], s["beats"], s["end"])
    return est.slot_histograms(s["notes"], edges), pos, est.half_bars(s["bar_starts"], s["beats"], s["end"])


def train_lr(
    X: np.ndarray, y: np.ndarray, iters: int = 300, lr: float = 0.05, l2: float = 1e-4
) -> np.ndarray:
    """Multinomial logistic regression by full-batch Adam from zeros (deterministic)."""
    W = np.zeros((X.shape[1], est.N_STATES))
    m, v = np.zeros_like(W), np.zeros_like(W)
    Y = np.eye(est.N_STATES)[y]
    for it in range(1, iters + 1):
        P = np.exp(est.log_softmax(X @ W))
        G = X.T @ (P - Y) / len(X) + l2 * W
        m = 0.9 * m + 0.1 * G
        v = 0.999 * v + 0.001 * G * G
        W -= lr * (m / (1 - 0.9**it)) / (np.sqrt(v / (1 - 0.999**it)) + 1e-8)
    return W


def fit(songs: list[dict[str, Any]], smoothing: float = 1.0, iters: int = 300) -> est.HMMParams:
    """Key profile, half-bar chord tables (key frame) and the per-beat classifier."""
    keyprof = np.full(12, smoothing)
    prior = np.full(24, smoothing)
    change = np.full((2, 2), smoothing)
    big = np.full((24, 24), smoothing)
    np.fill_diagonal(big, 0.0)
    Xs, ys = [], []
    for s in songs:
        hists, pos, halves = _beats(s)
        fr = s["frame"]
        keyprof += np.roll(hists.sum((0, 1)), -fr)
        rs = _rel(s["ref"][: len(pos)], fr)
        X = est.features(hists, pos, halves, fr)
        Xs.append(X[rs >= 0])
        ys.append(rs[rs >= 0])
        prev = -1
        for a, b, h in halves:
            r = rs[a:b]
            r = r[r >= 0]
            cur = int(np.bincount(r, minlength=24).argmax()) if r.size else -1
            if cur >= 0:
                prior[cur] += 1
                if prev >= 0:
                    change[h, int(cur != prev)] += 1
                    if cur != prev:
                        big[prev, cur] += 1
            prev = cur
    with np.errstate(divide="ignore"):
        norm = lambda m: np.log(m / m.sum(-1, keepdims=True))  # noqa: E731
        W = train_lr(np.concatenate(Xs), np.concatenate(ys), iters=iters)
        return est.HMMParams(W, norm(keyprof), norm(prior), norm(change), norm(big))


def predict(s: dict[str, Any], params: est.HMMParams, true_key: bool = False, blind: bool = False
            ) -> np.ndarray:
    """Predicted state per annotated beat. ``blind``: the most likely chord of the estimated key."""
    frame = s["frame"] if true_key else None
    states, halves, _, fr = est.estimate_states(
        s["notes"], s["bar_starts"], s["beats"], s["end"], params, frame
    )
    out = np.full(len(s["ref"]), -1, np.int64)
    for (a, b, _), x in zip(halves, states):
        out[a:b] = x
    if blind:
        best = int(np.argmax(params.prior))
        out[:] = 2 * ((best // 2 + fr) % 12) + best % 2
    return out


def accuracy(songs: list[dict[str, Any]], params: est.HMMParams, **kw: bool) -> dict[str, float]:
    """Per-beat accuracy (root + maj/min, and root only) over the beats with a maj/min reference."""
    hit = root_hit = total = 0
    for s in songs:
        pred, ref = predict(s, params, **kw), s["ref"]
        ok = ref >= 0
        hit += int(np.count_nonzero(pred[ok] == ref[ok]))
        root_hit += int(np.count_nonzero(pred[ok] // 2 == ref[ok] // 2))
        total += int(ok.sum())
    return {"majmin": hit / max(total, 1), "root": root_hit / max(total, 1), "beats": total,
            "songs": len(songs)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root")
    ap.add_argument("--write", action="store_true", help=f"write {est.PARAMS_PATH}")
    ap.add_argument("--eval-only", action="store_true", help="score the shipped model (no fitting)")
    ap.add_argument("--test", action="store_true", help="also score the test songs (report once)")
    args = ap.parse_args(argv)
    songs = load_songs(args.data_root)
    if args.eval_only:
        params = est.default_params()
    else:
        params = fit(songs["train"])
        best = None
        for g in GAMMAS:
            params.gamma = g
            acc = accuracy(songs["val"], params)["majmin"]
            print(f"gamma {g:<5} val majmin {acc:.4f}", flush=True)
            if best is None or acc > best[0]:
                best = (acc, g)
        assert best is not None
        params.gamma = best[1]
    for split in ("val", "test") if args.test else ("val",):
        a = accuracy(songs[split], params)
        t = accuracy(songs[split], params, true_key=True)
        b = accuracy(songs[split], params, blind=True)
        print(f"{split}: majmin {a['majmin']:.4f} root {a['root']:.4f} ({a['beats']} beats, "
              f"{a['songs']} songs); annotated key {t['majmin']:.4f}; "
              f"melody-blind baseline {b['majmin']:.4f}", flush=True)
    if args.write:
        est.PARAMS_PATH.parent.mkdir(parents=True, exist_ok=True)
        est.PARAMS_PATH.write_text(params.to_json() + "\n")
        print(f"wrote {est.PARAMS_PATH} ({est.PARAMS_PATH.stat().st_size} bytes)")
    return 0


__all__ = ["accuracy", "fit", "label_state", "load_song", "load_songs", "main", "predict"]

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
