"""Input limits: a zip bomb disguised as compressed MusicXML is refused before it is inflated; inputs over the
size limit are refused; progress bars stay quiet when stderr is not a terminal."""

from __future__ import annotations

import io
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from stripes.apps.harmonize import Options, harmonize_files, safety
from stripes.apps.harmonize.errors import HarmonizeError
from stripes.cli import main

from .conftest import make_midi, scale_melody

CONTAINER = (
    '<?xml version="1.0" encoding="UTF-8"?><container><rootfiles>'
    '<rootfile full-path="score.musicxml"/></rootfiles></container>'
)


def _zip_of_zeros(path: Path, megabytes: int) -> Path:
    """A .mxl whose score.musicxml is ``megabytes`` MB of zeros (compressed ~1000x), streamed in 1 MB
    chunks so the test itself never holds it in memory."""
    chunk = bytes(2**20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("META-INF/container.xml", CONTAINER)
        with zf.open("score.musicxml", "w", force_zip64=True) as f:
            for _ in range(megabytes):
                f.write(chunk)
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    return _zip_of_zeros(tmp_path_factory.mktemp("bomb") / "bomb.mxl", 200)


def test_zip_bomb_refused_before_inflating(bomb: Path, echo_model) -> None:
    assert bomb.stat().st_size < 2 * 2**20  # 200 MB of zeros in a small file
    tracemalloc.start()
    t = time.perf_counter()
    (res,) = harmonize_files([bomb], Options(out_dir=bomb.parent / "out", png=False), log=lambda m: None,
                             loaded=echo_model)
    seconds = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert res.error is not None and str(bomb) in res.error and "refused" in res.error
    assert "would expand to 209.7 MB" in res.error and "not decompressed" in res.error
    assert seconds < 1.0 and peak < 5 * 2**20, (seconds, peak)


def test_zip_bomb_refused_by_the_cli(bomb: Path, smoke_model_file: Path, capsys) -> None:
    rc = main(["harmonize", str(bomb), "--out", str(bomb.parent / "o"), "--checkpoint", str(smoke_model_file),
               "--no-png"])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("stripes: error:")]
    assert rc == 2 and len(err) == 1 and "bomb.mxl: refused" in err[0]


def test_high_ratio_member_refused(tmp_path: Path) -> None:
    small = _zip_of_zeros(tmp_path / "ratio.mxl", 5)  # 5 MB: under the total limit, ratio ~1000
    with pytest.raises(HarmonizeError, match=r"ratio.mxl: refused: member 'score.musicxml' would expand"):
        safety.check_input_file(small)
    # a zip with any suffix is checked; a normal archive passes
    ok = tmp_path / "ok.xml"
    with zipfile.ZipFile(ok, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("META-INF/container.xml", CONTAINER)
        zf.writestr("score.musicxml", "<score-partwise/>" * 1000)
    assert safety.check_input_file(ok) > 0
    bad = tmp_path / "bad.mxl"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(HarmonizeError, match="bad.mxl: not a valid compressed MusicXML"):
        safety.check_input_file(bad)


def test_input_size_limit(tmp_path: Path, echo_model, monkeypatch) -> None:
    src = make_midi(tmp_path / "m.mid", scale_melody(8))
    chords = tmp_path / "c.txt"
    chords.write_text("C | G\n" * 100)
    assert safety.MAX_INPUT_BYTES == 20 * 2**20
    monkeypatch.setattr(safety, "MAX_INPUT_BYTES", 120)
    (res,) = harmonize_files([src], Options(out_dir=tmp_path / "o", png=False), log=lambda m: None,
                             loaded=echo_model)
    assert res.error and str(src) in res.error and "file too large" in res.error and "0.0 MB" in res.error
    monkeypatch.setattr(safety, "MAX_INPUT_BYTES", 400)
    (res,) = harmonize_files([src], Options(out_dir=tmp_path / "o", png=False, chords=str(chords)),
                             log=lambda m: None, loaded=echo_model)
    assert res.error and f"--chords {chords}: file too large" in res.error


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _tiny_config():
    from stripes.config import load_run_config

    return load_run_config("smoke", overrides={
        "data.source": "synthetic", "data.synthetic_windows": 8, "data.bars": 2, "train.epochs": 2,
        "train.max_len": 48, "train.max_val_windows": 2, "eval.max_val_windows": 2,
        "eval.max_test_windows": 3,
    })


def test_training_progress_quiet_when_not_a_tty(tmp_path: Path, capfd, monkeypatch) -> None:
    """Logs (stderr not a terminal): one line per epoch, no carriage-return progress lines."""
    pytest.importorskip("tqdm")
    from stripes.train.loop import train

    train(_tiny_config(), tmp_path / "run", progress=True)
    out, err = capfd.readouterr()
    assert "\r" not in out + err
    epochs = [ln.split(":")[0] for ln in out.splitlines() if ln.startswith("epoch ")]
    assert epochs == ["epoch 1/2", "epoch 2/2"]
    # the same loop on a terminal draws a bar (so the check above is not vacuous)
    tty = _Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    train(_tiny_config(), tmp_path / "run2", progress=True)
    assert "\r" in tty.getvalue()


def test_evaluate_progress_quiet_when_not_a_tty(monkeypatch) -> None:
    pytest.importorskip("tqdm")
    from stripes.experiments.evaluate import _progress

    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stderr", pipe)
    bar = _progress(50, "evaluate", True)
    for _ in range(50):
        bar.update()
    bar.close()
    assert pipe.getvalue() == ""
    tty = _Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    bar = _progress(50, "evaluate", True)
    bar.update()
    bar.close()
    assert "\r" in tty.getvalue()
    assert _progress(5, "x", False) is None  # --no-progress
