"""``stripes pe list``: one block per PE, name filter, aliases, errors."""

from __future__ import annotations

from stripes.cli import main
from stripes.pe import list_pes


def _blocks(out: str) -> dict[str, str]:
    """Block header name → block text (blocks are separated by blank lines, headers are 'name — title')."""
    blocks = {}
    for chunk in out.strip().split("\n\n"):
        head = chunk.splitlines()[0]
        if " — " in head:
            blocks[head.split(" — ")[0]] = chunk
    return blocks


def test_pe_list_prints_one_block_per_pe_with_its_description(capsys):
    assert main(["pe", "list"]) == 0
    blocks = _blocks(capsys.readouterr().out)
    assert list(blocks) == list(list_pes())
    for name, description in list_pes().items():
        flat = " ".join(line.strip() for line in blocks[name].splitlines())
        assert " ".join(description.split()) in flat


def test_pe_list_filters_by_name_and_resolves_aliases(capsys):
    assert main(["pe", "list", "ropepool", "rope_a"]) == 0
    out = capsys.readouterr().out
    assert list(_blocks(out)) == ["ropepool", "rope"]
    assert not out.startswith("10 positional encodings")  # the header comes with the full listing only


def test_pe_list_unknown_name_is_an_error(capsys):
    assert main(["pe", "list", "nosuchpe"]) == 2
    err = capsys.readouterr().err
    assert "nosuchpe" in err and "ropepool" in err
