"""`stripes data prepare` through the CLI entry point."""

from __future__ import annotations

import json

from stripes.cli import main


def test_prepare_cli(small_root, tmp_path, capsys) -> None:
    root, _ = small_root
    rc = main(["data", "prepare", "--data-root", str(root), "--cache-dir", str(tmp_path), "--bars", "8",
               "--test-bars", "64", "--quiet", "--workers", "1"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "prepared 10 songs" in out
    folder = next(p for p in tmp_path.iterdir() if (p / "manifest.json").is_file())
    m = json.loads((folder / "manifest.json").read_text())
    assert set(m["windows"]["train"]) == {"8"} and set(m["windows"]["test"]) == {"8", "64"}


def test_cli_error_is_one_line(tmp_path, capsys) -> None:
    rc = main(["data", "prepare", "--data-root", str(tmp_path / "none"),
               "--cache-dir", str(tmp_path), "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("stripes: error:") and "not found" in err[0]
