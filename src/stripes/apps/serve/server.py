"""Starting the page: local only, no telemetry, no share link, upload limits; the models loaded once.

Privacy (what keeps everything on this computer):

* the server binds ``127.0.0.1`` only (:data:`HOST`; there is no option to change it), ``share=False``
  (no gradio tunnel);
* ``GRADIO_ANALYTICS_ENABLED=False``, ``HF_HUB_DISABLE_TELEMETRY=1`` and ``HF_HUB_OFFLINE=1`` are set before
  gradio is imported and the Blocks get ``analytics_enabled=False`` (no usage reports, no version check,
  no Hugging Face Hub requests);
* server-side rendering (a Node process), the MCP server and monitoring are off; the default theme's
  fonts ship with gradio (no Google Fonts);
* uploads are limited by gradio (``max_file_size``) and then by :mod:`stripes.apps.harmonize.safety`
  (size, .mxl zip bombs); outputs go to a private temporary folder removed when the server stops.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from stripes.apps.harmonize.errors import HarmonizeError
from stripes.apps.harmonize.safety import MAX_INPUT_BYTES
from stripes.apps.serve.handlers import Models, new_work_root

HOST = "127.0.0.1"
DEFAULT_PORT = 7860
# read by gradio, gradio_client and huggingface_hub when they are imported or a client starts:
# no analytics or version check, no Hugging Face telemetry, no Hub look-ups (e.g. gradio_client's headers)
PRIVATE_ENV = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1"}


def private_environment() -> None:
    """Set the variables that turn gradio's (and gradio_client's) telemetry off; call before importing
    gradio (they are read at import time and when a client starts)."""
    os.environ.update(PRIVATE_ENV)


def start(
    port: int = DEFAULT_PORT,
    checkpoint: str | None = None,
    mode: str = "auto",
    quiet: bool = False,
    candidates: int = 2,
) -> tuple[Any, str, Path]:
    """Load the model of ``mode``, build the page and serve it on ``http://127.0.0.1:PORT`` from a thread;
    returns at once (:func:`serve_forever` waits; else call ``page.close()`` and remove ``work_root``).

    Parameters
    ----------
    port : TCP port on 127.0.0.1.
    checkpoint : ``--checkpoint`` of ``stripes harmonize`` (None: the shipped models).
    mode : the model loaded at start (``auto``: generative when there is one); the page can switch.
    quiet : no gradio start-up banner.
    candidates : the page's default number of candidates.

    Returns
    -------
    (page, url, work_root)
        The gradio Blocks, the local URL and the folder that holds this server's outputs.
    """
    private_environment()
    from stripes._extras import require

    require("gradio", "app")
    models = Models(checkpoint)
    models.get(mode)  # a missing model is one line now, not at the first request
    from stripes.apps.serve.page import CSS, build_page

    work_root = new_work_root()
    page = build_page(models, work_root, default_candidates=candidates)
    page.queue(default_concurrency_limit=1, max_size=32)
    try:
        _, url, _ = page.launch(
            server_name=HOST,
            server_port=int(port),
            share=False,
            inbrowser=False,
            prevent_thread_lock=True,
            quiet=quiet,
            show_error=False,
            max_file_size=MAX_INPUT_BYTES,
            allowed_paths=[str(work_root)],
            ssr_mode=False,
            mcp_server=False,
            enable_monitoring=False,
            pwa=False,
            footer_links=["api"],
            css=CSS,
        )
    except OSError:
        shutil.rmtree(work_root, ignore_errors=True)
        raise HarmonizeError(
            f"cannot serve on {HOST}:{port}: the port is in use; pick another --port"
        ) from None
    return page, f"http://{HOST}:{int(port)}/", work_root


def serve_forever(page: Any, work_root: Path) -> None:
    """Serve until Ctrl-C or SIGTERM; then stop the server and remove its work folder (the outputs)."""
    import signal
    import threading

    def _stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started in the background by a shell
            signal.signal(signal.SIGINT, _stop)
    try:
        page.block_thread()
    finally:
        page.close()
        shutil.rmtree(work_root, ignore_errors=True)
