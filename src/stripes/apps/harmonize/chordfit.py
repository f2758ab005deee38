"""Fit the chord HMM of :mod:`stripes.apps.harmonize.estimate` on POP909 and measure its accuracy.

``python -m stripes.apps.harmonize.chordfit [--data-root DIR] [--cache-dir DIR] [--write]`` counts the
tables on the training songs (melody from the aligned MIDI roll, chords from Dai et al.'s annotations,
key from ``analyzed_key.txt``), picks the emission weight ``alpha`` on the validation songs and prints the
per-beat accuracy (root + major/minor) on the test songs; ``--write`` stores ``model/chord_hmm.json``.

Scoring: a reference chord is *major* when its pitch classes hold the root's major third and fifth,
*minor* for the minor third and fifth; beats whose reference is neither (sus, dim, aug, power chords,
no chord) are left out, as in mir_eval's ``majmin``. The key is estimated from the melody (not taken from
the annotations) when scoring, as it would be for a user's melody.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from stripes.apps.harmonize.estimate import (
    PARAMS_PATH,
    HMMParams,
    emission_matrix,
    estimate_states,
    key_frame,
    pitch_class_histogram,
    viterbi,
)

SEG = 32  # half a 4/4 bar on the training grid
BEAT = 16


def _triad_labels(table: np.ndarray) -> np.ndarray:
    """(N, 13) chord table rows [root+1, chroma] -> (N,) state root*2+minor, or -1 (not maj/min)."""
    out = np.full(len(table), -1, np.int64)
    for i, row in enumerate(table):
        if row[0] == 0:
            continue
        r = int(row[0]) - 1
        pcs = set(np.flatnonzero(row[1:]).tolist())
        if {(r + 4) % 12, (r + 7) % 12} <= pcs:
            out[i] = 2 * r
        elif {(r + 3) % 12, (r + 7) % 12} <= pcs:
            out[i] = 2 * r + 1
    return out


def load_songs(data_root: Any = None, cache_dir: Any = None) -> dict[str, list[dict[str, Any]]]:
    """Per split, per song: grid melody notes (n, 3), per-tick chord state (or -1), tonic, minor."""
    from stripes.data.prepare import SONG_COLUMNS, prepare
    from stripes.data.store import PreparedData
    from stripes.metrics import extract_notes

    pd = PreparedData(prepare(data_root, cache_dir, workers=1))
    labels = _triad_labels(pd.chord_table)
    col = {c: i for i, c in enumerate(SONG_COLUMNS)}
    splits = ("train", "val", "test")
    out: dict[str, list[dict[str, Any]]] = {s: [] for s in splits}
    for row in pd.songs:
        off, n = int(row[col["offset"]]), int(row[col["length"]])
        mel = PreparedData.unpack(pd.roll[off : off + n])[:, :128]
        notes = extract_notes(mel)[:, [1, 2, 0]]  # (onset, end, pitch)
        out[splits[int(row[col["split"]])]].append(
            {
                "notes": notes,
                "state": labels[np.asarray(pd.chord[off : off + n], dtype=np.int64)],
                "tonic": int(row[col["tonic"]]),
                "minor": bool(row[col["minor"]]),
                "n": n,
            }
        )
    return out


def _segments(n: int) -> np.ndarray:
    starts = np.arange(0, n, SEG)
    return np.stack([starts, np.minimum(starts + SEG, n)], axis=1)


def fit(songs: list[dict[str, Any]], smoothing: float = 1.0) -> HMMParams:
    """Count prior, transitions (per half bar, key frame) and root-relative emissions."""
    prior = np.full(24, smoothing)
    trans = np.full((24, 24), smoothing)
    emit = np.full((2, 12), smoothing)
    for s in songs:
        frame = key_frame(s["tonic"], s["minor"])
        segs = _segments(s["n"])
        prev = -1
        for a, b in segs:
            st = s["state"][a:b]
            st = st[st >= 0]
            if st.size == 0:
                prev = -1
                continue
            state = int(np.bincount(st).argmax())
            rel = 2 * ((state // 2 - frame) % 12) + state % 2
            prior[rel] += 1
            if prev >= 0:
                trans[prev, rel] += 1
            prev = rel
            h = pitch_class_histogram(s["notes"], int(a), int(b))
            emit[state % 2] += np.roll(h, -(state // 2)) / 4.0
    norm = lambda m: np.log(m / m.sum(-1, keepdims=True))  # noqa: E731
    return HMMParams(norm(prior), norm(trans), norm(emit))


def accuracy(songs: list[dict[str, Any]], params: HMMParams, use_true_key: bool = False) -> dict[str, float]:
    """Per-beat accuracy (root + maj/min, and root only) over the beats with a maj/min reference."""
    hit = root_hit = total = 0
    for s in songs:
        segs = _segments(s["n"])
        key = (s["tonic"], s["minor"]) if use_true_key else None
        states, _ = estimate_states(s["notes"], segs, params, key=key)
        beat_ref = s["state"][BEAT // 2 :: BEAT]  # the chord at the middle of each beat
        beat_pred = np.repeat(states, SEG // BEAT)[: len(beat_ref)]
        ok = beat_ref[: len(beat_pred)] >= 0
        ref, pred = beat_ref[: len(beat_pred)][ok], beat_pred[ok]
        hit += int(np.count_nonzero(ref == pred))
        root_hit += int(np.count_nonzero(ref // 2 == pred // 2))
        total += int(ref.size)
    return {
        "majmin": hit / max(total, 1),
        "root": root_hit / max(total, 1),
        "beats": total,
        "songs": len(songs),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root")
    ap.add_argument("--cache-dir")
    ap.add_argument("--write", action="store_true", help=f"write {PARAMS_PATH}")
    args = ap.parse_args(argv)
    songs = load_songs(args.data_root, args.cache_dir)
    params = fit(songs["train"])
    best = None
    for alpha in (0.25, 0.5, 1.0, 2.0):
        params.alpha = alpha
        acc = accuracy(songs["val"], params)["majmin"]
        print(f"alpha {alpha:<5} val majmin {acc:.4f}")
        if best is None or acc > best[0]:
            best = (acc, alpha)
    assert best is not None
    params.alpha = best[1]
    for split in ("val", "test"):
        a = accuracy(songs[split], params)
        t = accuracy(songs[split], params, use_true_key=True)
        print(
            f"{split}: majmin {a['majmin']:.4f} root {a['root']:.4f} ({a['beats']} beats, {a['songs']} "
            f"songs); with the annotated key: majmin {t['majmin']:.4f}"
        )
        base = HMMParams(params.prior, params.trans, params.emit * 0.0, 0.0)
        b = accuracy(songs[split], base)
        print(
            f"{split}: baseline without melody evidence (most likely chord of the estimated key): "
            f"majmin {b['majmin']:.4f}"
        )
    if args.write:
        PARAMS_PATH.parent.mkdir(parents=True, exist_ok=True)
        PARAMS_PATH.write_text(params.to_json() + "\n")
        print(f"wrote {PARAMS_PATH}")
    return 0


__all__ = ["accuracy", "emission_matrix", "fit", "load_songs", "main", "viterbi"]

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
