"""Outputs of the harmonizer: the MIDI file (melody kept note for note + accompaniment) and the picture.

Every file is written atomically (temporary file, then ``os.replace``), so an interrupted run never leaves
a half-written output.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from stripes.apps.harmonize.chords import Span
from stripes.apps.harmonize.song import GRID, Song
from stripes.fileio import atomic_path, atomic_write_bytes


def _grid_to_input(ticks: np.ndarray, tpq: int) -> np.ndarray:
    return np.round(np.asarray(ticks, np.float64) * tpq / GRID).astype(np.int64)


VELOCITY_RULE = (
    "accompaniment velocity = base + beat + register + humanize: base = median melody velocity - 12 "
    "(clipped to 45..90); beat: downbeat +10, the middle of a bar of 4, 6, 8... beats +5, other beats 0, "
    "half-beat offbeats -6, finer offbeats -10; register: below C3 (MIDI 48) +4, from C5 (72) up -4; "
    "humanize: a uniform integer in -3..3 from numpy's default_rng(seed, or 0 without --seed)"
)


def beat_strength(onsets: np.ndarray, bar_starts: np.ndarray, beats: np.ndarray, end: int) -> np.ndarray:
    """(n,) int: 3 downbeat, 2 middle of a bar with an even number >= 4 of beats, 1 other beat,
    0 half-beat offbeat, -1 finer offbeat, for grid-tick onsets."""
    onsets = np.asarray(onsets, np.int64)
    starts = np.asarray(bar_starts, np.int64)
    edges = np.r_[starts, max(int(end), int(starts[-1]) + 1 if len(starts) else 1)]
    b = np.clip(np.searchsorted(starts, onsets, side="right") - 1, 0, max(len(starts) - 1, 0))
    if len(starts) == 0:
        return np.full(len(onsets), 1, np.int64)
    off = onsets - starts[b]
    length = np.maximum(edges[b + 1] - starts[b], 1)
    n = np.maximum(np.asarray(beats, np.int64)[b], 1)
    out = np.full(len(onsets), -1, np.int64)
    out[(off * 2 * n) % length == 0] = 0
    on_beat = (off * n) % length == 0
    out[on_beat] = 1
    out[on_beat & (n >= 4) & (n % 2 == 0) & (off * 2 == length)] = 2
    out[off == 0] = 3
    return out


def accompaniment_velocities(
    notes: np.ndarray, song: Song, seed: int | None = None
) -> np.ndarray:
    """Velocities of accompaniment notes given as (m, 3) grid (pitch, onset, offset); see
    :data:`VELOCITY_RULE`. Deterministic: the same song and seed give the same velocities."""
    if len(notes) == 0:
        return np.zeros(0, np.int64)
    mel_vel = song.melody[:, 3] if len(song.melody) else np.array([82])
    base = int(np.clip(round(float(np.median(mel_vel))) - 12, 45, 90))
    strength = beat_strength(notes[:, 1], song.bar_starts, song.beats, song.n_ticks)
    beat = np.select([strength == 3, strength == 2, strength == 1, strength == 0], [10, 5, 0, -6], -10)
    pitch = notes[:, 0]
    register = np.where(pitch < 48, 4, np.where(pitch >= 72, -4, 0))
    rng = np.random.default_rng(0 if seed is None else int(seed))
    human = rng.integers(-3, 4, size=len(notes))
    return np.clip(base + beat + register + human, 1, 127).astype(np.int64)


def notes_from_rolls(frame: np.ndarray, onset: np.ndarray) -> np.ndarray:
    """Frame and onset rolls (T, 128) -> (m, 3) int64 grid notes (pitch, onset, offset) like
    :func:`stripes.metrics.extract_notes`, but a new onset inside a sounding run starts a new note (repeated
    notes stay separate): :func:`stripes.metrics.texture.notes_from_rolls` in this module's layout, sorted by
    onset, then pitch."""
    from stripes.metrics.texture import notes_from_rolls as notes

    arr = np.array([(p, a, b) for a, b, p in notes(frame, onset)], np.int64).reshape(-1, 3)
    return arr[np.lexsort((arr[:, 0], arr[:, 1]))] if len(arr) else arr


def build_score(
    song: Song,
    accompaniment: np.ndarray,
    spans: list[Span] | None = None,
    velocity: int | None = None,
    *,
    chords: list[Span] | None = None,
    key: Any = None,
    seed: int | None = None,
    accompaniment_program: int = 0,
    onsets: np.ndarray | None = None,
    notes: np.ndarray | None = None,
    kept: np.ndarray | None = None,
) -> Any:
    """A symusic Score in the input's ticks, ready for a DAW.

    Kept from the input: ticks per quarter, tempo map, time and key signatures, markers. Tracks: ``melody``
    (the melody notes exactly as read, velocities included, with the input track's GM program),
    ``accompaniment`` (GM program ``accompaniment_program``, 0 = Acoustic Grand Piano; from the (T, 128)
    binary roll on the training grid; velocities by :data:`VELOCITY_RULE`, or all ``velocity`` when given)
    and, when ``spans`` is given, ``chords`` (block chords, octave 3-4, velocity 55). ``chords``: a marker
    meta event with the chord symbol at every chord change (``N.C.`` where the chords stop). ``key``: an
    :class:`~stripes.apps.harmonize.estimate.Key` written as the key signature when the input has none.

    Generated accompaniments: ``onsets`` (T, 128), the onset roll beside the frame roll ``accompaniment``,
    splits notes at every onset (repeated notes stay separate, :func:`notes_from_rolls`); ``notes`` (m, 3)
    grid (pitch, onset, offset) replaces the roll altogether; ``kept`` (k, 4) notes in the input's ticks
    (time, duration, pitch, velocity) are added as they are (the accompaniment kept by ``--regenerate``).
    The velocity rule applies to the grid notes only; with ``kept`` the track is sorted by time, pitch."""
    import symusic

    from stripes.metrics import extract_notes

    src = song.score
    tpq = song.tpq
    out = symusic.Score(tpq)
    for name in ("tempos", "time_signatures", "key_signatures", "markers"):
        dst = getattr(out, name, None)
        if dst is not None:
            for ev in getattr(src, name):
                dst.append(ev.copy() if hasattr(ev, "copy") else ev)
    if key is not None and len(out.key_signatures) == 0:
        out.key_signatures.append(symusic.KeySignature(0, int(key.sharps), int(bool(key.minor))))
    if chords:
        marks = list(out.markers)
        previous = None
        for s in chords:
            symbol = s.chord.symbol if s.chord.pcs else "N.C."
            if symbol == previous or (previous is None and symbol == "N.C."):
                continue
            (tick,) = _grid_to_input(np.array([s.start]), tpq)
            marks.append(symusic.TextMeta(int(tick), symbol))
            previous = symbol
        marks.sort(key=lambda m: m.time)
        out.markers.clear()
        for m in marks:
            out.markers.append(m)
    melody = symusic.Track("melody", int(song.melody_program), False)
    for t, d, p, v in song.melody:
        melody.notes.append(symusic.Note(int(t), int(d), int(p), int(v)))
    out.tracks.append(melody)
    acc = symusic.Track("accompaniment", int(accompaniment_program), False)
    if notes is None:
        notes = extract_notes(accompaniment) if onsets is None else notes_from_rolls(accompaniment, onsets)
    notes = np.asarray(notes, np.int64).reshape(-1, 3)
    if len(notes):
        on = _grid_to_input(notes[:, 1], tpq)
        off = np.maximum(_grid_to_input(notes[:, 2], tpq), on + 1)
        vel = (
            np.full(len(notes), int(velocity)) if velocity is not None
            else accompaniment_velocities(notes, song, seed)
        )
        for (p, _, _), a, b, v in zip(notes, on, off, vel):
            acc.notes.append(symusic.Note(int(a), int(b - a), int(p), int(v)))
    if kept is not None and len(kept):
        for t, d, p, v in np.asarray(kept, np.int64).reshape(-1, 4):
            acc.notes.append(symusic.Note(int(t), int(d), int(p), int(v)))
        acc.notes.sort(key=lambda n: (n.time, n.pitch, n.duration))
    out.tracks.append(acc)
    if spans:
        ch = symusic.Track("chords", 0, False)
        for s in spans:
            if not s.chord.pcs:
                continue
            a, b = _grid_to_input(np.array([s.start, s.end]), tpq)
            for pc in s.chord.pcs:
                ch.notes.append(symusic.Note(int(a), int(max(b - a, 1)), 48 + pc + 12 * (pc < 5), 55))
        out.tracks.append(ch)
    return out


def write_midi(path: Path, score: Any) -> None:
    """Dump a symusic Score atomically."""
    with atomic_path(path, suffix=".mid") as tmp:
        score.dump_midi(str(tmp))


def write_png(
    path: Path, song: Song, probs: np.ndarray, chosen: np.ndarray, spans: list[Span], title: str = "",
    label: str = "accompaniment pitch\n(grey: probability, blue: notes)",
) -> None:
    """Melody (with chord labels above) and accompaniment (probabilities in grey, chosen notes in blue)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    T = probs.shape[0]
    mel = song.melody_roll()
    n_bars = max(len(song.bar_starts), 1)
    width = float(np.clip(3 + 0.3 * n_bars, 8, 32))
    step = max(1, T // 2000)  # draw at most ~2000 columns (max-pooled) so long songs stay fast

    def pool(roll: np.ndarray) -> np.ndarray:
        r = np.asarray(roll, dtype=np.float32)
        n = (len(r) + step - 1) // step * step
        r = np.pad(r, ((0, n - len(r)), (0, 0)))
        return r.reshape(-1, step, r.shape[1]).max(1)

    fig, (ax1, ax2) = plt.subplots(
        2, 1, figsize=(width, 6.2), sharex=True, gridspec_kw={"height_ratios": [1, 2]}
    )

    def prange(roll: np.ndarray, pad: int = 2) -> tuple[int, int]:
        act = np.flatnonzero(np.asarray(roll).any(0))
        lo, hi = (int(act.min()) - pad, int(act.max()) + pad + 1) if act.size else (48, 84)
        return max(lo, 0), min(hi, 128)

    lo, hi = prange(mel)
    ax1.imshow(
        pool(mel).T[lo:hi],
        aspect="auto",
        origin="lower",
        interpolation="nearest",
        cmap=ListedColormap([(1, 1, 1, 0), (0.8, 0.1, 0.1, 1)]),
        extent=(0, T, lo, hi),
        vmin=0,
        vmax=1,
    )
    for s in spans:
        ax1.axvspan(
            s.start,
            s.end,
            ymin=0.86,
            ymax=1.0,
            color="#f3e7c9" if s.chord.pcs else "#eeeeee",
            ec="#b09050",
            lw=0.5,
        )
        ax1.text(
            s.start + 1,
            hi - 0.07 * (hi - lo),
            s.chord.symbol,
            fontsize=8,
            va="center",
            ha="left",
            clip_on=True,
        )
    ax1.set_ylim(lo, hi + 0.12 * (hi - lo))
    ax1.set_ylabel("melody\npitch")
    both = np.asarray(chosen) | (probs > 0.05)
    lo2, hi2 = prange(both)
    ax2.imshow(
        pool(probs).T[lo2:hi2],
        aspect="auto",
        origin="lower",
        interpolation="nearest",
        cmap="Greys",
        extent=(0, T, lo2, hi2),
        vmin=0,
        vmax=max(float(probs.max()), 0.05),
    )
    pooled = pool(chosen).T[lo2:hi2] > 0
    overlay = np.ma.masked_where(~pooled, np.ones(pooled.shape))
    ax2.imshow(
        overlay,
        aspect="auto",
        origin="lower",
        interpolation="nearest",
        cmap=ListedColormap([(0.1, 0.3, 0.85, 0.85)]),
        extent=(0, T, lo2, hi2),
    )
    ax2.set_ylabel(label)
    for ax in (ax1, ax2):
        for b in song.bar_starts:
            ax.axvline(b, color="#999999", lw=0.4, zorder=0)
    every = max(1, int(np.ceil(n_bars / 40)))
    ax2.set_xticks(song.bar_starts[::every], [str(i + 1) for i in range(0, len(song.bar_starts), every)])
    ax2.set_xlabel("bar")
    ax2.set_xlim(0, T)
    if title:
        fig.suptitle(title, fontsize=10)
    buf = io.BytesIO()
    fig.subplots_adjust(left=0.6 / width + 0.04, right=0.99, top=0.93, bottom=0.09, hspace=0.08)
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
