"""POP909 -> aligned pianorolls and per-tick labels, stored once in a hashed cache folder.

Follows the official structurePE preprocessing (P3 ``data/pop909/preprocessing.py``): 16 ticks per
quarter, crop at the first sounding note, ``startpos.csv`` offsets (negative: pad the roll, positive:
pad the labels), windows of ``64 * bars + 1`` ticks with overlap ``8 * bars``.

Cache layout (``<cache_dir>/<key>/``, written to a temp folder and renamed): ``roll.bin`` and
``onset.bin`` (uint8, (n_ticks_total, 48), pitch bits packed along the last axis; rows 0..127 melody,
128..255 bridge, 256..383 piano), ``chord.npy``/``key.npy`` (int16 chord ids per tick),
``melody.npy``/``section.npy`` (uint8 per tick), ``songs.npy`` (one row per song, see SONG_COLUMNS),
``chord_table.npy`` ((N, 13) [root+1, chroma]), ``windows_<split>_<bars>.npy`` ((n, 2) int64 rows
(song row, start tick)) and ``manifest.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stripes.data import contexts as ctx
from stripes.data import readers
from stripes.data.paths import resolve_cache_dir, resolve_data_root
from stripes.errors import DataError
from stripes.fileio import atomic_path, file_lock

FORMAT_VERSION = 1
N_ROWS = 3 * readers.N_PITCHES
PACKED = N_ROWS // 8
SPLITS = ("train", "val", "test")
SONG_COLUMNS = ("song_id", "offset", "length", "tempo_bucket", "split", "tonic", "minor", "start_pos")
ANNOTATION_FILES = ("finalized_chord.txt", "melody.txt", "human_label1.txt", "tempo.txt", "analyzed_key.txt")
META_FILES = ("split.npz", "chord_db.npz", "startpos.csv")


def window_geometry(bars: int) -> tuple[int, int]:
    """(window length in ticks incl. the extra next-step tick, overlap): 8 bars -> (513, 64),
    16 -> (1025, 128), 64 -> (4097, 512)."""
    if bars <= 0:
        raise DataError(f"bars must be positive, got {bars}")
    return ctx.TICKS_PER_BAR * bars + 1, 8 * bars


def window_starts(n_ticks: int, bars: int) -> np.ndarray:
    """Start ticks of the windows of a song of `n_ticks` ticks (tail remainder dropped, no padding)."""
    length, overlap = window_geometry(bars)
    if n_ticks < length:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_ticks - length + 1, length - overlap, dtype=np.int64)


def song_paths(data_root: Path, song_id: int) -> dict[str, Path]:
    name = f"{song_id:03d}"
    paths = {"midi": data_root / "POP909" / name / f"{name}.mid"}
    for f in ANNOTATION_FILES:
        paths[f] = data_root / "POP909-structure" / name / f
    return paths


def _roll_from_notes(notes: list[tuple[np.ndarray, np.ndarray, np.ndarray]], start_pos: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Binary (T, 384) roll and onset roll, cropped at the first sounding note and left-padded by
    ``-start_pos`` ticks when start_pos < 0. Returns them packed along pitch, (T, 48) uint8."""
    sounding = [t[e > t] for t, e, _ in notes]
    if not any(s.size for s in sounding):
        raise DataError("no sounding note")
    first = min(int(s.min()) for s in sounding if s.size)
    # muspy: each track's roll is max(end) + 1 long; the stack is as long as the longest one.
    n = max(int(e.max()) + 1 for _, e, _ in notes) - first
    pad = -start_pos if start_pos < 0 else 0
    total = n + pad
    roll = np.zeros((total, N_ROWS), dtype=bool)
    onset = np.zeros((total, N_ROWS), dtype=bool)
    for k, (t, e, p) in enumerate(notes):
        row = k * readers.N_PITCHES + p
        s, stop = t - first + pad, e - first + pad
        for a, b, r in zip(s.tolist(), stop.tolist(), row.tolist()):
            if b > a:
                roll[a:b, r] = True
        ok = (s >= 0) & (s < total)  # P3 masks onsets past the roll's end
        onset[s[ok], row[ok]] = True
    return np.packbits(roll, axis=1), np.packbits(onset, axis=1)


def process_song(data_root: Path, song_id: int, start_pos: int) -> dict[str, Any]:
    """Everything about one song: packed rolls, chord/key codes, melody and section per tick."""
    paths = song_paths(data_root, song_id)
    notes = readers.read_midi_notes(paths["midi"])
    try:
        roll, onset = _roll_from_notes(notes, start_pos)
    except DataError as exc:
        raise DataError(f"{paths['midi']}: {exc}") from None
    n = roll.shape[0]
    spans = readers.read_chords(paths["finalized_chord.txt"])
    codes = np.array([ctx.chord_code(s.root, s.pitch_classes) for s in spans], dtype=np.int64)
    beats = np.array([s.beats for s in spans], dtype=np.int64)
    chord = ctx.align_labels(ctx.chord_ticks(codes, beats), n, start_pos, ctx.NO_CHORD_CODE)
    melody = ctx.align_labels(ctx.melody_ticks(readers.read_melody(paths["melody.txt"])), n, start_pos, 0)
    section = ctx.align_labels(ctx.section_ticks(readers.read_sections(paths["human_label1.txt"])),
                               n, start_pos, ctx.SECTION_PAD)
    tempo = ctx.tempo_bucket(readers.read_tempo(paths["tempo.txt"]))
    tonic, mode = readers.read_key(paths["analyzed_key.txt"])
    return {
        "song_id": song_id, "roll": roll, "onset": onset, "chord": chord.astype(np.int32),
        "key": ctx.key_normalize(chord, tonic).astype(np.int32), "melody": melody.astype(np.uint8),
        "section": section.astype(np.uint8), "tempo_bucket": tempo, "tonic": tonic,
        "minor": int(mode == "min"), "start_pos": start_pos,
    }


def _worker(job: tuple[str, int, int]) -> tuple[int, dict[str, Any] | None, str | None]:
    root, song_id, start_pos = job
    try:
        return song_id, process_song(Path(root), song_id, start_pos), None
    except DataError as exc:
        return song_id, None, str(exc)


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_layout(data_root: Path) -> None:
    """DataError when the data root lacks one of the three folders or the structurePE files."""
    if not data_root.is_dir():
        raise DataError(f"{data_root}: data folder not found (run 'stripes data fetch' or set STRIPES_DATA)")
    for sub in ("POP909", "POP909-structure", "structurePE"):
        if not (data_root / sub).is_dir():
            raise DataError(f"{data_root / sub}: folder not found (run 'stripes data fetch')")
    for f in META_FILES:
        if not (data_root / "structurePE" / f).is_file():
            raise DataError(f"{data_root / 'structurePE' / f}: file not found")


def load_meta(data_root: Path) -> tuple[dict[str, np.ndarray], np.ndarray, dict[int, int]]:
    """(split ids, chord_db, startpos) of a data root."""
    check_layout(data_root)
    base = data_root / "structurePE"
    split = readers.read_split(base / "split.npz")
    db = readers.read_chord_db(base / "chord_db.npz")
    startpos = readers.read_startpos(base / "startpos.csv")
    missing = [int(s) for ids in split.values() for s in ids if int(s) not in startpos]
    if missing:
        raise DataError(f"{base / 'startpos.csv'}: no offset for song(s) {missing[:5]}")
    return split, db, startpos


def cache_key(data_root: Path, songs: Sequence[int]) -> tuple[str, dict[str, str]]:
    """Hash of the settings and of every input file's content; also returns the per-file hashes of
    the three structurePE files."""
    h = hashlib.sha256(f"stripes-data-v{FORMAT_VERSION};tpq=16;songs={list(songs)}".encode())
    meta = {f: _sha(data_root / "structurePE" / f) for f in META_FILES}
    for f in META_FILES:
        h.update(meta[f].encode())
    for sid in songs:
        for p in song_paths(data_root, sid).values():
            h.update(p.name.encode())
            try:
                h.update(p.read_bytes())
            except FileNotFoundError:
                h.update(b"<missing>")
    return h.hexdigest()[:16], meta


def _atomic_save(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, arr)


def write_windows(folder: Path, songs: np.ndarray, split: str, bars: int) -> np.ndarray:
    """Compute and store (atomically) the (n, 2) window table (song row, start) of a split."""
    rows = []
    split_code = SPLITS.index(split)
    for i, row in enumerate(songs):
        if row[SONG_COLUMNS.index("split")] != split_code:
            continue
        starts = window_starts(int(row[SONG_COLUMNS.index("length")]), bars)
        rows.append(np.stack([np.full_like(starts, i), starts], axis=1))
    table = np.concatenate(rows) if rows else np.zeros((0, 2), dtype=np.int64)
    _atomic_save(folder / f"windows_{split}_{bars}.npy", table.astype(np.int64))
    return table


def _iter_results(jobs: list[tuple[str, int, int]], workers: int, progress: bool) -> Iterable:
    from tqdm import tqdm

    # disable=None: no bar when stderr is not a terminal (no carriage-return lines in logs)
    bar = tqdm(total=len(jobs), desc="prepare", unit="song", disable=None if progress else True)
    if workers > 1 and len(jobs) > 16:
        import multiprocessing as mp

        with mp.get_context("spawn" if os.name == "nt" else "fork").Pool(workers) as pool:
            for res in pool.imap(_worker, jobs, chunksize=8):
                bar.update()
                yield res
    else:
        for job in jobs:
            res = _worker(job)
            bar.update()
            yield res
    bar.close()


def prepare(data_root: str | os.PathLike[str] | None = None, cache_dir: str | os.PathLike[str] | None = None,
            *, bars: int = 16, test_bars: Sequence[int] = (64,), skip_bad: bool | None = False,
            songs: Sequence[int] | None = None, workers: int = 2, progress: bool = False,
            force: bool = False) -> Path:
    """Prepare (once) the cache for `data_root`; returns the cache folder ``<cache_dir>/<key>``.

    `songs` restricts to a subset of the split's songs (for tests). Window tables are built for
    train/val/test at `bars` and for test also at each of `test_bars`; other lengths are added on demand.
    A second call with the same inputs and settings recomputes nothing. ``skip_bad=None`` reuses any
    existing cache of these inputs (with or without skips) and otherwise builds without skipping."""
    root = resolve_data_root(data_root)
    cache = resolve_cache_dir(cache_dir)
    split, db, startpos = load_meta(root)
    split_of = {int(s): name for name in SPLITS for s in split[name]}
    if songs is None:
        song_ids = sorted(split_of)
    else:
        unknown = [s for s in songs if int(s) not in split_of]
        if unknown:
            raise DataError(f"song(s) {unknown} are not in {root / 'structurePE' / 'split.npz'}")
        song_ids = sorted({int(s) for s in songs})
    key, meta_hashes = cache_key(root, song_ids)
    folder = cache / key
    wanted = [(s, bars) for s in SPLITS] + [("test", b) for b in test_bars]
    if not force and _reuse(folder, wanted, skip_bad):
        return folder
    cache.mkdir(parents=True, exist_ok=True)
    # two workers on a fresh machine (``--jobs 2``) prepare the same key at once: the second waits for the
    # first and reuses its folder instead of replacing a folder the first one is already reading
    with file_lock(cache / f".{key}.lock"):
        if not force and _reuse(folder, wanted, skip_bad):
            return folder
        t0 = time.perf_counter()
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=cache))
        try:
            manifest = _build(root, tmp, song_ids, split_of, db, startpos, bool(skip_bad), workers, progress)
            manifest.update({"key": key, "data_root": str(root), "inputs": meta_hashes,
                             "settings": {"ticks_per_quarter": 16, "bars": bars, "test_bars": list(test_bars),
                                          "songs": None if songs is None else song_ids,
                                          "format": FORMAT_VERSION},
                             "skip_bad": bool(skip_bad)})
            songs_arr = np.load(tmp / "songs.npy")
            windows: dict[str, dict[str, int]] = {}
            for s, b in wanted:
                windows.setdefault(s, {})[str(b)] = int(len(write_windows(tmp, songs_arr, s, b)))
            manifest["windows"] = windows
            manifest["seconds"] = round(time.perf_counter() - t0, 3)
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
            if folder.exists():  # rebuilt (force, other skip_bad): move the old one aside, then drop it
                old = Path(tempfile.mkdtemp(prefix=f".{key}.old.", dir=cache))
                os.replace(folder, old / "folder")
                shutil.rmtree(old, ignore_errors=True)
            os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return folder


def _reuse(folder: Path, wanted: Sequence[tuple[str, int]], skip_bad: bool | None) -> bool:
    """True (after adding any missing window tables) when ``folder`` is a finished cache for ``skip_bad``."""
    if not (folder / "manifest.json").is_file():
        return False
    manifest = json.loads((folder / "manifest.json").read_text())
    if skip_bad is None or manifest.get("skip_bad") == skip_bad or not manifest.get("skipped"):
        _ensure_windows(folder, wanted)
        return True
    return False


def _ensure_windows(folder: Path, wanted: Sequence[tuple[str, int]]) -> None:
    songs = None
    for s, b in wanted:
        if not (folder / f"windows_{s}_{b}.npy").is_file():
            if songs is None:
                songs = np.load(folder / "songs.npy")
            write_windows(folder, songs, s, b)


def _build(root: Path, out: Path, song_ids: list[int], split_of: dict[int, str], db: np.ndarray,
           startpos: dict[int, int], skip_bad: bool, workers: int, progress: bool) -> dict[str, Any]:
    jobs = [(str(root), sid, startpos[sid]) for sid in song_ids]
    table = ctx.ChordTable(db)
    songs: list[list[int]] = []
    chord_parts: list[np.ndarray] = []
    key_parts: list[np.ndarray] = []
    mel_parts: list[np.ndarray] = []
    sec_parts: list[np.ndarray] = []
    skipped: list[dict[str, Any]] = []
    offset = 0
    with open(out / "roll.bin", "wb") as froll, open(out / "onset.bin", "wb") as fons:
        for sid, res, err in _iter_results(jobs, workers, progress):
            if res is None:
                if not skip_bad:
                    raise DataError(err or f"song {sid}: failed")
                skipped.append({"song_id": sid, "reason": err})
                continue
            n = res["roll"].shape[0]
            froll.write(res["roll"].tobytes())
            fons.write(res["onset"].tobytes())
            chord_parts.append(res["chord"])
            key_parts.append(res["key"])
            mel_parts.append(res["melody"])
            sec_parts.append(res["section"])
            songs.append([sid, offset, n, res["tempo_bucket"], SPLITS.index(split_of[sid]), res["tonic"],
                          res["minor"], res["start_pos"]])
            offset += n
    if not songs:
        raise DataError("no song could be prepared")
    chord = np.concatenate(chord_parts)
    key = np.concatenate(key_parts)
    added_chord = table.extend(chord)
    added_key = table.extend(key)
    if len(table.codes) > np.iinfo(np.int16).max:
        raise DataError("chord table too large for int16 ids")
    _atomic_save(out / "chord.npy", table.ids(chord).astype(np.int16))
    _atomic_save(out / "key.npy", table.ids(key).astype(np.int16))
    _atomic_save(out / "melody.npy", np.concatenate(mel_parts))
    _atomic_save(out / "section.npy", np.concatenate(sec_parts))
    _atomic_save(out / "chord_table.npy", table.rows)
    songs_arr = np.asarray(songs, dtype=np.int64)
    _atomic_save(out / "songs.npy", songs_arr)
    split_col = songs_arr[:, SONG_COLUMNS.index("split")]
    return {
        "format": FORMAT_VERSION,
        "n_songs": len(songs),
        "n_ticks": int(offset),
        "songs_per_split": {s: int((split_col == i).sum()) for i, s in enumerate(SPLITS)},
        "chord_table": {"base_rows": table.n_base, "added_from_chords": added_chord,
                        "added_from_key_normalization": added_key, "rows": len(table.codes)},
        "skipped": skipped,
        "song_columns": list(SONG_COLUMNS),
        "arrays": {"roll.bin": [int(offset), PACKED], "onset.bin": [int(offset), PACKED]},
    }
