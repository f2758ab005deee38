"""Screenshot of the `stripes serve` page after harmonizing the bundled melody -> docs/img/serve.png.

Starts the page on a free local port, drives headless Chromium through the DevTools protocol over a pipe
(``--remote-debugging-pipe``: no extra Python package): "use the bundled melody", Harmonize, wait for the
status line, capture the whole page. Needs the app extra and Chromium (Debian: ``apt-get install chromium``).

    python scripts/screenshot_serve.py [--out docs/img/serve.png] [--candidates 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 1280


class DevTools:
    """A minimal Chrome DevTools Protocol client over Chromium's pipe (fd 3 in, fd 4 out)."""

    def __init__(self, chromium: str, flags: list[str]) -> None:
        cmd_r, self._cmd_w = os.pipe()
        self._out_r, out_w = os.pipe()

        def child() -> None:
            os.dup2(cmd_r, 3)
            os.dup2(out_w, 4)

        self.proc = subprocess.Popen([chromium, *flags, "--remote-debugging-pipe", "about:blank"],
                                     preexec_fn=child, close_fds=False, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        os.close(cmd_r)
        os.close(out_w)
        self._buf = b""
        self._id = 0
        self.session: str | None = None

    def call(self, method: str, timeout: float = 60.0, **params: Any) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        end = time.time() + timeout
        while time.time() < end:
            while b"\0" not in self._buf:
                chunk = os.read(self._out_r, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the pipe")
                self._buf += chunk
            raw, self._buf = self._buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
        raise TimeoutError(method)

    def js(self, expression: str) -> Any:
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return res.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float, what: str) -> Any:
        end = time.time() + timeout
        while time.time() < end:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.5)
        raise TimeoutError(f"waited {timeout:.0f} s for {what}")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


STATUS = "(document.querySelector('#status textarea') || document.querySelector('#status input') || {}).value"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "serve.png")
    ap.add_argument("--candidates", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the harmonization")
    args = ap.parse_args(argv)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("needs Chromium (Debian: apt-get install chromium)", file=sys.stderr)
        return 1
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from stripes.apps.serve.server import start

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    page, url, work_root = start(port, quiet=True, candidates=args.candidates)
    profile = Path(tempfile.mkdtemp(prefix="stripes-chromium-"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", f"--user-data-dir={profile}"]
    cdp = DevTools(chromium, flags)
    try:
        target = cdp.call("Target.createTarget", url="about:blank")["targetId"]
        cdp.session = cdp.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        cdp.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=1000, deviceScaleFactor=1,
                 mobile=False)
        cdp.call("Page.enable")
        cdp.call("Page.navigate", url=url)
        cdp.wait_for("!!document.querySelector('#example')", 60, "the page")
        cdp.js("document.querySelector('#example').click()")
        cdp.wait_for(f"({STATUS} || '').includes('ready')", 60, "the bundled melody to load")
        t0 = time.time()
        cdp.js("document.querySelector('#harmonize').click()")
        status = cdp.wait_for(f"(({STATUS} || '').includes(' s') && {STATUS}) || false", args.timeout,
                              "the harmonization")
        print(f"harmonized in {time.time() - t0:.1f} s: {status}", file=sys.stderr)
        if status.startswith("error"):
            return 1
        time.sleep(3)  # pictures and audio players drawn
        height = int(cdp.js("document.documentElement.scrollHeight"))
        cdp.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=height, deviceScaleFactor=1,
                 mobile=False)
        time.sleep(1)
        shot = cdp.call("Page.captureScreenshot", format="png")["data"]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(base64.b64decode(shot))
        print(f"wrote {args.out} ({WIDTH}x{height})", file=sys.stderr)
    finally:
        cdp.close()
        page.close()
        shutil.rmtree(work_root, ignore_errors=True)
        shutil.rmtree(profile, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
