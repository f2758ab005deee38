"""The layout rules of docs/architecture.md: no import cycle, small modules, a thin top level, data flowing
one way between packages."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "stripes"
# a package may import only packages to its left (plumbing modules are importable from everywhere)
ORDER = ["data", "metrics", "pe", "attention", "models", "train", "analysis", "experiments", "apps", "cli"]
PLUMBING = {"config", "errors", "fileio", "__init__"}


def _module(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    mods = {_module(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for n in names:
                related = n.startswith(mod + ".") or mod.startswith(n + ".")  # a package and its own modules
                if n in mods and n != mod and not related:
                    graph[mod].add(n)
    return graph


def test_no_import_cycle() -> None:
    graph = _imports()
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                visit(n, stack + [n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_packages_import_only_to_their_left() -> None:
    bad = []
    for mod, deps in _imports().items():
        parts = mod.split(".")
        if len(parts) < 2 or parts[1] in PLUMBING or parts[1] not in ORDER:
            continue
        for d in deps:
            dp = d.split(".")
            if len(dp) < 2 or dp[1] in PLUMBING or dp[1] == parts[1] or dp[1] not in ORDER:
                continue
            if ORDER.index(dp[1]) > ORDER.index(parts[1]):
                bad.append(f"{mod} imports {d}")
    assert not bad, bad


def test_module_sizes_and_top_level() -> None:
    sizes = {str(p.relative_to(SRC)): len(p.read_text().splitlines()) for p in SRC.rglob("*.py")}
    big = {k: n for k, n in sizes.items() if n > 450}
    assert not big, big
    top = {p.stem for p in SRC.glob("*.py")} - {"__init__", "__main__"}
    assert len(top) <= 4, top


def test_committed_run_records_are_not_gitignored() -> None:
    """The run records under docs/results/*/runs/ are committed; .gitignore's `runs/` must not hide them."""
    import shutil
    import subprocess

    import pytest

    root = SRC.parent.parent
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")

    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=root).returncode == 0

    assert not ignored("docs/results/p1-table3-cpu/runs/cpu_x/config.json")
    assert ignored("docs/results/p1-table3-cpu/runs/cpu_x/checkpoints/last.pt")
    assert ignored("runs/quick_x/config.json")
    assert ignored("results/reproduce/cpu/runs/cpu_x/config.json")  # reproduce's default --out
    assert not ignored("docs/results/p2-table1-cpu/report.md")
