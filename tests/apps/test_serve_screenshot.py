"""`stripes serve` in a real browser: headless Chromium renders the page (not blank, the UI drawn) and every
request the page makes goes to 127.0.0.1 (Chromium's own net log). Skipped without chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

from . import serve_server as srv

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WIDTH, HEIGHT = 1280, 1600


def chromium_flags(profile: Path) -> list[str]:
    """Headless, a fresh profile, no background traffic of the browser's own, no names resolved but local."""
    return [
        "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", f"--user-data-dir={profile}",
        f"--window-size={WIDTH},{HEIGHT}",
    ]


def page_requests(netlog: Path, origin: str) -> list[str]:
    """URLs of the requests the page itself started (initiator = its origin), from a Chromium net log."""
    log = json.loads(netlog.read_text())
    names = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    urls = []
    for e in log["events"]:
        p = e.get("params") or {}
        started = names.get(e["type"]) == "URL_REQUEST_START_JOB"
        if started and str(p.get("initiator", "")).rstrip("/") == origin:
            urls.append(p["url"])
    return urls


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian: apt-get install chromium)")
def test_page_renders_and_stays_local(tmp_path):
    from PIL import Image

    page = srv.served()
    shot, netlog = tmp_path / "page.png", tmp_path / "netlog.json"
    cmd = [CHROMIUM, *chromium_flags(tmp_path / "profile"), "--virtual-time-budget=10000",
           f"--log-net-log={netlog}", f"--screenshot={shot}", page.url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("RGB")).astype(np.int16)
    assert img.shape == (HEIGHT, WIDTH, 3)
    gray = img.mean(axis=2)
    assert gray.std() > 5 and (gray < 200).mean() > 0.01, "blank page"
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    orange = (r > 200) & (g > 80) & (g < 170) & (b < 90)  # the primary Harmonize button of the theme
    assert orange.sum() > 2000, "the page's controls were not drawn"
    origin = f"http://127.0.0.1:{page.port}"
    urls = page_requests(netlog, origin)
    assert len(urls) >= 3, urls  # the page's scripts and config were fetched (and logged)
    assert {urlparse(u).hostname for u in urls} == {"127.0.0.1"}, urls
