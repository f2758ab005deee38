"""Offline audio rendering (44.1 kHz, 16-bit stereo WAV); never touches the network.

Two renderers:

* **SoundFont** (preferred): ``tinysoundfont`` with a General MIDI SoundFont, from the optional extra
  ``pip install stripes[audio]`` (tinysoundfont + pretty_midi, whose wheel carries the GM SoundFont
  TimGM6mb.sf2, GPL-2). A SoundFont is looked up in ``$STRIPES_SOUNDFONT``, then pretty_midi's package
  folder, then ``/usr/share/sounds/sf2`` (Debian's fluid-soundfont-gm, timgm6mb-soundfont).
* **Built-in** (always there): a small additive synthesizer in numpy (decaying harmonic partials, a soft
  attack and release), so that ``--wav`` always works on the base install.

The WAV lasts exactly as long as the MIDI (its last note-off, in seconds through the tempo map).
"""

from __future__ import annotations

import importlib.util
import os
import wave
from pathlib import Path
from typing import Any

import numpy as np

from stripes.fileio import atomic_path

SAMPLE_RATE = 44100


def find_soundfont() -> Path | None:
    """A General MIDI SoundFont available offline, or None."""
    env = os.environ.get("STRIPES_SOUNDFONT")
    if env and Path(env).is_file():
        return Path(env)
    spec = importlib.util.find_spec("pretty_midi")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        sf = Path(loc) / "TimGM6mb.sf2"
        if sf.is_file():
            return sf
    for folder in (Path("/usr/share/sounds/sf2"), Path("/usr/share/soundfonts")):
        if folder.is_dir():
            found = sorted(folder.glob("*.sf2"))
            if found:
                return found[0]
    return None


def _events(score: Any) -> tuple[list[tuple[float, int, int, int, int]], float, list[tuple[int, int]]]:
    """(time_s, kind 0=off/1=on, channel, pitch, velocity) sorted, the end time in seconds and the
    (channel, program) of each track."""
    sec = score.to("second")
    events: list[tuple[float, int, int, int, int]] = []
    programs = []
    end = 0.0
    for ch, track in enumerate(sec.tracks):
        chan = 9 if track.is_drum else (ch if ch < 9 else ch + 1) % 16
        programs.append((chan, int(track.program)))
        for n in track.notes:
            t0, t1 = float(n.time), float(n.time + n.duration)
            events.append((t0, 1, chan, int(n.pitch), int(n.velocity)))
            events.append((t1, 0, chan, int(n.pitch), 0))
            end = max(end, t1)
    events.sort(key=lambda e: (e[0], e[1]))
    return events, end, programs


def n_samples(score: Any, sample_rate: int = SAMPLE_RATE) -> int:
    """Length of the rendering in samples: the MIDI's duration (last note-off) times the sample rate."""
    return int(round(_events(score)[1] * sample_rate))


MAX_NOTE_S = 4.0  # a piano tone has decayed by about 60 dB after this; longer notes are cut there


def _tone(pitch: int, sample_rate: int, cache: dict[int, np.ndarray]) -> np.ndarray:
    """A decaying harmonic tone of MAX_NOTE_S seconds for one MIDI pitch (cached per pitch)."""
    if pitch not in cache:
        t = np.arange(int(MAX_NOTE_S * sample_rate), dtype=np.float32) / sample_rate
        f0 = 440.0 * 2.0 ** ((pitch - 69) / 12)
        wave_ = np.zeros_like(t)
        for k, amp in enumerate((1.0, 0.5, 0.28, 0.15, 0.08), 1):
            if f0 * k < sample_rate / 2:
                wave_ += amp * np.sin(2 * np.pi * f0 * k * t) * np.exp(-t * (1.2 + 1.1 * k))
        cache[pitch] = wave_ * np.minimum(1.0, t / 0.005)
    return cache[pitch]


def render_builtin(score: Any, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(n, 2) float32 in [-1, 1]: additive piano-like tones; the melody track slightly louder and right."""
    _, end, _ = _events(score)
    n = int(round(end * sample_rate))
    out = np.zeros((n, 2), np.float32)
    sec = score.to("second")
    cache: dict[int, np.ndarray] = {}
    release = int(0.03 * sample_rate)
    for ti, track in enumerate(sec.tracks):
        if track.is_drum:
            continue
        pan = np.array([0.45, 0.75], np.float32) if ti == 0 else np.array([0.7, 0.5], np.float32)
        for note in track.notes:
            a = int(round(float(note.time) * sample_rate))
            b = min(
                int(round(float(note.time + note.duration) * sample_rate)),
                n,
                a + int(MAX_NOTE_S * sample_rate),
            )
            if b <= a:
                continue
            tone = _tone(int(note.pitch), sample_rate, cache)[: b - a].copy()
            r = min(release, b - a)
            tone[-r:] *= np.linspace(1.0, 0.0, r, dtype=np.float32)
            gain = (int(note.velocity) / 127.0) * 0.18
            out[a:b] += (tone * gain)[:, None] * pan[None, :]
    peak = float(np.abs(out).max()) if out.size else 0.0
    if peak > 0.98:
        out *= 0.98 / peak
    return out


def render_soundfont(score: Any, soundfont: Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(n, 2) float32 through tinysoundfont with a GM SoundFont (melody and accompaniment on piano)."""
    import tinysoundfont

    events, end, programs = _events(score)
    n = int(round(end * sample_rate))
    synth = tinysoundfont.Synth(samplerate=sample_rate, gain=-3)
    sfid = synth.sfload(str(soundfont))
    for chan, program in programs:
        synth.program_select(chan, sfid, 128 if chan == 9 else 0, 0 if chan == 9 else program)
    chunks, done = [], 0
    i = 0
    while done < n:
        nxt = events[i][0] if i < len(events) else end
        upto = min(max(int(round(nxt * sample_rate)), done), n)
        if upto > done:
            buf = synth.generate_simple(upto - done)
            chunks.append(np.frombuffer(bytes(buf), dtype=np.float32).reshape(-1, 2))
            done = upto
        while i < len(events) and int(round(events[i][0] * sample_rate)) <= done:
            _, kind, chan, pitch, vel = events[i]
            if kind:
                synth.noteon(chan, pitch, vel)
            else:
                synth.noteoff(chan, pitch)
            i += 1
        if i >= len(events) and done >= n:
            break
    audio = np.concatenate(chunks) if chunks else np.zeros((0, 2), np.float32)
    return np.clip(audio[:n], -1.0, 1.0)


def write_wav(path: Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """16-bit stereo PCM WAV, written atomically."""
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    with atomic_path(path, suffix=".wav") as tmp:
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(2)
            w.setsampwidth(2)
            w.setframerate(sample_rate)
            w.writeframes(pcm.tobytes())


def render_wav(path: Path, score: Any, synth: str = "auto") -> str:
    """Render ``score`` to ``path``; ``synth`` is auto (SoundFont if available), soundfont or builtin.

    Returns a description of the renderer used."""
    sf = find_soundfont() if synth in ("auto", "soundfont") else None
    if sf is not None and importlib.util.find_spec("tinysoundfont") is not None:
        try:
            write_wav(path, render_soundfont(score, sf))
            return f"SoundFont {sf.name} (tinysoundfont)"
        except Exception as exc:  # a broken SoundFont or library: fall back rather than fail
            if synth == "soundfont":
                raise
            fallback = f"built-in synthesizer (SoundFont failed: {type(exc).__name__})"
            write_wav(path, render_builtin(score))
            return fallback
    write_wav(path, render_builtin(score))
    return "built-in synthesizer" + (
        "" if synth == "builtin" else " (pip install stripes[audio] for a GM SoundFont)"
    )
