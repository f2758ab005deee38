"""Download POP909, Dai et al.'s structure annotations and the structurePE split/chord table.

Each source is downloaded into a temp folder inside the destination, checked, then moved into place
with ``os.replace``; a source whose folder is already present and complete is not downloaded again.
Base URLs can be overridden (``--base-url`` / ``$STRIPES_GITHUB_URL`` for archives,
``--raw-base-url`` / ``$STRIPES_GITHUB_RAW_URL`` for single files), e.g. for a mirror or for tests.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stripes.data.prepare import ANNOTATION_FILES, META_FILES
from stripes.data.readers import read_split
from stripes.errors import DataError

GITHUB = "https://github.com"
GITHUB_RAW = "https://raw.githubusercontent.com"
BRANCHES = ("master", "main")


@dataclass(frozen=True)
class Source:
    """A GitHub repository folder to install as ``dest`` in the data root."""

    name: str
    repo: str  # owner/name
    folder: str  # folder inside the repository
    dest: str  # folder name in the data root
    files: tuple[str, ...] = ()  # fetch these single files (raw URLs) instead of the whole archive


SOURCES = (
    Source("structurePE", "agarwalmanvi/structurePE", "data/pop909/data", "structurePE", META_FILES),
    Source("POP909", "music-x-lab/POP909-Dataset", "POP909", "POP909"),
    Source("POP909-structure", "Dsqvival/hierarchical-structure-analysis", "POP909", "POP909-structure"),
)


def _get(url: str, desc: str, progress: bool) -> bytes:
    from tqdm import tqdm

    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            buf = io.BytesIO()
            # disable=None: no bar when stderr is not a terminal (no carriage-return lines in logs)
            with tqdm(total=total, unit="B", unit_scale=True, desc=desc,
                      disable=None if progress else True) as bar:
                for block in iter(lambda: resp.read(1 << 16), b""):
                    buf.write(block)
                    bar.update(len(block))
            return buf.getvalue()
    except urllib.error.HTTPError as exc:
        raise FileNotFoundError(f"{url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DataError(f"{url}: download failed ({exc})") from None


def _get_any(urls: list[str], desc: str, progress: bool) -> tuple[str, bytes]:
    errors = []
    for url in urls:
        try:
            return url, _get(url, desc, progress)
        except FileNotFoundError as exc:
            errors.append(str(exc))
    raise DataError("; ".join(errors))


def check_source(src: Source, folder: Path, song_ids: list[int] | None) -> dict[str, Any]:
    """Check a downloaded folder; returns {"n_songs": ..., "n_files": ...}. DataError if incomplete."""
    if not folder.is_dir():
        raise DataError(f"{folder}: missing")
    if src.files:
        for f in src.files:
            if not (folder / f).is_file():
                raise DataError(f"{folder / f}: missing")
        return {"n_songs": None, "n_files": len(src.files)}
    songs = sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())
    want = song_ids if song_ids is not None else songs
    missing_songs = sorted(set(want) - set(songs))
    if missing_songs:
        raise DataError(f"{folder}: {len(missing_songs)} song folder(s) missing, e.g. {missing_songs[:5]}")
    n_files = 0
    for sid in want:
        d = folder / f"{sid:03d}"
        need = [f"{sid:03d}.mid"] if src.dest == "POP909" else list(ANNOTATION_FILES)
        for f in need:
            if not (d / f).is_file():
                raise DataError(f"{d / f}: missing")
        n_files += len(need)
    return {"n_songs": len(songs), "n_files": n_files}


def _extract(data: bytes, src: Source, url: str, out: Path) -> None:
    """Extract ``<repo>-<branch>/<folder>/...`` of a GitHub zip archive into `out` (the ``versions/``
    sub-folders of POP909 are left out: they are not used)."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise DataError(f"{url}: not a zip archive") from None
    with zf:
        names = zf.namelist()
        if not names:
            raise DataError(f"{url}: empty archive")
        top = names[0].split("/")[0]
        prefix = f"{top}/{src.folder.strip('/')}/"
        n = 0
        for info in zf.infolist():
            if not info.filename.startswith(prefix) or info.is_dir():
                continue
            rel = info.filename[len(prefix):]
            parts = rel.split("/")
            if "versions" in parts[:-1] or ".." in parts or rel.startswith("/"):
                continue
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as fin, open(target, "wb") as fout:
                shutil.copyfileobj(fin, fout)
            n += 1
        if n == 0:
            raise DataError(f"{url}: no folder {src.folder!r} in the archive")


def fetch(dest: str | os.PathLike[str], *, base_url: str | None = None, raw_base_url: str | None = None,
          progress: bool = True) -> dict[str, Any]:
    """Install the three sources under `dest` (skipping complete ones); writes and returns
    ``dest/fetch_manifest.json``."""
    dest = Path(dest).expanduser()
    base = (base_url or os.environ.get("STRIPES_GITHUB_URL") or GITHUB).rstrip("/")
    raw = (raw_base_url or os.environ.get("STRIPES_GITHUB_RAW_URL") or GITHUB_RAW).rstrip("/")
    dest.mkdir(parents=True, exist_ok=True)
    mpath = dest / "fetch_manifest.json"
    manifest: dict[str, Any] = json.loads(mpath.read_text()) if mpath.is_file() else {}
    song_ids: list[int] | None = None
    for src in SOURCES:
        final = dest / src.dest
        entry = manifest.get(src.name, {})
        try:
            entry.update(check_source(src, final, song_ids))
            entry["downloaded"] = False
        except DataError:
            if final.exists():
                raise DataError(f"{final}: exists but is incomplete; remove it and fetch again") from None
            tmp = Path(tempfile.mkdtemp(prefix=f".fetch-{src.dest}.", dir=dest))
            try:
                out = tmp / src.dest
                out.mkdir()
                h = hashlib.sha256()
                if src.files:
                    urls = []
                    for f in src.files:
                        url, data = _get_any([f"{raw}/{src.repo}/{b}/{src.folder}/{f}" for b in BRANCHES],
                                             f"{src.name}/{f}", progress)
                        (out / f).write_bytes(data)
                        h.update(data)
                        urls.append(url)
                else:
                    url, data = _get_any([f"{base}/{src.repo}/archive/refs/heads/{b}.zip" for b in BRANCHES],
                                         src.name, progress)
                    h.update(data)
                    _extract(data, src, url, out)
                    urls = [url]
                info = check_source(src, out, song_ids)
                os.replace(out, final)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            entry = {"urls": urls, "sha256": h.hexdigest(), "downloaded": True, **info}
        manifest[src.name] = entry
        if src.name == "structurePE":
            split = read_split(final / "split.npz")
            song_ids = sorted(int(s) for ids in split.values() for s in ids)
    tmp_m = mpath.with_name(mpath.name + ".tmp")
    tmp_m.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp_m, mpath)
    return manifest
