"""One `stripes serve` page for tests/apps/test_serve*.py: started once per test process, in a thread, with an
audit hook that records every network connection the process opens to a host other than this machine."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

LOCAL = {"127.0.0.1", "::1", "localhost", "0.0.0.0"}
NONLOCAL: list[tuple[str, str]] = []  # (audit event, host) of every non-local connection attempt
LOCAL_SEEN: list[str] = []  # the local ones (so a test can check that the hook saw something)


def _audit(event: str, args: tuple) -> None:
    if event == "socket.connect":
        addr = args[1]
        if not isinstance(addr, tuple):  # a Unix socket path: not the network
            return
        host = addr[0]
    elif event == "socket.getaddrinfo":
        host = args[0]
    else:
        return
    host = host.decode() if isinstance(host, bytes) else str(host)
    if host in LOCAL:
        LOCAL_SEEN.append(host)
    else:
        import traceback
        print("NONLOCAL", host, "".join(traceback.format_stack()[-22:-8]), file=sys.__stderr__)
        NONLOCAL.append((event, host))


@dataclass
class Served:
    url: str
    port: int
    work_root: Path
    page: Any


_SERVED: list[Served] = []


def need_gradio() -> None:
    """Skip without the app extra, except in CI (CI=true), where a missing extra is a failure. The
    telemetry switches are set first: gradio and huggingface_hub read them when imported."""
    from stripes.apps.serve.server import private_environment

    private_environment()
    if os.environ.get("CI") == "true":
        import gradio  # noqa: F401
        import gradio_client  # noqa: F401
    else:
        pytest.importorskip("gradio", reason="needs the app extra: pip install -e '.[app]'")
        pytest.importorskip("gradio_client", reason="needs the app extra: pip install -e '.[app]'")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def served() -> Served:
    """The page (started on the first call; closed when the test process ends)."""
    need_gradio()
    if not _SERVED:
        sys.addaudithook(_audit)
        from stripes.apps.serve.server import start

        port = free_port()
        page, url, root = start(port, quiet=True)
        _SERVED.append(Served(url, port, root, page))

        def _stop() -> None:
            page.close()
            shutil.rmtree(root, ignore_errors=True)

        atexit.register(_stop)
    return _SERVED[0]


def client(url: str, download: Path) -> Any:
    """A gradio_client Client without telemetry (the env variables gradio_client reads)."""
    from stripes.apps.serve.server import private_environment

    private_environment()
    from gradio_client import Client

    return Client(url, verbose=False, download_files=str(download), analytics_enabled=False)
