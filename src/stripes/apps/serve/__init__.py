"""``stripes serve``: the harmonizer as a local web page (optional extra ``stripes[app]``: gradio).

``handlers`` does the work without gradio (upload in -> MIDI / WAV / PNG / chords text out, through
:mod:`stripes.apps.harmonize`); ``page`` is the gradio page and its one API endpoint ``/harmonize``;
``server`` starts it on 127.0.0.1 with telemetry off. See docs/harmonize.md, "In your browser".
"""

from __future__ import annotations
