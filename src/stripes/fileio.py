"""Atomic file writes: temporary file in the target folder, fsync, os.replace (never half-written).

Temporary files made by :func:`tempfile.mkstemp` are private (mode 0600); the final file gets the mode a
plain ``open(path, "w")`` would give (0666 minus the umask), so outputs stay readable by others.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _read_umask() -> int:
    umask = os.umask(0)  # the only portable way to read it; done once, at import, before any thread starts
    os.umask(umask)
    return umask


_UMASK = _read_umask()


@contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error it becomes ``path``.

    For writers that want a file name (``fig.savefig(tmp)``, ``score.dump_midi(tmp)``). ``suffix`` lets
    writers that infer the format from the name see the right extension. On error the temporary file is
    removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (creates the parent folder)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def file_lock(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold an exclusive inter-process lock on ``path`` (created if missing) for the block.

    Used where several processes may build the same cache at once (``stripes reproduce --jobs 2`` starts
    two workers on a fresh machine): the second waits, then finds the first one's result. POSIX
    ``flock`` / Windows ``msvcrt.locking``; the lock is released when the block ends or the process dies.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as f:
        if os.name == "nt":  # pragma: no cover - exercised on Windows only
            import msvcrt

            f.seek(0)
            while True:
                try:
                    msvcrt.locking(f.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:  # LK_LOCK gives up after ~10 s; keep waiting
                    continue
            try:
                yield path
            finally:
                f.seek(0)
                msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield path
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
