"""What the page does with an upload, without gradio: file in -> MIDI / WAV / PNG / chords text out.

Every function here is plain Python (tested without gradio). They reuse the harmonizer as it is:
:func:`~stripes.apps.harmonize.pipeline.harmonize_files` with :class:`~stripes.apps.harmonize.inputs.Options`
(the same path as ``stripes harmonize``, including ``--candidates`` and ``--regenerate``), the melody-track
ranking of :mod:`stripes.apps.harmonize.tracks` and the upload limits of :mod:`stripes.apps.harmonize.safety`.
A problem with an input is a :class:`~stripes.apps.harmonize.errors.HarmonizeError` whose message is one
line without server paths (:func:`one_line`).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stripes.apps.harmonize import chords as ch
from stripes.apps.harmonize.errors import HarmonizeError
from stripes.apps.harmonize.estimate import parse_key
from stripes.apps.harmonize.generative import MODES, LoadedAccompanist, load_for_mode
from stripes.apps.harmonize.inputs import MIDI_SUFFIXES, Options
from stripes.apps.harmonize.model import LoadedModel
from stripes.apps.harmonize.safety import check_input_file

LOG = logging.getLogger("stripes.serve")
XML_SUFFIXES = (".musicxml", ".mxl", ".xml")
SUFFIXES = MIDI_SUFFIXES + XML_SUFFIXES
MAX_SERVED_CANDIDATES = 4  # one page request samples at most this many accompaniments
KEEP_SECONDS = 2 * 3600  # a request's outputs are removed after this (and when the server stops)
AUTO_TRACK = ""  # the melody-track value meaning "the best-ranked track"
ESTIMATE_KEY = "estimate"  # the key value meaning "estimate it from the melody" (as does "")
EXAMPLES = Path(__file__).resolve().parents[1] / "harmonize" / "examples"
EXAMPLE_MELODY = EXAMPLES / "morning_walk.mid"
EXAMPLE_CHORDS = EXAMPLES / "morning_walk.chords.txt"


@dataclass
class Request:
    """One Harmonize press: the page's settings (empty strings = the harmonizer's defaults).

    Attributes
    ----------
    key : str
        ``"A minor"``, ``"Eb major"``, ``"F#m"``...; ``""`` or ``"estimate"``: estimated from the melody.
    mode : str
        ``auto``, ``generative`` or ``parallel`` (as ``stripes harmonize --mode``).
    seed : int
        The sampler's seed; candidate k gets ``seed + k - 1``.
    candidates : int
        How many accompaniments (generative mode), 1 to :data:`MAX_SERVED_CANDIDATES`.
    melody_track : str
        ``""`` for the best-ranked track, else a 1-based track number (as ``--melody-track``).
    regenerate : str
        ``""``, or bars to sample again (``"5-8"``); the upload is then a MIDI file stripes harmonized.
    musicxml : bool
        Also write a MusicXML score per candidate (needs music21; skipped with a note without it).
    """

    key: str = ""
    mode: str = "auto"
    seed: int = 0
    candidates: int = 1
    melody_track: str = AUTO_TRACK
    regenerate: str = ""
    musicxml: bool = False


@dataclass
class Candidate:
    """One accompaniment: its seed and files (``png`` / ``wav`` / ``musicxml`` None when not written)."""

    seed: int
    midi: Path
    png: Path | None = None
    wav: Path | None = None
    musicxml: Path | None = None
    notes: int = 0


@dataclass
class Harmonized:
    """What one request produced: the candidates, the chord chart used (text and file), a summary line."""

    candidates: list[Candidate]
    chords_text: str
    chords_file: Path | None
    key: str
    summary: str
    log: list[str] = field(default_factory=list)


class Models:
    """The models of one server, loaded once per mode (``load_for_mode``) and shared by all requests."""

    def __init__(self, checkpoint: str | None = None) -> None:
        self.checkpoint = checkpoint
        self._loaded: dict[str, LoadedModel | LoadedAccompanist] = {}
        self._lock = threading.Lock()

    def get(self, mode: str) -> LoadedModel | LoadedAccompanist:
        """The model ``stripes harmonize --mode MODE`` would use (HarmonizeError when there is none)."""
        if mode not in MODES:
            raise HarmonizeError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        with self._lock:
            if mode not in self._loaded:
                self._loaded[mode] = load_for_mode(self.checkpoint, mode)
            return self._loaded[mode]


def one_line(exc: BaseException, path: Path | None = None) -> str:
    """A readable one-line message for the page: the server's upload folder is replaced by the file name
    and the CLI's hints (``--debug``) are dropped."""
    msg = str(exc).strip() or type(exc).__name__
    if path is not None:
        msg = msg.replace(str(path), path.name)
    msg = msg.replace("; rerun with --debug", "")
    return " ".join(msg.split())[:400]


def check_upload(path: str | Path | None) -> Path:
    """The uploaded file after the checks of ``stripes harmonize`` (type by suffix, size, zip bombs)."""
    if path is None or str(path) == "":
        raise HarmonizeError("no file: upload a MIDI (.mid) or MusicXML (.musicxml, .mxl) melody")
    p = Path(path)
    if p.suffix.lower() not in SUFFIXES:
        raise HarmonizeError(
            f"{p.name}: not a melody file this page reads (give .mid, .midi, .musicxml, .mxl or .xml)"
        )
    try:
        check_input_file(p)
    except HarmonizeError as exc:
        raise HarmonizeError(one_line(exc, p)) from None
    return p


def melody_tracks(path: str | Path) -> tuple[list[tuple[str, str]], str]:
    """The melody-track choices of an upload, best first, and a text of the ranking.

    Returns
    -------
    choices : list of (label, value)
        ``(label, "")`` for the automatic choice first, then one per pitched track with its 1-based number
        as the value (what ``--melody-track`` takes).
    ranking : str
        One line per candidate track with its score and cues (:meth:`TrackScore.line`); for MusicXML a line
        saying that the lead sheet's melody part is used.
    """
    p = check_upload(path)
    if p.suffix.lower() in XML_SUFFIXES:
        return [("the lead sheet's melody part", AUTO_TRACK)], "MusicXML: the first part with notes"
    from stripes.apps.harmonize.song import load_score, notes_array
    from stripes.apps.harmonize.tracks import rank_tracks

    try:
        score = load_score(p)
    except HarmonizeError as exc:
        raise HarmonizeError(one_line(exc, p)) from None
    ranking = rank_tracks(score, notes_array)
    if not ranking:
        raise HarmonizeError(f"{p.name}: no pitched track to harmonize")
    best = ranking[0]
    choices = [(f"automatic: {best.label} (score {best.score:.2f})", AUTO_TRACK)]
    choices += [(f"{r.label} (score {r.score:.2f})", str(r.index + 1)) for r in ranking]
    return choices, "\n".join(r.line() for r in ranking)


def _chords_file(text: str, folder: Path, stem: str) -> Path | None:
    """The page's chord chart written to a file of the request's folder (None when it holds no chords).

    The text is always used as chords, never as a path on the server."""
    if not any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines()):
        return None
    ch.parse_chord_text(text, "chords")  # one line naming the bar and the symbol
    (folder / "given").mkdir()
    path = folder / "given" / f"{stem}.chords.txt"  # as if `--chords <stem>.chords.txt` had been given
    path.write_text(text, encoding="utf-8")
    return path


def _check_request(req: Request, generative: bool) -> tuple[str | None, int, int]:
    key = None if req.key.strip().lower() in ("", ESTIMATE_KEY) else req.key.strip()
    if key is not None:
        try:
            parse_key(key)
        except ValueError as exc:
            raise HarmonizeError(f"key: {exc}") from None
    n = int(req.candidates)
    if not 1 <= n <= MAX_SERVED_CANDIDATES:
        raise HarmonizeError(f"candidates must be between 1 and {MAX_SERVED_CANDIDATES}, got {n}")
    seed = int(req.seed)
    if seed < 0:
        raise HarmonizeError(f"seed must be 0 or more, got {seed}")
    if not generative and (n > 1 or req.regenerate.strip()):
        what = "several candidates" if n > 1 else "regenerating bars"
        raise HarmonizeError(f"{what} needs the generative model (mode auto or generative)")
    if req.regenerate.strip():
        from stripes.apps.harmonize.regenerate import parse_bars

        parse_bars(req.regenerate)
    return key, n, seed


def _candidates(outputs: list[Path], seeds: list[int]) -> list[Candidate]:
    """Group the pipeline's outputs by candidate (each starts with its MIDI file)."""
    out: list[Candidate] = []
    for p in outputs:
        suffix = p.suffix.lower()
        if suffix == ".mid":
            out.append(Candidate(seeds[min(len(out), len(seeds) - 1)], p))
        elif out and suffix == ".png":
            out[-1].png = p
        elif out and suffix == ".wav":
            out[-1].wav = p
        elif out and suffix == ".musicxml":
            out[-1].musicxml = p
    return out


def _chart_of_midi(path: Path) -> str:
    """The chord chart of a regenerated file, read back from its chord markers."""
    from stripes.apps.harmonize.regenerate import chords_from_markers
    from stripes.apps.harmonize.song import read_midi_song

    song = read_midi_song(path, "melody")
    spans = chords_from_markers(song) or []
    bars = ch.bars_from_spans(spans, song.bar_starts, song.n_ticks, song.beats)
    return ch.format_chord_text(bars, f"chords of {path.name}; one bar per |")


def harmonize_upload(
    path: str | Path | None,
    chords_text: str,
    req: Request,
    models: Models,
    work_root: Path,
    log: Callable[[str], None] | None = None,
) -> Harmonized:
    """Harmonize one uploaded melody (or regenerate bars of an uploaded harmonized MIDI file).

    Parameters
    ----------
    path : path of the upload (MIDI or MusicXML).
    chords_text : the chord chart (the ``<stem>.chords.txt`` format); empty or only comments: the chords
        come from the file or are estimated, as in ``stripes harmonize`` without ``--chords``.
    req : the page's settings.
    models : the server's models.
    work_root : folder under which this request writes its own new folder.
    log : where the harmonizer's progress lines go (default: the ``stripes.serve`` logger).

    Returns
    -------
    Harmonized
        Files per candidate (MIDI, PNG, WAV, MusicXML when asked), the chord chart used.

    Raises
    ------
    HarmonizeError
        A one-line message for the page (bad file, chords, key, settings).
    """
    lines: list[str] = []

    def _log(m: str) -> None:
        lines.append(m)
        (log or LOG.info)(m)

    p = check_upload(path)
    loaded = models.get(req.mode)
    generative = isinstance(loaded, LoadedAccompanist)
    key, n, seed = _check_request(req, generative)
    regenerate = req.regenerate.strip() or None
    if regenerate and p.suffix.lower() not in MIDI_SUFFIXES:
        raise HarmonizeError(f"{p.name}: regenerating bars needs a MIDI file written by stripes harmonize")
    Path(work_root).mkdir(parents=True, exist_ok=True)
    prune(Path(work_root), keep=p)
    folder = Path(work_root) / uuid.uuid4().hex[:12]
    folder.mkdir()
    chords = _chords_file(chords_text or "", folder, p.stem)
    musicxml = bool(req.musicxml)
    if musicxml:
        import importlib.util

        if importlib.util.find_spec("music21") is None:
            musicxml = False
            _log("note: MusicXML needs music21 (pip install 'stripes[leadsheet]'); skipped")
    opts = Options(
        out_dir=folder, chords=str(chords) if chords else None, wav=True, png=True, key=key,
        musicxml=musicxml, mode=req.mode, candidates=n, seed=seed, regenerate=regenerate,
        melody_track=req.melody_track.strip() or None,
    )
    from stripes.apps.harmonize.pipeline import harmonize_files

    (res,) = harmonize_files([p], opts, log=_log, loaded=loaded)
    if res.error:
        raise HarmonizeError(one_line(HarmonizeError(res.error), p))
    info: dict[str, Any] = res.info
    seeds = list(info.get("seeds") or [seed])
    cands = _candidates(res.outputs, seeds)
    records = info.get("candidates") or [{"accompaniment_notes": info.get("accompaniment_notes")}]
    for c, rec in zip(cands, records):
        c.notes = int(rec.get("accompaniment_notes") or 0)
    chart = next((o for o in res.outputs if o.name.endswith(".chords.txt")), None)
    if chart is not None:
        text = chart.read_text(encoding="utf-8")
    else:  # a regeneration writes no chart: the one given, else the file's chord markers
        text = chords_text if chords else _chart_of_midi(cands[0].midi)
        chart = folder / f"{cands[0].midi.name.split('.')[0]}.chords.txt"
        chart.write_text(text, encoding="utf-8")
    what = f"bars {regenerate} regenerated" if regenerate else f"{len(cands)} candidate(s)"
    source = str(info.get("chords", ""))
    summary = (
        f"{p.name}: {what}, seed(s) {', '.join(str(c.seed) for c in cands)}; key {info.get('key')} "
        f"({str(info.get('key_from', '')).replace('with --key', 'on the page')}); chords {source}; "
        f"{res.seconds:.1f} s"
    )
    return Harmonized(cands, text, chart, str(info.get("key", "")), one_line(HarmonizeError(summary)), lines)


def prune(work_root: Path, max_age_s: float = KEEP_SECONDS, keep: Path | None = None) -> int:
    """Remove the request folders of ``work_root`` older than ``max_age_s`` (not the one holding ``keep``,
    the file this request reads: regenerating an old candidate); returns how many."""
    import shutil
    import time

    now, removed = time.time(), 0
    keep_dir = Path(keep).resolve() if keep is not None else None
    for d in Path(work_root).iterdir():
        if keep_dir is not None and keep_dir.is_relative_to(d.resolve()):
            continue
        if d.is_dir() and d.name != "example" and now - d.stat().st_mtime > max_age_s:
            shutil.rmtree(d, ignore_errors=True)
            removed += 1
    return removed


def new_work_root(base: str | Path | None = None) -> Path:
    """A fresh private folder for a server's outputs (mode 0700; under the system temp folder by default)."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix="stripes-serve-", dir=base))
