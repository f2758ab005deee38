"""Readers for the raw POP909 / Dai et al. / structurePE files. Every format error is a DataError
naming the file (and the line)."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stripes.errors import DataError

TICKS_PER_QUARTER = 16
N_PITCHES = 128
TRACKS = ("melody", "bridge", "piano")


@dataclass(frozen=True)
class ChordSpan:
    """One line of ``finalized_chord.txt``: root 0..11 (None = no chord), pitch classes, length in beats."""

    root: int | None
    pitch_classes: tuple[int, ...]
    beats: int


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None


_CHORD_RE = re.compile(r"^\s*(\S+?)\s*\[([^\]]*)\]\s*(.*)$")


def read_chords(path: Path) -> list[ChordSpan]:
    """Parse ``finalized_chord.txt`` lines ``B:maj [3, 6, 11] 11 2`` (name, pitch classes, root, beats)
    or ``N []  32`` (no chord). As in the P3 pipeline, a chord line's first two numbers after the bracket
    are root and beats (a stray third number, as in song 803, is ignored) and a no-chord line's last
    number is its length in beats."""
    spans: list[ChordSpan] = []
    for no, line in enumerate(_read_lines(path), 1):
        if not line.strip():
            continue
        m = _CHORD_RE.match(line)
        if m is None:
            raise DataError(f"{path}:{no}: malformed chord line {line.strip()!r}")
        name, pcs_text, rest = m.groups()
        nums = rest.split()
        try:
            if name.startswith("N"):
                spans.append(ChordSpan(None, (), int(nums[-1])))
                continue
            root, beats = int(nums[0]), int(nums[1])
            pcs = tuple(sorted({int(p) for p in pcs_text.replace(" ", "").split(",") if p}))
        except (ValueError, IndexError):
            raise DataError(f"{path}:{no}: malformed chord line {line.strip()!r}") from None
        if not pcs or any(not 0 <= p < 12 for p in pcs) or not 0 <= root < 12 or beats < 0:
            raise DataError(f"{path}:{no}: bad root, pitch classes or beats in {line.strip()!r}")
        spans.append(ChordSpan(root, pcs, beats))
    if not spans:
        raise DataError(f"{path}: no chord lines")
    return spans


def read_melody(path: Path) -> np.ndarray:
    """Parse ``melody.txt`` (``pitch dur_16ths`` per line) into an (n, 2) int64 array."""
    rows: list[tuple[int, int]] = []
    for no, line in enumerate(_read_lines(path), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            pitch, dur = (int(p) for p in parts)
        except ValueError:
            msg = f"malformed melody line {line.strip()!r} (expected 'pitch dur')"
            raise DataError(f"{path}:{no}: {msg}") from None
        if not 0 <= pitch < N_PITCHES or dur < 0:
            raise DataError(f"{path}:{no}: pitch or duration out of range in {line.strip()!r}")
        rows.append((pitch, dur))
    if not rows:
        raise DataError(f"{path}: no melody lines")
    return np.asarray(rows, dtype=np.int64)


_LABEL_TOKEN = re.compile(r"([A-Za-z])(\d+)")


def read_sections(path: Path) -> list[tuple[str, int]]:
    """Parse ``human_label1.txt`` (first line, e.g. ``i4A4B8``) into (letter, n_bars) pairs."""
    lines = _read_lines(path)
    text = lines[0].strip() if lines else ""
    if not text:
        raise DataError(f"{path}:1: empty section label line")
    pos = 0
    out: list[tuple[str, int]] = []
    for m in _LABEL_TOKEN.finditer(text):
        if m.start() != pos:
            break
        out.append((m.group(1), int(m.group(2))))
        pos = m.end()
    if pos != len(text):
        raise DataError(f"{path}:1: malformed section labels at column {pos + 1}: {text[pos:pos + 10]!r}")
    return out


def read_tempo(path: Path) -> int:
    """First integer of ``tempo.txt`` (BPM)."""
    for no, line in enumerate(_read_lines(path), 1):
        if line.strip():
            try:
                return int(line.strip())
            except ValueError:
                raise DataError(f"{path}:{no}: malformed tempo {line.strip()!r}") from None
    raise DataError(f"{path}: no tempo")


_KEY_RE = re.compile(r"^([A-G])([#b]?):(maj|min)$")
_NOTE = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def read_key(path: Path) -> tuple[int, str]:
    """First key of ``analyzed_key.txt`` (e.g. ``Gb:maj``) as (tonic pitch class, 'maj'|'min')."""
    lines = [ln.strip() for ln in _read_lines(path)]
    if not lines or not lines[0]:
        raise DataError(f"{path}:1: no key")
    m = _KEY_RE.match(lines[0])
    if m is None:
        raise DataError(f"{path}:1: malformed key {lines[0]!r} (expected e.g. 'Gb:maj')")
    tonic = (_NOTE[m.group(1)] + {"": 0, "#": 1, "b": -1}[m.group(2)]) % 12
    return tonic, m.group(3)


def read_startpos(path: Path) -> dict[int, int]:
    """``startpos.csv`` (``ID,Position,Beats``) as {song id: offset in ticks}."""
    out: dict[int, int] = {}
    lines = _read_lines(path)
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None or [h.strip() for h in header[:2]] != ["ID", "Position"]:
        raise DataError(f"{path}:1: expected header 'ID,Position,Beats'")
    for no, row in enumerate(reader, 2):
        if not row:
            continue
        try:
            out[int(row[0])] = int(row[1])
        except (ValueError, IndexError):
            raise DataError(f"{path}:{no}: malformed row {','.join(row)!r}") from None
    return out


def read_split(path: Path) -> dict[str, np.ndarray]:
    """``split.npz`` as {"train", "val", "test"} -> sorted int64 song ids."""
    try:
        with np.load(path) as z:
            return {s: np.sort(np.asarray(z[f"{s}_idx"], dtype=np.int64)) for s in ("train", "val", "test")}
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (KeyError, ValueError, OSError) as exc:
        raise DataError(f"{path}: not a split file with train_idx/val_idx/test_idx ({exc})") from None


def read_chord_db(path: Path) -> np.ndarray:
    """``chord_db.npz`` (key ``chord_db``, (N, 13): root+1 (0 = none), 12-d chroma) as int64."""
    try:
        with np.load(path) as z:
            db = np.asarray(z["chord_db"])
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (KeyError, ValueError, OSError) as exc:
        raise DataError(f"{path}: not a chord table ({exc})") from None
    if db.ndim != 2 or db.shape[1] != 13:
        raise DataError(f"{path}: chord_db has shape {db.shape}, expected (N, 13)")
    return db.astype(np.int64)


def read_midi_notes(path: Path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Notes of the MELODY, BRIDGE and PIANO tracks at 16 ticks per quarter: per track (time, end, pitch).

    Times and ends are rescaled separately and rounded half to even (as muspy's ``adjust_resolution``),
    so a note's duration is ``end - time``."""
    import symusic

    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        score = symusic.Score(str(path))
    except Exception as exc:  # symusic raises plain RuntimeError/ValueError on corrupt files
        raise DataError(f"{path}: cannot parse MIDI ({exc})") from None
    tpq = score.ticks_per_quarter
    if tpq <= 0:
        raise DataError(f"{path}: bad ticks per quarter {tpq}")
    by_name: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for track in score.tracks:
        name = track.name.strip().lower()
        if name not in TRACKS or name in by_name:
            continue
        n = track.notes.numpy()
        t = n["time"].astype(np.int64)
        e = t + n["duration"].astype(np.int64)
        scale = TICKS_PER_QUARTER / tpq
        by_name[name] = (
            np.round(t * scale).astype(np.int64),
            np.round(e * scale).astype(np.int64),
            n["pitch"].astype(np.int64),
        )
    missing = [t for t in TRACKS if t not in by_name or by_name[t][0].size == 0]
    if missing:
        raise DataError(f"{path}: missing or empty track(s) {', '.join(m.upper() for m in missing)}")
    return [by_name[t] for t in TRACKS]
