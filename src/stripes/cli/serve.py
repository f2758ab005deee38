"""``stripes serve``: the harmonizer as a page in your browser, on this computer only (``stripes[app]``)."""

from __future__ import annotations

import argparse
import sys

EPILOG = """examples:
  stripes serve                      then open http://127.0.0.1:7860
  stripes serve --port 8000 --checkpoint runs/my_accompanist

The page listens on 127.0.0.1 only (there is no --host): other computers cannot reach it. From another
machine use an SSH tunnel: ssh -L 7860:127.0.0.1:7860 THIS_HOST. No share link, no telemetry; uploads over
20 MiB are refused. One API endpoint, /harmonize (gradio_client); see docs/harmonize.md.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="the harmonizer as a local web page (http://127.0.0.1:PORT; needs stripes[app])",
        description="Serve a page where you upload a melody (MIDI or MusicXML), pick the melody track, edit "
        "the chord chart and the key, and get the accompaniment: piano roll, audio, MIDI / MusicXML / WAV / "
        "chords.txt downloads, several candidates and regenerated bars. Listens on 127.0.0.1 only.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--port", type=int, default=7860, metavar="N", help="TCP port on 127.0.0.1 (default 7860)")
    p.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="a run folder, checkpoint or inference file, as for stripes harmonize (default: the shipped "
        "models)",
    )
    p.add_argument(
        "--mode",
        choices=("auto", "generative", "parallel"),
        default="auto",
        help="the model loaded at start (auto: generative when there is one); the page can switch",
    )
    p.add_argument("--candidates", type=int, default=2, metavar="N",
                   help="the page's default number of candidates (1-4; default 2)")
    p.add_argument("--quiet", action="store_true", help="no start-up banner from gradio")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from stripes.apps.harmonize.errors import HarmonizeError
    from stripes.apps.serve.handlers import MAX_SERVED_CANDIDATES

    if not 1 <= args.port <= 65535:
        raise HarmonizeError(f"--port must be between 1 and 65535, got {args.port}")
    if not 1 <= args.candidates <= MAX_SERVED_CANDIDATES:
        raise HarmonizeError(
            f"--candidates must be between 1 and {MAX_SERVED_CANDIDATES}, got {args.candidates}"
        )
    from stripes.apps.serve.server import serve_forever, start

    page, url, work_root = start(args.port, args.checkpoint, args.mode, quiet=args.quiet,
                                 candidates=args.candidates)
    print(f"stripes serve: {url} (this computer only; Ctrl-C stops; outputs in {work_root}, removed then)",
          file=sys.stderr, flush=True)
    serve_forever(page, work_root)
    return 0
