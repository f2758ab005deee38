"""Progress bars of `stripes data fetch` / `prepare` stay silent when stderr is not a terminal (logs, CI)."""

from __future__ import annotations

import io
import sys

import pytest

pytest.importorskip("tqdm")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _prepare_bar(monkeypatch: pytest.MonkeyPatch) -> list:
    from stripes.data import prepare

    monkeypatch.setattr(prepare, "_worker", lambda job: (job[1], None, None))
    return list(prepare._iter_results([("root", i, 0) for i in range(5)], workers=1, progress=True))


def test_prepare_bar_is_silent_without_a_terminal(monkeypatch, capsys) -> None:
    assert [r[0] for r in _prepare_bar(monkeypatch)] == [0, 1, 2, 3, 4]
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_prepare_bar_shows_on_a_terminal(monkeypatch) -> None:
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    _prepare_bar(monkeypatch)
    assert "prepare" in term.getvalue() and "5/5" in term.getvalue()


def test_fetch_bar_is_silent_without_a_terminal(tmp_path, monkeypatch, capsys) -> None:
    from stripes.data.fetch import _get

    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"x" * 300_000)  # several 64 KiB blocks, so several updates
    assert _get(blob.as_uri(), "blob", progress=True) == blob.read_bytes()
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    _get(blob.as_uri(), "blob", progress=True)
    assert "blob" in term.getvalue()
    quiet = _Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    _get(blob.as_uri(), "blob", progress=False)  # --quiet: no bar even on a terminal
    assert quiet.getvalue() == ""
