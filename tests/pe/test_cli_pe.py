"""``stripes pe list``."""

from __future__ import annotations

from stripes.cli import main
from stripes.pe import list_pes


def test_pe_list_prints_every_name_with_its_description(capsys):
    assert main(["pe", "list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(list_pes())
    for line, (name, description) in zip(lines, list_pes().items()):
        assert line.split()[0] == name and line.endswith(description)
