"""`stripes serve`: the page's API endpoint /harmonize through gradio_client, its errors, regeneration, the
handlers without gradio, the CLI command, and that nothing connects off this machine."""

from __future__ import annotations

import subprocess
import sys
import wave
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import symusic

from stripes.apps.harmonize import chords as ch
from stripes.apps.harmonize.errors import HarmonizeError
from stripes.apps.serve.handlers import (
    EXAMPLE_MELODY,
    Models,
    Request,
    harmonize_upload,
    melody_tracks,
    prune,
)
from stripes.cli import main

from . import serve_server as srv
from .conftest import make_midi, scale_melody

N_BARS = 17  # morning_walk.mid: a pickup bar and 16 bars


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    page = srv.served()
    return srv.client(page.url, tmp_path_factory.mktemp("downloads"))


def _call(api, path, chords="", key="", mode="auto", seed=0, candidates=1, track="", regenerate=""):
    from gradio_client import handle_file

    return api.predict(handle_file(str(path)), chords, key, mode, seed, candidates, track, regenerate,
                       api_name="/harmonize")


@pytest.fixture(scope="module")
def harmonized(api):
    """The bundled melody, two candidates (seeds 3, 4), chords and key estimated."""
    return _call(api, EXAMPLE_MELODY, seed=3, candidates=2)


def _acc(path) -> list[tuple[int, int, int, int]]:
    score = symusic.Score(str(path))
    (track,) = [t for t in score.tracks if t.name == "accompaniment"]
    return sorted((n.time, n.duration, n.pitch, n.velocity) for n in track.notes)


def _bar_range(path: Path, first: int, last: int) -> tuple[int, int]:
    """Input ticks [start of bar first, end of bar last) (1-based bars)."""
    from stripes.apps.harmonize.song import read_midi_song

    song = read_midi_song(Path(path), "melody")
    edges = np.r_[song.bar_starts, song.n_ticks] * song.tpq // 16
    return int(edges[first - 1]), int(edges[last])


def test_api_harmonizes_the_bundled_melody(harmonized):
    midis, wavs, pngs, chart = harmonized
    names = ["morning_walk.harmonized.mid", "morning_walk.candidate2.harmonized.mid"]
    assert [Path(p).name for p in midis] == names
    assert len(wavs) == len(pngs) == 2
    given = symusic.Score(str(EXAMPLE_MELODY))
    melody_in = sorted((n.time, n.pitch) for n in given.tracks[0].notes)
    for mid in midis:
        score = symusic.Score(str(mid))
        assert [t.name for t in score.tracks] == ["melody", "accompaniment"]
        assert len(score.tracks[1].notes) > 20
        scale = score.ticks_per_quarter / given.ticks_per_quarter
        assert sorted((round(n.time / scale), n.pitch) for n in score.tracks[0].notes) == melody_in
    assert _acc(midis[0]) != _acc(midis[1])  # the two candidates differ
    for w in wavs:
        with wave.open(str(w)) as f:
            assert f.getframerate() == 44100 and f.getnframes() > 44100 * 10
            samples = np.frombuffer(f.readframes(f.getnframes()), np.int16)
        assert np.abs(samples).max() > 1000
    for p in pngs:
        data = Path(p).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert Path(pngs[0]).read_bytes() != Path(pngs[1]).read_bytes()
    assert chart.startswith("# key: C major (estimated from the melody)")
    bars = ch.parse_chord_text(chart)
    assert len(bars) == N_BARS and any(c.root is not None for bar in bars for c in bar)


def test_bad_inputs_are_one_line_and_the_server_keeps_serving(api, tmp_path):
    from gradio_client.exceptions import AppError

    page = srv.served()
    corrupt = tmp_path / "broken.mid"
    corrupt.write_bytes(b"MThd\x00\x00\x00\x06" + b"\x07" * 40)
    (tmp_path / "notes.txt").write_text("C | G")
    (tmp_path / "empty.mid").write_bytes(b"")
    picture = tmp_path / "picture.mid"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    secret = tmp_path / "server_side.txt"
    secret.write_text("C | G | Am | F")
    cases = [
        ({"path": corrupt}, "broken.mid: corrupt or truncated MIDI file"),
        ({"path": tmp_path / "notes.txt"}, "Invalid file type"),  # gr.File(file_types=...) refuses it
        ({"path": picture}, "picture.mid: not a MIDI file (no MThd header)"),
        ({"path": tmp_path / "empty.mid"}, "empty.mid: empty file"),
        ({"chords": "C | H7 | G"}, "chords: bar 2: cannot parse chord symbol 'H7'"),
        ({"key": "Q minor"}, "key: cannot read key 'Q minor'"),
        ({"candidates": 9}, "Value 9 is greater than maximum value 4"),  # the slider's own check
        ({"mode": "parallel", "candidates": 2}, "needs the generative model"),
        ({"regenerate": "8-5"}, "--regenerate 8-5: bars count from 1"),
        # a chord chart that names a file on the server is read as chords, never as a path
        ({"chords": str(secret)}, "cannot parse chord symbol"),
    ]
    for kw, expected in cases:
        kw.setdefault("path", EXAMPLE_MELODY)
        with pytest.raises(AppError) as info:
            _call(api, **kw)
        msg = str(info.value)
        assert expected in msg, (kw, msg)
        assert "\n" not in msg and "Traceback" not in msg and "/gradio/" not in msg
        assert str(page.work_root) not in msg
    big = tmp_path / "big.mid"
    big.write_bytes(b"MThd" + bytes(21 * 2**20))  # over the 20 MiB upload limit: refused by gradio
    with pytest.raises(Exception, match="(?i)too large|exceeds|size"):
        _call(api, big)
    # still serving: a good request right after (the parallel model: fast)
    midis, wavs, pngs, chart = _call(api, EXAMPLE_MELODY, chords="C | G | Am F | Fmaj7/A", key="A minor",
                                     mode="parallel")
    assert len(midis) == len(wavs) == len(pngs) == 1 and len(_acc(midis[0])) > 0
    assert chart.startswith("# key: A minor")
    bars = ch.parse_chord_text(chart)
    assert [[c.symbol for c in bar] for bar in bars[:4]] == [["C"], ["G"], ["Am", "F"], ["Fmaj7/A"]]


def test_regenerate_bars_of_a_candidate_keeps_the_others(api, harmonized):
    midis, _, _, chart = harmonized
    chosen = Path(midis[1])
    regen, wavs, pngs, chart2 = _call(api, chosen, seed=11, regenerate="5-8")
    assert [Path(p).name for p in regen] == ["morning_walk.candidate2.regenerated.mid"]
    assert len(wavs) == len(pngs) == 1
    lo, hi = _bar_range(chosen, 5, 8)
    old, new = _acc(chosen), _acc(regen[0])
    outside = [n for n in old if n[0] + n[1] <= lo or n[0] >= hi]
    assert outside and len(outside) < len(old)
    assert not Counter(outside) - Counter(new), "a note outside bars 5-8 changed"
    inside_old = sorted(n for n in old if lo <= n[0] < hi)
    inside_new = sorted(n for n in new if lo <= n[0] < hi)
    assert inside_new != inside_old
    # the chords stay those of the candidate (read back from its chord markers)
    sym = [[c.symbol for c in bar] for bar in ch.parse_chord_text(chart)]
    assert [[c.symbol for c in bar] for bar in ch.parse_chord_text(chart2)] == sym


def test_handlers_without_gradio(tmp_path, monkeypatch):
    """The plain handler: track choice, size limit, a chord chart is never a server path."""
    src = make_midi(tmp_path / "band.mid", [(i * 480, 1920, p) for i, p in enumerate([48, 53, 55, 48] * 2)],
                    name="piano", extra_tracks=[("lead", scale_melody(8), False)])
    choices, ranking = melody_tracks(src)
    assert choices[0][1] == "" and choices[0][0].startswith('automatic: track 2 "lead"')
    assert [v for _, v in choices[1:]] == ["2", "1"] and len(ranking.splitlines()) == 2
    models = Models()
    res = harmonize_upload(src, "", Request(mode="parallel", melody_track="1"), models, tmp_path / "w")
    score = symusic.Score(str(res.candidates[0].midi))
    assert sorted(n.pitch for n in score.tracks[0].notes) == sorted([48, 53, 55, 48] * 2)  # track 1 taken
    assert res.chords_file is not None and res.chords_file.read_text() == res.chords_text
    with pytest.raises(HarmonizeError, match="cannot parse chord symbol"):
        harmonize_upload(src, str(res.chords_file), Request(mode="parallel"), models, tmp_path / "w")
    (tmp_path / "notes.txt").write_text("C | G")
    with pytest.raises(HarmonizeError, match=r"^notes.txt: not a melody file"):
        harmonize_upload(tmp_path / "notes.txt", "", Request(mode="parallel"), models, tmp_path / "w")
    old = res.candidates[0].midi.parent
    assert old.is_dir() and prune(tmp_path / "w", max_age_s=3600) == 0
    assert prune(tmp_path / "w", max_age_s=-1) >= 1 and not old.exists()  # outputs do not pile up
    monkeypatch.setattr("stripes.apps.harmonize.safety.MAX_INPUT_BYTES", 100)
    with pytest.raises(HarmonizeError, match=r"^band.mid: file too large"):
        harmonize_upload(src, "", Request(mode="parallel"), models, tmp_path / "w")


def test_cli_serve(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    assert "--port" in out and "127.0.0.1" in out and "[--host" not in out  # 127.0.0.1 only
    assert main(["serve", "--port", "70000"]) == 2
    assert "--port must be between 1 and 65535" in capsys.readouterr().err
    page = srv.served()  # a port in use is one line
    assert main(["serve", "--port", str(page.port), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"stripes: error: cannot serve on 127.0.0.1:{page.port}"), err


def test_missing_app_extra_is_one_line():
    code = ("import sys; sys.modules['gradio'] = None\n"
            "from stripes.cli import main\nsys.exit(main(['serve', '--port', '7999']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "stripes serve needs the app extra: pip install 'stripes[app]' (missing module 'gradio')")


def test_nothing_connects_off_this_machine(harmonized):
    """Everything above (start, page, API calls) opened network connections to this machine only."""
    srv.served()
    assert srv.LOCAL_SEEN, "the audit hook saw no connection at all"
    assert not srv.NONLOCAL, srv.NONLOCAL


def test_the_command_serves_locally_and_cleans_up(tmp_path):
    """`stripes serve` as a user starts it: the page answers on 127.0.0.1, SIGTERM stops it, and the
    folder of its outputs is removed."""
    import os
    import re
    import signal
    import urllib.request

    srv.need_gradio()
    port = srv.free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "stripes", "serve", "--port", str(port), "--quiet"],
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stderr.readline()  # printed once the page is up
        m = re.match(rf"stripes serve: http://127\.0\.0\.1:{port}/ .*outputs in (\S+), removed then\)", line)
        assert m, line
        work_root = Path(m.group(1))
        assert work_root.is_dir()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as r:
            assert r.status == 200 and b"gradio" in r.read().lower()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert not work_root.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_every_event_that_runs_the_model_shares_one_queue(tmp_path):
    """Harmonize, regenerate and the API endpoint wait for each other (gradio queues each event on its own
    unless they share a concurrency group): one harmonization at a time, as docs/harmonize.md says."""
    srv.need_gradio()
    from stripes.apps.serve.page import build_page

    page = build_page(Models(), tmp_path)
    page.queue(default_concurrency_limit=1, max_size=32)  # as server.start
    fns = {f.name: f for f in page.fns.values()}
    model_events = [fns[n] for n in ("on_harmonize", "on_regenerate", "api_harmonize")]
    assert len({f.concurrency_id for f in model_events}) == 1
    assert {f.concurrency_limit for f in model_events} == {1}


def test_prune_keeps_the_folder_of_the_file_being_read(tmp_path: Path):
    """Regenerating a candidate older than the keep time: its folder is not removed under the request."""
    root = tmp_path / "w"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    cand = root / "a" / "song.harmonized.mid"
    cand.write_bytes(b"MThd")
    assert prune(root, max_age_s=-1, keep=cand) == 1
    assert cand.is_file() and not (root / "b").exists()
