"""Chord estimation you can judge: the six metrics of Yeh et al. (2021) on POP909 songs, and accuracy.

``stripes harmonize-eval chords [--split test] [--limit N] [--out DIR]`` (or :func:`run`) reads the raw
POP909 songs of a structurePE split the way :mod:`stripes.apps.harmonize.chordfit` does (melody track,
annotated beats and bars, ``chord_midi.txt``) and scores, per song, the metrics of
:mod:`stripes.metrics.chord_quality` for these rows:

* ``estimated``: the shipped chord estimator, melody only, key estimated from the melody (as
  ``stripes harmonize`` runs it when no chords are given);
* ``human``: the annotated chords;
* ``human +1 semitone``: the annotated chords transposed up a semitone, a negative control that the
  melody metrics must rank below ``human`` (the chord-only metrics cannot: they are transposition blind);
* ``human, per beat``: the annotated chords at their own rhythm, one chord per beat.

The first three rows are one chord per half bar (the estimator's chord rate, and Yeh et al.'s): the
estimator's chord, and for the human chords the triad (:func:`~stripes.metrics.chord_quality.triad`) of
the annotated chord on most of the half bar's beats. Every row leaves out the half bars (beats) whose human
chord is N, so all rows are scored on the same music. Metrics are per song, then mean and standard
deviation over songs (Yeh et al.'s protocol).

Accuracy per annotated beat (the chord at the beat's midpoint), split by whether a melody note sounds in
the beat: mir_eval's ``root`` (every beat with a chord) and ``majmin`` (major/minor references), plus the
chordfit rule (root + major/minor on the major/minor beats; the number docs/model-card.md reports).

Writes ``DIR/chord_eval.json`` (means, per-song values, accuracies) and ``DIR/chord_eval.md`` (the table)
atomically.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from stripes.apps.harmonize import chordfit
from stripes.apps.harmonize import estimate as est
from stripes.data import resolve_data_root
from stripes.errors import ConfigError, DataError
from stripes.fileio import atomic_write_text
from stripes.metrics import chord_quality as cq

ROWS = ("estimated", "human", "human +1 semitone", "human, per beat")
CONTROL_ROWS = ("human", "human +1 semitone")
MELODY_METRICS = ("CTnCTR", "PCS", "MCTD")
DIRECTION = {"CHE": "≈ human", "CC": "≈ human", "CTD": "≈ human", "CTnCTR": "↑", "PCS": "↑", "MCTD": "↓"}


def beat_labels(root: Path, sid: int) -> list[str]:
    """``chord_midi.txt`` label sounding at the midpoint of each annotated beat (``N`` before the first
    chord), the reference of :func:`chordfit.load_song`."""
    d = root / "POP909" / f"{sid:03d}"
    bt = np.loadtxt(d / "beat_midi.txt", ndmin=2)[:, 0]
    rows = [ln.rstrip("\n").split("\t") for ln in open(d / "chord_midi.txt", encoding="utf-8") if ln.strip()]
    starts = np.array([float(r[0]) for r in rows])
    mid = np.r_[(bt[:-1] + bt[1:]) / 2, bt[-1] + (bt[-1] - bt[-2]) / 2]
    idx = np.searchsorted(starts, mid, side="right") - 1
    return [rows[i][2] if i >= 0 else "N" for i in idx]


def state_label(state: int) -> str:
    """Estimator state (root * 2 + minor) -> Harte label (``C#:min``)."""
    return f"{cq.PITCH_NAMES[state // 2]}:{'min' if state % 2 else 'maj'}"


def _row(labels: list[str], pcs: dict[str, tuple[int, ...]], cells: list[tuple[int, int]],
         notes: np.ndarray) -> dict[str, float]:
    spans = [(a, b, pcs[lab]) for lab, (a, b) in zip(labels, cells)]
    return cq.chord_quality(labels, [pcs[lab] for lab in labels], notes, spans)


def score_song(s: dict[str, Any], labels: list[str], params: est.HMMParams) -> dict[str, Any]:
    """Metrics of every row and per-beat accuracy records of one song (``s`` from chordfit.load_song,
    ``labels`` from :func:`beat_labels`)."""
    if len(labels) != len(s["ref"]):
        raise DataError(f"song {s['sid']}: {len(labels)} beat labels for {len(s['ref'])} beats")
    tri = {lab: cq.triad(lab) for lab in set(labels)}
    beat_tri = [tri[lab][0] for lab in labels]
    pcs = {t: p for t, p in tri.values()}
    edges, _ = est.beat_grid(s["bar_starts"], s["beats"], s["end"])
    halves = est.half_bars(s["bar_starts"], s["beats"], s["end"])
    pred = chordfit.predict(s, params)
    cells, human, estim = [], [], []
    for a, b, _ in halves:
        top = Counter(beat_tri[a:b]).most_common(1)[0][0]  # ties: the earliest
        if top != "N":
            cells.append((int(edges[a]), int(edges[b])))
            human.append(top)
            estim.append(state_label(int(pred[a])))
    shifted = [cq.transpose(lab, 1) for lab in human]
    for lab in estim + shifted:
        pcs.setdefault(lab, cq.triad(lab)[1])
    notes = s["notes"]
    beats = [k for k, lab in enumerate(beat_tri) if lab != "N" and k + 1 < len(edges)]
    rows = {
        "estimated": _row(estim, pcs, cells, notes),
        "human": _row(human, pcs, cells, notes),
        "human +1 semitone": _row(shifted, pcs, cells, notes),
        "human, per beat": _row([beat_tri[k] for k in beats], pcs,
                                [(int(edges[k]), int(edges[k + 1])) for k in beats], notes),
    }
    # accuracy records per beat: melody present, reference label, estimated label, chordfit state
    n = len(edges) - 1
    has_melody = np.zeros(n, bool)
    for on, off, _ in notes:
        lo = int(np.searchsorted(edges, on, side="right")) - 1
        hi = int(np.searchsorted(edges, off, side="left"))
        has_melody[max(lo, 0) : min(hi, n)] = True
    return {"sid": int(s["sid"]), "rows": rows, "half_bars": len(cells),
            "melody": has_melody.tolist(), "ref": labels[:n], "est": [state_label(int(x)) for x in pred[:n]],
            "ref_state": s["ref"][:n].tolist(), "est_state": pred[:n].tolist()}


def accuracy(songs: list[dict[str, Any]]) -> dict[str, dict[str, float | int]]:
    """Per-beat accuracy over ``songs`` (records of :func:`score_song`) for all beats and for the beats
    with / without a melody note: mir_eval root and majmin (N references left out: the estimator never says
    N) and chordfit's root + major/minor rule (``beat_majmin``, ``beat_root``, over ``beat_n`` beats)."""
    out = {}
    melody = np.concatenate([np.asarray(s["melody"], bool) for s in songs])
    ref = [lab for s in songs for lab in s["ref"]]
    est_ = [lab for s in songs for lab in s["est"]]
    rs = np.concatenate([np.asarray(s["ref_state"], np.int64) for s in songs])
    es = np.concatenate([np.asarray(s["est_state"], np.int64) for s in songs])
    is_chord = {lab: cq.triad(lab)[0] != "N" for lab in set(ref)}
    chord = np.array([is_chord[lab] for lab in ref], bool)
    for name, sel in (("all", np.ones_like(melody)), ("with_melody", melody), ("without_melody", ~melody)):
        keep = np.flatnonzero(sel & chord)
        acc: dict[str, float | int] = cq.chord_accuracy([ref[i] for i in keep], [est_[i] for i in keep])
        ok = sel & (rs >= 0)
        n = int(ok.sum())
        acc["beat_majmin"] = float((es[ok] == rs[ok]).mean()) if n else math.nan
        acc["beat_root"] = float((es[ok] // 2 == rs[ok] // 2).mean()) if n else math.nan
        acc["beat_n"] = n
        acc["beats"] = int(sel.sum())
        out[name] = acc
    return out


def summarize(songs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per row and metric: mean, sd (ddof 1) and n over the songs with a value."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for row in ROWS:
        out[row] = {}
        for m in cq.METRICS:
            v = np.array([s["rows"][row][m] for s in songs], float)
            v = v[np.isfinite(v)]
            out[row][m] = {"mean": float(v.mean()) if v.size else math.nan,
                           "sd": float(v.std(ddof=1)) if v.size > 1 else math.nan, "n": int(v.size)}
    return out


def control_check(summary: dict[str, dict[str, dict[str, float]]]) -> dict[str, bool]:
    """Per melody metric: does the semitone-shifted control score worse than the human chords?"""
    h, c = (summary[r] for r in CONTROL_ROWS)
    return {m: bool(h[m]["mean"] > c[m]["mean"]) if cq.HIGHER_IS_BETTER[m] else
            bool(h[m]["mean"] < c[m]["mean"]) for m in MELODY_METRICS}


def _pct(x: float) -> str:
    return "–" if not math.isfinite(x) else f"{100 * x:.1f} %"


def markdown(result: dict[str, Any]) -> str:
    """The metrics table and the accuracy table."""
    s, n = result["summary"], result["songs"]
    lines = [f"POP909 {result['split']} songs: {n}; mean ± sd over songs (`{result['command']}`).", "",
             "| chords | " + " | ".join(f"{m} ({DIRECTION[m]})" for m in cq.METRICS) + " |",
             "|---|" + "---|" * len(cq.METRICS)]
    for row in ROWS:
        cells = []
        for m in cq.METRICS:
            v = s[row][m]
            digits = 1 if m == "CC" else 3
            cells.append(f"{v['mean']:.{digits}f} ± {v['sd']:.{digits}f}" if math.isfinite(v["sd"])
                         else f"{v['mean']:.{digits}f}")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    lines += ["", "| estimator accuracy, per beat | beats | mir_eval root (beats scored) | "
              "mir_eval majmin (beats scored) | root + maj/min, chordfit rule |", "|---|---|---|---|---|"]
    for name, label in (("all", "all beats"), ("with_melody", "beats with a melody note"),
                        ("without_melody", "beats without a melody note")):
        a = result["accuracy"][name]
        lines.append(f"| {label} | {a['beats']:,} | {_pct(a['root'])} ({a['root_n']:,}) | "
                     f"{_pct(a['majmin'])} ({a['majmin_n']:,}) | {_pct(a['beat_majmin'])} |")
    check = result["control_below_human"]
    lines += ["", "Semitone-shifted control ranked below human by " +
              ", ".join(f"{m} {'yes' if ok else 'NO'}" for m, ok in check.items()) + "."]
    return "\n".join(lines) + "\n"


def run(data_root: str | None = None, out: str | Path = "results/chord-eval", split: str = "test",
        limit: int | None = None, command: str = "stripes harmonize-eval chords",
        progress: bool = True) -> dict[str, Any]:
    """Score the songs of ``split`` (the first ``limit``) and write ``out``/chord_eval.{json,md}."""
    from tqdm import tqdm

    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be 1 or more, got {limit}")
    root = resolve_data_root(data_root)
    if not (root / "structurePE" / "split.npz").is_file():
        raise DataError(f"{root / 'structurePE' / 'split.npz'}: not found (run `stripes data fetch`)")
    ids = chordfit.split_ids(root)[split][:limit]
    params = est.default_params()
    t0 = time.perf_counter()
    bar = tqdm(ids, desc=f"chord-eval {split}", unit="song", disable=None if progress else True)
    songs = [score_song(chordfit.load_song(root, sid), beat_labels(root, sid), params) for sid in bar]
    if not songs:
        raise DataError(f"no {split} songs in {root / 'structurePE' / 'split.npz'}")
    summary = summarize(songs)
    result = {
        "split": split, "songs": len(songs), "command": command,
        "seconds": round(time.perf_counter() - t0, 1),
        "chord_rate": "half bar (rows estimated, human, human +1 semitone); beat (human, per beat)",
        "summary": summary, "accuracy": accuracy(songs), "control_below_human": control_check(summary),
        "per_song": [{"sid": s["sid"], "half_bars": s["half_bars"], "rows": s["rows"]} for s in songs],
    }
    out = Path(out)
    atomic_write_text(out / "chord_eval.json", json.dumps(result, indent=1, allow_nan=True) + "\n")
    atomic_write_text(out / "chord_eval.md", markdown(result))
    return result


__all__ = ["accuracy", "beat_labels", "control_check", "markdown", "run", "score_song", "summarize"]
