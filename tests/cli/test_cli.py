import subprocess
import sys

from stripes.cli import main


def test_help_lists_subcommands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "usage: stripes" in out


def test_module_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "stripes", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert proc.stdout.startswith("stripes ")
