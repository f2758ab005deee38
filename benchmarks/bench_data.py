"""Benchmark: wall time and peak memory of a full `prepare` of all 866 songs (all windows, all labels).

Runs the prepare in a child process into a fresh temporary cache and samples the resident memory of
the whole process tree (the prepare and its worker processes, summed) every 20 ms from /proc.

    python benchmarks/bench_data.py [--data-root DIR] [--workers 2]

Target (issue #2): under 20 s and 2 GiB on 2 cores.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import sys, time
from stripes.data.prepare import prepare
t = time.perf_counter()
prepare(sys.argv[1], sys.argv[2], workers=int(sys.argv[3]), force=True)
print(f"inner {time.perf_counter() - t:.2f}")
"""


def _tree_rss_bytes(pid: int) -> int:
    """Summed VmRSS of `pid` and all its descendants (Linux /proc)."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
            for task in Path(f"/proc/{p}/task").iterdir():
                stack.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=None, help="default: $STRIPES_DATA or ~/.cache/stripes/data")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    from stripes.data import resolve_data_root

    root = str(resolve_data_root(args.data_root))
    with tempfile.TemporaryDirectory(prefix="stripes_bench_data_") as cache:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", CHILD, root, cache, str(args.workers)],
                                stdout=subprocess.PIPE, text=True)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _tree_rss_bytes(proc.pid))
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        out = proc.stdout.read() if proc.stdout else ""
        if proc.returncode != 0:
            sys.exit(f"prepare failed with exit code {proc.returncode}")
        size = sum(f.stat().st_size for f in Path(cache).rglob("*") if f.is_file())
    print(f"data root        : {root}")
    print(f"workers          : {args.workers}")
    print(f"wall (process)   : {wall:.2f} s   ({out.strip()} s inside prepare)")
    print(f"peak RSS (tree)  : {peak / 2**20:.0f} MiB")
    print(f"cache size       : {size / 2**20:.0f} MiB")
    print(f"vs targets       : time {wall / 20:.2f} x of 20 s, memory {peak / 2**31:.2f} x of 2 GiB")


if __name__ == "__main__":
    main()
