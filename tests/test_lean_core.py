"""A lean core: ``pip install stripes`` needs only torch and numpy; the rest is the ``toolkit`` extra."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLKIT = ("scipy", "matplotlib", "symusic", "tqdm")

# a finder that makes the toolkit modules look uninstalled (torch.hub imports tqdm when it is there and
# falls back when it is not, like in a lean install)
BLOCK = textwrap.dedent(
    f"""
    import sys
    BLOCKED = {TOOLKIT!r}

    class _Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, _Block())
    """
)


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_core_imports_and_runs_without_the_toolkit() -> None:
    code = BLOCK + textwrap.dedent(
        """
        import torch

        import stripes, stripes.pe, stripes.attention, stripes.models, stripes.errors, stripes.config
        from stripes.attention import AttentionLayer
        from stripes.models import build_model
        from stripes.pe import build_pe

        torch.manual_seed(0)
        pe = build_pe("ropepool", head_dim=8, n_heads=2, context_dim=12)
        layer = AttentionLayer(16, 2, pe=pe, attention="linear", feature_map="favor")
        pos = torch.randint(0, 2, (2, 32, 12)).float()
        y = layer(torch.randn(2, 32, 16), pos)
        assert y.shape == (2, 32, 16) and torch.isfinite(y).all()

        model = build_model(stripes.config.load_run_config("smoke"), context_dim=12)
        logits = model(torch.rand(1, 32, 256), pos[:1])
        model.loss(logits, torch.rand_like(logits).round()).backward()

        loaded = sorted({m.split(".")[0] for m in sys.modules} & set(BLOCKED))
        assert not loaded, loaded
        print("ok")
        """
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_missing_extra_is_one_line() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["symusic"] = None  # as if symusic were not installed
        from stripes.cli import main
        sys.exit(main(["data", "prepare", "--data-root", "/nonexistent/stripes-data"]))
        """
    )
    proc = _run(code)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == ("stripes data prepare needs the toolkit extra: pip install 'stripes[toolkit]' "
                           "(missing module 'symusic')\n")


def test_missing_extra_from_a_deeper_import() -> None:
    """Without a require() of its own, a command still gets the one line (caught in stripes.cli.main)."""
    code = BLOCK + textwrap.dedent(
        """
        from stripes.cli import main
        sys.exit(main(["analyze", "toy", "--out", "/nonexistent/stripes-toy"]))
        """
    )
    proc = _run(code)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("stripes analyze toy needs the toolkit extra: pip install 'stripes[toolkit]'")


def test_require_names_the_extra() -> None:
    from stripes._extras import MissingExtraError, require

    assert require("json").__name__ == "json"
    with pytest.raises(MissingExtraError, match=r"stripes\[cluster\]") as info:
        require("stripes_no_such_module_xyz", "cluster")
    assert isinstance(info.value, ModuleNotFoundError)


def test_core_dependencies_are_torch_and_numpy() -> None:
    project = _pyproject()["project"]
    names = sorted(d.split(">")[0].split("=")[0].split("<")[0].strip() for d in project["dependencies"])
    assert names == ["numpy", "torch"]
    extras = project["optional-dependencies"]
    toolkit = {d.split(">")[0] for d in extras["toolkit"]}
    assert {"scipy", "symusic", "tqdm", "matplotlib"} <= toolkit
    for name, deps in extras.items():  # every other extra brings the toolkit (test sets up everything)
        if name != "toolkit":
            assert "stripes[toolkit]" in deps, name


def test_package_is_typed() -> None:
    assert (ROOT / "src" / "stripes" / "py.typed").is_file()
    data = _pyproject()["tool"]["setuptools"]["package-data"]
    assert "py.typed" in data["stripes"]
