"""`stripes data fetch` against a local HTTP server serving GitHub-like archives of the shared data."""

from __future__ import annotations

import functools
import http.server
import json
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from stripes.data.fetch import fetch
from stripes.errors import DataError

SONGS = {"train": [1, 2], "val": [13], "test": [6]}
IDS = [1, 2, 6, 13]


def build_www(shared: Path, www: Path) -> None:
    z = www / "music-x-lab" / "POP909-Dataset" / "archive" / "refs" / "heads" / "master.zip"
    z.parent.mkdir(parents=True)
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("POP909-Dataset-master/README.md", "POP909")
        for sid in IDS:
            d = shared / "POP909" / f"{sid:03d}"
            for f in sorted(d.iterdir()):
                zf.write(f, f"POP909-Dataset-master/POP909/{sid:03d}/{f.name}")
            zf.writestr(f"POP909-Dataset-master/POP909/{sid:03d}/versions/{sid:03d}-v1.mid", b"unused")
    # only a 'main' branch here: fetch must fall back from master to main
    z = www / "Dsqvival" / "hierarchical-structure-analysis" / "archive" / "refs" / "heads" / "main.zip"
    z.parent.mkdir(parents=True)
    with zipfile.ZipFile(z, "w") as zf:
        for sid in IDS:
            for f in sorted((shared / "POP909-structure" / f"{sid:03d}").iterdir()):
                zf.write(f, f"hierarchical-structure-analysis-main/POP909/{sid:03d}/{f.name}")
    raw = www / "agarwalmanvi" / "structurePE" / "master" / "data" / "pop909" / "data"
    raw.mkdir(parents=True)
    np.savez(raw / "split.npz", **{f"{k}_idx": np.asarray(v) for k, v in SONGS.items()})
    for f in ("chord_db.npz", "startpos.csv"):
        (raw / f).write_bytes((shared / "structurePE" / f).read_bytes())


class Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:
        Handler.requests.append(self.path)
        super().do_GET()


@pytest.fixture()
def server(shared_data: Path, tmp_path: Path) -> Iterator[str]:
    www = tmp_path / "www"
    build_www(shared_data, www)
    Handler.requests = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_fetch_then_nothing_to_download(server: str, tmp_path: Path, shared_data: Path) -> None:
    dest = tmp_path / "data"
    m = fetch(dest, base_url=server, raw_base_url=server, progress=False)
    assert all(e["downloaded"] for e in m.values())
    assert m["POP909"]["n_songs"] == 4 and m["POP909-structure"]["n_songs"] == 4
    assert m["POP909-structure"]["urls"][0].endswith("/main.zip")
    for sid in IDS:
        name = f"{sid:03d}"
        assert (dest / "POP909" / name / f"{name}.mid").read_bytes() == (
            shared_data / "POP909" / name / f"{name}.mid").read_bytes()
        assert not (dest / "POP909" / name / "versions").exists()
        assert (dest / "POP909-structure" / name / "human_label1.txt").is_file()
    names = sorted(p.name for p in (dest / "structurePE").iterdir())
    assert names == ["chord_db.npz", "split.npz", "startpos.csv"]
    assert not [p for p in dest.iterdir() if p.name.startswith(".fetch")]
    saved = json.loads((dest / "fetch_manifest.json").read_text())
    assert saved["POP909"]["sha256"] == m["POP909"]["sha256"]

    n = len(Handler.requests)
    m2 = fetch(dest, base_url=server, raw_base_url=server, progress=False)
    assert len(Handler.requests) == n  # nothing downloaded again
    assert not any(e["downloaded"] for e in m2.values())

    # the fetched root prepares like the shared one
    from stripes.data.prepare import prepare

    folder = prepare(dest, tmp_path / "cache", workers=1)
    assert json.loads((folder / "manifest.json").read_text())["n_songs"] == 4


def test_incomplete_download_is_rejected_atomically(server: str, tmp_path: Path) -> None:
    www_zip_missing = tmp_path / "www" / "Dsqvival" / "hierarchical-structure-analysis" / "archive"
    for p in www_zip_missing.rglob("main.zip"):
        with zipfile.ZipFile(p, "w") as zf:  # the archive lacks song 013
            zf.writestr("hierarchical-structure-analysis-main/POP909/001/melody.txt", "0 4\n")
    dest = tmp_path / "data"
    with pytest.raises(DataError, match="missing"):
        fetch(dest, base_url=server, raw_base_url=server, progress=False)
    assert not (dest / "POP909-structure").exists()
    assert not [p for p in dest.iterdir() if p.name.startswith(".fetch")]


def test_unreachable_server(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="download failed"):
        url = "http://127.0.0.1:9"
        fetch(tmp_path / "d", base_url=url, raw_base_url=url, progress=False)
