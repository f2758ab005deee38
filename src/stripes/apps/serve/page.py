"""The page of ``stripes serve`` (gradio Blocks): upload, melody track, chord chart, key, Harmonize, the
candidates side by side, "regenerate bars", and the one API endpoint ``/harmonize``.

Import this module only after :func:`stripes.apps.serve.server.private_environment` (it imports gradio).
The work is done by :mod:`stripes.apps.serve.handlers`; this module only wires components to it and turns
a :class:`~stripes.apps.harmonize.errors.HarmonizeError` into one line (the status box on the page,
``gr.Error`` for the API).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import gradio as gr

from stripes.apps.harmonize.errors import HarmonizeError
from stripes.apps.harmonize.estimate import MAJOR_NAMES, MINOR_NAMES
from stripes.apps.serve.handlers import (
    AUTO_TRACK,
    ESTIMATE_KEY,
    EXAMPLE_CHORDS,
    EXAMPLE_MELODY,
    MAX_SERVED_CANDIDATES,
    Harmonized,
    Models,
    Request,
    harmonize_upload,
    melody_tracks,
    one_line,
)

LOG = logging.getLogger("stripes.serve")
KEYS = [ESTIMATE_KEY] + [f"{n} major" for n in MAJOR_NAMES] + [f"{n} minor" for n in MINOR_NAMES]
FILE_TYPES = [".mid", ".midi", ".musicxml", ".mxl", ".xml"]
INTRO = """## stripes: harmonize a melody
Upload a MIDI or MusicXML melody, check the melody track, the key and the chord chart (empty = taken from
the file or estimated), press **Harmonize**. Everything runs on this computer; nothing is uploaded anywhere.
"""
CSS = "#chords textarea { font-family: ui-monospace, 'IBM Plex Mono', monospace; }"  # bars line up
HARMONIZE_QUEUE = "harmonize"  # the concurrency group of every event that runs the model
CHART_HINT = "one bar per |, e.g.  | C | G | Am F | Fmaj7/A |  (N = no chord, % = repeat); empty = estimate"


def _guard(exc: Exception, path: Any = None) -> str:
    """One line for any failure; an unexpected one is logged with its traceback on the server."""
    if isinstance(exc, HarmonizeError):
        return one_line(exc, Path(path) if path else None)
    LOG.exception("stripes serve: unexpected error")
    return f"cannot harmonize ({type(exc).__name__}: {one_line(exc, Path(path) if path else None)[:160]})"


def _record(res: Harmonized, title: str) -> list[dict[str, Any]]:
    files = []
    for c in res.candidates:
        files.append({
            "seed": c.seed, "title": title.format(seed=c.seed, notes=c.notes), "midi": str(c.midi),
            "png": str(c.png) if c.png else None, "wav": str(c.wav) if c.wav else None,
            "downloads": [str(f) for f in (c.midi, c.wav, c.musicxml, res.chords_file) if f],
        })
    return files


def _slots(cands: list[dict[str, Any]]) -> list[Any]:
    """Updates of the candidate columns: (column, title, picture, audio, downloads) per slot."""
    out: list[Any] = []
    for k in range(MAX_SERVED_CANDIDATES):
        if k < len(cands):
            c = cands[k]
            out += [gr.update(visible=True), f"**Candidate {k + 1}**: {c['title']}", c["png"], c["wav"],
                    c["downloads"]]
        else:
            out += [gr.update(visible=False), "", None, None, None]
    return out


def _choices(cands: list[dict[str, Any]]) -> Any:
    labels = [(f"candidate {k + 1} (seed {c['seed']})", k) for k, c in enumerate(cands)]
    return gr.update(choices=labels, value=labels[0][1] if labels else None)


def build_page(models: Models, work_root: Path, default_candidates: int = 2) -> gr.Blocks:
    """The page; ``models`` are shared by all requests, outputs go to new folders under ``work_root``."""
    example_dir = Path(work_root) / "example"
    example_dir.mkdir(parents=True, exist_ok=True)
    example = Path(shutil.copy(EXAMPLE_MELODY, example_dir / EXAMPLE_MELODY.name))

    with gr.Blocks(title="stripes harmonize", analytics_enabled=False, delete_cache=(3600, 3600)) as page:
        state = gr.State([])
        gr.Markdown(INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                upload = gr.File(label="melody", file_types=FILE_TYPES, type="filepath", elem_id="upload")
                use_example = gr.Button("use the bundled melody (Morning Walk)", size="sm", elem_id="example")
                track = gr.Dropdown([("automatic", AUTO_TRACK)], value=AUTO_TRACK, label="melody_track",
                                    info="which track is the melody (best first)", allow_custom_value=True)
                ranking = gr.Textbox(label="track ranking", lines=2, max_lines=6, interactive=False)
            with gr.Column(scale=1):
                chords = gr.Textbox(label="chords", lines=7, max_lines=20, placeholder=CHART_HINT,
                                    info="the chord chart (<stem>.chords.txt format), editable",
                                    elem_id="chords")
                key = gr.Dropdown(KEYS, value=ESTIMATE_KEY, label="key", allow_custom_value=True,
                                  info="estimate, or e.g. A minor / Eb major / F#m")
            with gr.Column(scale=1):
                mode = gr.Radio(["auto", "generative", "parallel"], value="auto", label="mode",
                                info="auto: the generative model when there is one")
                with gr.Row():
                    seed = gr.Number(0, precision=0, minimum=0, label="seed")
                    n = gr.Slider(1, MAX_SERVED_CANDIDATES, value=default_candidates, step=1,
                                  label="candidates")
                musicxml = gr.Checkbox(False, label="also a MusicXML score (slower)")
                go = gr.Button("Harmonize", variant="primary", elem_id="harmonize")
                status = gr.Textbox(label="status", lines=2, max_lines=3, interactive=False, elem_id="status")
        slots: list[Any] = []
        with gr.Row(equal_height=False):
            for k in range(MAX_SERVED_CANDIDATES):
                with gr.Column(visible=False, min_width=280) as col:
                    slots += [col, gr.Markdown(),
                              gr.Image(type="filepath", show_label=False, interactive=False),
                              gr.Audio(type="filepath", interactive=False, show_label=False),
                              gr.File(file_count="multiple", label=f"downloads {k + 1}", interactive=False)]
        with gr.Row():
            which = gr.Dropdown([], label="regenerate in candidate", scale=1)
            bars = gr.Textbox(label="bars", placeholder="5-8 (or 3, or 2-4,7)", scale=1)
            regen_seed = gr.Number(100, precision=0, minimum=0, label="seed for the new bars", scale=1)
            regen = gr.Button("regenerate bars (the rest is kept)", scale=1)
        # the API endpoint's own regenerate input and outputs (hidden on the page)
        api_regen = gr.Textbox("", visible=False, label="regenerate")
        api_out = [gr.File(file_count="multiple", visible=False, label=x) for x in ("midi", "wav", "png")]
        api_chords = gr.Textbox(visible=False, label="chords_used")
        api_go = gr.Button(visible=False)

        def on_upload(path: str | None) -> tuple[Any, str, str, str]:
            """A new melody: its track ranking; the chord chart is emptied (the example brings its own)."""
            auto = gr.update(choices=[("automatic", AUTO_TRACK)], value=AUTO_TRACK)
            is_example = bool(path) and Path(path).name == example.name and (
                Path(path).read_bytes() == example.read_bytes())  # gradio hands over a copy of the file
            chart = EXAMPLE_CHORDS.read_text(encoding="utf-8") if is_example else ""
            if not path:
                return auto, "", chart, ""
            try:
                choices, text = melody_tracks(path)
            except Exception as exc:  # noqa: BLE001 (one line on the page, whatever happened)
                return auto, "", chart, f"error: {_guard(exc, path)}"
            return gr.update(choices=choices, value=AUTO_TRACK), text, chart, f"{Path(path).name}: ready"

        def on_example() -> str:
            return str(example)

        def _failed(line: str) -> list[Any]:
            """Only the status changes: the last results stay on the page."""
            return [gr.skip(), gr.skip(), line, gr.skip()] + [gr.skip()] * len(slots)

        def request(key_: str, mode_: str, seed_: Any, n_: Any, track_: str, xml: bool, bars_: str = ""
                    ) -> Request:
            return Request(key=key_ or "", mode=mode_ or "auto", seed=int(seed_ or 0),
                           candidates=int(n_ or 1), melody_track=str(track_ or ""), regenerate=bars_ or "",
                           musicxml=bool(xml))

        def on_harmonize(path: str | None, chart: str, key_: str, mode_: str, seed_: Any, n_: Any,
                         track_: str, xml: bool) -> list[Any]:
            """Harmonize press: the candidates' columns, the chart used and the status line."""
            try:
                res = harmonize_upload(path, chart or "", request(key_, mode_, seed_, n_, track_, xml),
                                       models, work_root)
            except Exception as exc:  # noqa: BLE001
                return _failed(f"error: {_guard(exc, path)}")
            cands = _record(res, "seed {seed}, {notes} accompaniment notes")
            return [cands, res.chords_text, res.summary, _choices(cands)] + _slots(cands)

        def on_regenerate(cands: list[dict[str, Any]], k: Any, bars_: str, seed_: Any, mode_: str,
                          xml: bool) -> list[Any]:
            """Regenerate press: bars of candidate ``k`` drawn again, the other candidates as they were."""
            if not cands or k is None:
                return _failed("error: harmonize first, then pick a candidate")
            old = cands[int(k)]
            try:
                if not str(bars_ or "").strip():
                    raise HarmonizeError("bars: say which bars to draw again, e.g. 5-8")
                res = harmonize_upload(old["midi"], "", request("", mode_, seed_, 1, "", xml, bars_),
                                       models, work_root)
            except Exception as exc:  # noqa: BLE001
                return _failed(f"error: {_guard(exc, old['midi'])}")
            title = f"seed {old['seed']}; bars {bars_} redrawn with seed {{seed}} ({{notes}} notes)"
            (new,) = _record(res, title)
            new["seed"] = old["seed"]
            cands = [new if j == int(k) else c for j, c in enumerate(cands)]
            return [cands, gr.skip(), res.summary, gr.skip()] + _slots(cands)

        def api_harmonize(path: str | None, chart: str, key_: str, mode_: str, seed_: Any, n_: Any,
                          track_: str, bars_: str) -> tuple[list[str], list[str], list[str], str]:
            """Harmonize a melody: file, chords text (empty = from the file or estimated), key (empty =
            estimate), mode, seed, candidates, melody track (empty = automatic), bars to regenerate (empty =
            none; the file is then a MIDI file stripes harmonized). Returns one MIDI, WAV and PNG file per
            candidate and the chord chart used."""
            try:
                req = request(key_, mode_, seed_, n_, track_, False, bars_)
                res = harmonize_upload(path, chart or "", req, models, work_root)
            except Exception as exc:  # noqa: BLE001
                raise gr.Error(_guard(exc, path), print_exception=False) from None
            c = res.candidates
            return ([str(x.midi) for x in c], [str(x.wav) for x in c if x.wav],
                    [str(x.png) for x in c if x.png], res.chords_text)

        private = {"api_visibility": "private"}
        # the three events that run the model share one queue (gradio queues each event on its own
        # otherwise): one harmonization at a time, page and API together (the sampler sets torch's
        # process-wide thread count)
        one = {"concurrency_id": HARMONIZE_QUEUE, "concurrency_limit": 1}
        upload.change(on_upload, upload, [track, ranking, chords, status], **private)
        use_example.click(on_example, None, upload, **private)
        outs = [state, chords, status, which] + slots
        go.click(on_harmonize, [upload, chords, key, mode, seed, n, track, musicxml], outs, **private, **one)
        regen.click(on_regenerate, [state, which, bars, regen_seed, mode, musicxml], outs, **private, **one)
        api_go.click(api_harmonize, [upload, chords, key, mode, seed, n, track, api_regen],
                     [*api_out, api_chords], api_name="harmonize", **one)
    return page
