"""``stripes harmonize``: a melody (MIDI or MusicXML lead sheet) in, a piano accompaniment out (MIDI,
picture, chords text, optional WAV), offline and in seconds. See docs/harmonize.md."""

from __future__ import annotations

from stripes.apps.harmonize.errors import HarmonizeError
from stripes.apps.harmonize.pipeline import Options, Result, harmonize_files

__all__ = ["HarmonizeError", "Options", "Result", "harmonize_files"]
