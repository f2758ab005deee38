"""Limits on input files, checked before anything is parsed or inflated (the harmonizer may serve uploads).

* Every input file (melody, ``--chords`` file) is at most :data:`MAX_INPUT_BYTES` (20 MiB) on disk; a
  song's MIDI file is ~50 kB, a long MusicXML score a few MB.
* A compressed MusicXML file (``.mxl``, a zip; any input that is a zip) is read from its central
  directory first (``ZipInfo.file_size``, nothing is decompressed): refused if its members would expand
  past :data:`MAX_EXPANDED_BYTES` (50 MB) in total, if a member over 1 MiB expands more than
  :data:`MAX_RATIO` (100) times its compressed size, or if it has over :data:`MAX_MEMBERS` members.
  Python's zipfile then never inflates a member past the size its directory declares, so a directory that
  lies cannot get around the limit.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from stripes.apps.harmonize.errors import HarmonizeError

MAX_INPUT_BYTES = 20 * 2**20
MAX_EXPANDED_BYTES = 50_000_000
MAX_RATIO = 100.0
RATIO_MIN_BYTES = 2**20
MAX_MEMBERS = 1000


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def check_input_file(path: Path, what: str = "") -> int:
    """The file's size in bytes after checking it exists, is a regular non-empty file within
    :data:`MAX_INPUT_BYTES`; a zip (or any ``.mxl``) is also checked with :func:`check_zip`."""
    label = f"{what} {path}".strip()
    if not path.is_file():
        raise HarmonizeError(f"{label}: not a regular file" if path.exists() else f"{label}: file not found")
    size = path.stat().st_size
    if size == 0:
        raise HarmonizeError(f"{label}: empty file")
    if size > MAX_INPUT_BYTES:
        raise HarmonizeError(
            f"{label}: file too large ({_mb(size)}; inputs are limited to {_mb(MAX_INPUT_BYTES)})"
        )
    with open(path, "rb") as f:
        head = f.read(4)
    if path.suffix.lower() == ".mxl" or head == b"PK\x03\x04":
        check_zip(path, label)
    return size


def check_zip(path: Path, label: str | None = None) -> None:
    """Refuse a zip whose members would expand too much (read from the central directory only)."""
    label = label or str(path)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise HarmonizeError(f"{label}: not a valid compressed MusicXML (.mxl zip) file ({exc})") from None
    if len(infos) > MAX_MEMBERS:
        raise HarmonizeError(f"{label}: refused: the archive has {len(infos)} members (limit {MAX_MEMBERS})")
    total = sum(max(int(i.file_size), 0) for i in infos)
    if total > MAX_EXPANDED_BYTES:
        raise HarmonizeError(
            f"{label}: refused: the archive would expand to {_mb(total)} (limit {_mb(MAX_EXPANDED_BYTES)}); "
            "not decompressed"
        )
    for i in infos:
        if i.file_size > RATIO_MIN_BYTES and i.file_size > MAX_RATIO * max(i.compress_size, 1):
            ratio = i.file_size / max(i.compress_size, 1)
            raise HarmonizeError(
                f"{label}: refused: member {i.filename!r} would expand {ratio:.0f} times "
                f"({_mb(i.compress_size)} -> {_mb(i.file_size)}; limit {MAX_RATIO:g}x); not decompressed"
            )
