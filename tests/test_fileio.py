"""Atomic writes: round trip, readable mode, old file intact and no temporary left on error; the file lock."""

import multiprocessing as mp
import os
import stat
import time

import pytest

from stripes.fileio import atomic_path, atomic_write_bytes, atomic_write_text, file_lock


def test_round_trip_creates_parent(tmp_path):
    p = tmp_path / "a" / "b" / "x.txt"
    atomic_write_text(p, "héllo")
    assert p.read_text(encoding="utf-8") == "héllo"
    atomic_write_bytes(p, b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01"
    assert sorted(os.listdir(p.parent)) == ["x.txt"]


def test_final_mode_follows_umask_not_mkstemp(tmp_path):
    p = tmp_path / "x.bin"
    atomic_write_bytes(p, b"1")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask  # what open() gives; mkstemp alone leaves 0600
    assert stat.S_IMODE(p.stat().st_mode) != 0o600 or umask == 0o066


def test_error_keeps_old_file_and_leaves_no_temporary(tmp_path):
    p = tmp_path / "fig.png"
    p.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(p, suffix=".png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == p.parent
        tmp.write_bytes(b"half")
        raise RuntimeError("writer failed")
    assert p.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["fig.png"]


def _hold_lock(lock, log, held) -> None:
    with file_lock(lock):
        held.set()
        with open(log, "a") as f:
            f.write("a")
        time.sleep(0.3)
        with open(log, "a") as f:
            f.write("b")


@pytest.mark.skipif(os.name == "nt", reason="fork start method")
def test_file_lock_waits_for_the_other_process(tmp_path):
    lock, log = tmp_path / "x.lock", tmp_path / "log.txt"
    ctx = mp.get_context("fork")
    held = ctx.Event()
    child = ctx.Process(target=_hold_lock, args=(lock, log, held))
    child.start()
    assert held.wait(10)
    with file_lock(lock):  # must block until the child has written both letters and released the lock
        assert log.read_text() == "ab"
    child.join(10)
    assert child.exitcode == 0
