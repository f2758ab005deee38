"""The PE catalog (``stripes.pe.catalog``, ``stripes pe list``) and the repository's own paper reference.

- every registered PE has an entry, with option defaults equal to the constructor's and documented options;
- the catalog's out_dim formula agrees with built modules;
- ``stripes pe list`` names every PE, its kind and its equations and says that ``rope`` is variant C;
- docs/, README.md and src/ cite docs/papers.md (existing sections), never the outside notes, and docs/ and
  README.md link nowhere outside the repository.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest

from stripes.cli import main
from stripes.pe import build_pe, list_pes
from stripes.pe.catalog import KINDS, STRUCTURAL, catalog, expected_out_dim, parameter_docs

REPO = Path(__file__).resolve().parents[2]
CAT = catalog()


def test_every_registered_pe_has_a_catalog_entry():
    assert list(CAT) == list(list_pes())
    for name, info in CAT.items():
        assert info.kind in KINDS, name
        assert info.attention in ("linear and softmax", "softmax only", "input (any attention)"), name
        assert info.paper and info.equations and info.out_dim and info.docs, name
        assert info.description == list_pes()[name]


def test_kinds_match_the_modules():
    for name, info in CAT.items():
        kind = build_pe(name, head_dim=8, n_heads=2, d_model=16).kind
        expected = {"input-level": "input", "softmax logit bias": "bias"}.get(info.kind, "qk")
        assert kind == expected, name
    assert CAT["srpe"].attention == "softmax only"
    assert CAT["nope"].kind == "none" and CAT["rope"].kind == "q/k rotation"


@pytest.mark.parametrize("name", list(CAT))
def test_option_defaults_are_the_constructors_and_documented(name):
    info = CAT[name]
    params = inspect.signature(info.cls.__init__).parameters
    expected = {p: v.default for p, v in params.items() if p not in STRUCTURAL}
    assert {o.name: o.default for o in info.options} == expected
    for opt in info.options:
        assert len(opt.help) > 10, f"{name}.{opt.name} is not documented in the class docstring"
    # the class docstring documents the sizes too (help() shows meaning and defaults)
    documented = parameter_docs(info.cls)
    sizes = [p for p in ("head_dim", "n_heads", "context_dim", "d_model") if p in params]
    assert all(documented.get(p) for p in sizes), (name, sorted(documented))


def test_ropepool_help_shows_its_parameters():
    from stripes.pe import RoPEPool

    doc = inspect.getdoc(RoPEPool)
    for text in ("Parameters", "head_dim : int", "n_heads : int", "context_dim : int, default 1",
                 "base : float, default 10000.0", "(B, T, H, D/2)"):
        assert text in doc


def test_rope_is_variant_c_everywhere():
    rope = CAT["rope"]
    assert "variant C" in rope.note and "rope_a" in rope.note
    assert set(rope.aliases) == {"rope_a", "rope_b", "rope_c"}
    assert {o.name: o.default for o in rope.options}["variant"] == "C"
    assert build_pe("rope", head_dim=8, n_heads=2).variant == "C"
    assert build_pe("rope_a", head_dim=8, n_heads=2).variant == "A"
    assert "variant C" in inspect.getdoc(rope.cls) and "rope_a" in inspect.getdoc(rope.cls)
    assert "rope_a" in rope.description
    assert "variant C" in (REPO / "docs" / "pe.md").read_text()
    readme = (REPO / "README.md").read_text()
    assert "variant C" in readme and "rope_a" in readme and "1/sqrt(head_dim)" in readme


@pytest.mark.parametrize(
    "name, options",
    [("nope", {}), ("rope", {}), ("rope", {"variant": "A"}), ("ropepool", {}), ("fstripe1", {}),
     ("fstripe1", {"pooled": False}), ("fstripe", {"n_sines": 3}),
     ("fstripe", {"n_sines": 3, "pooled": False}), ("fstripe_sff", {"n_realizations": 6}), ("spe", {})],
)
def test_out_dim_formula_matches_the_module(name, options):
    pe = build_pe(name, head_dim=8, n_heads=2, **options)
    assert expected_out_dim(name, 8, **options) == pe.out_dim


def test_cli_lists_every_pe_with_kind_equations_and_rope_variant_c(capsys):
    assert main(["pe", "list"]) == 0
    out = capsys.readouterr().out
    flat = " ".join(out.split())
    for name, info in CAT.items():
        assert f"{name} — " in out
        assert f"kind {info.kind}" in flat, name
        assert f"equations {info.equations}" in flat, name
        for opt in info.options:
            assert f"{opt.name}" in out and repr(opt.default) in out, (name, opt.name)
    assert 'build_pe("rope") is variant C' in flat
    rope_block = out.split("\nrope — ")[1].split("\n\n")[0]
    assert "variant C" in rope_block and "rope_a" in rope_block
    assert "P1 eq. (23)" in flat or "P1 eq. (22)-(23)" in flat


def test_cli_json_parses(capsys):
    assert main(["pe", "list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["name"] for d in data] == list(CAT)
    by_name = {d["name"]: d for d in data}
    first = by_name["rope"]["options"][0]
    assert (first["name"], first["default"]) == ("variant", "C")
    assert by_name["srpe"]["attention"] == "softmax only"
    assert all({"kind", "attention", "paper", "equations", "out_dim", "constraints", "options"} <= set(d)
               for d in data)


# --- the repository's own paper reference ------------------------------------------------------------

def _text_files() -> list[Path]:
    files = [REPO / "README.md"]
    for top in ("docs", "src"):
        for p in (REPO / top).rglob("*"):
            if not p.is_file() or p.suffix not in (".md", ".py", ".json", ".csv", ".txt", ".toml", ".yaml"):
                continue
            if "runs" in p.relative_to(REPO).parts:  # committed run records
                continue
            files.append(p)
    return files


def test_no_file_cites_the_outside_notes():
    bad = []
    for p in _text_files():
        text = p.read_text(encoding="utf-8", errors="replace")
        for needle in ("shared/docs", "reference/papers.md", "music-data.md", "prior-code.md"):
            if needle in text:
                bad.append(f"{p.relative_to(REPO)}: {needle}")
        # every papers.md citation is of docs/papers.md
        for m in re.finditer(r"(\S*)papers\.md", text):
            if not (m.group(1).endswith("docs/") or m.group(1).endswith("](") or m.group(1).endswith("[docs/")
                    or p == REPO / "docs" / "papers.md"):
                bad.append(f"{p.relative_to(REPO)}: {m.group(0)}")
    assert not bad, bad


def test_papers_md_citations_name_existing_sections():
    reference = (REPO / "docs" / "papers.md").read_text()
    sections = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)[. ]", reference, flags=re.M))
    assert {str(n) for n in range(1, 14)} <= sections
    cited = []
    for p in _text_files():
        text = p.read_text(encoding="utf-8", errors="replace")
        for m in re.finditer(r"papers\.md(?:\]\([^)]*\))?\s+§(\d+(?:\.\d+)?)", text):
            cited.append((p.relative_to(REPO), m.group(1)))
    assert len(cited) > 30
    missing = [(str(p), s) for p, s in cited if s not in sections]
    assert not missing, missing


def _strip_code(markdown: str) -> str:
    no_blocks = re.sub(r"```.*?```", "", markdown, flags=re.S)
    return re.sub(r"`[^`\n]*`", "", no_blocks)


def test_docs_and_readme_link_nowhere_outside_the_repository():
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    pages = [p for p in pages if "runs" not in p.relative_to(REPO).parts]
    bad = []
    for page in pages:
        prose = _strip_code(page.read_text())
        bad += [f"{page.relative_to(REPO)}: {u}" for u in re.findall(r"https?://\S+", prose)]
        for target in re.findall(r"\]\(([^)\s#]+)", prose):
            resolved = (page.parent / target).resolve()
            if not resolved.is_relative_to(REPO):
                bad.append(f"{page.relative_to(REPO)}: {target}")
    assert not bad, bad
