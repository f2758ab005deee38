"""The bundled sweep configs parse, name valid PEs / contexts, and match the paper tables."""

from __future__ import annotations

import pytest

import stripes.experiments.sweep as sw
from stripes.analysis.published import P1_BEST_ROPE, P1_TABLE_II, P1_TABLE_III, P2_TABLE_I
from stripes.config import CONTEXT_NAMES
from stripes.experiments.report import context_label, method_label
from stripes.pe import list_pes

BUNDLED = ("p1-table2", "p1-table3", "p2-table1")


def test_bundled_sweeps_are_listed() -> None:
    assert set(BUNDLED) <= set(sw.list_sweeps())


@pytest.mark.parametrize("name", BUNDLED)
@pytest.mark.parametrize("profile", ["quick", "paper"])
def test_bundled_sweep_expands_to_valid_configs(name: str, profile: str) -> None:
    cfg = sw.load_sweep(name)
    specs = sw.expand(cfg, profile)
    assert specs
    for s in specs:
        assert s.pe in list_pes()
        ctxs = [s.context] if isinstance(s.context, str) else s.context
        assert all(c in CONTEXT_NAMES for c in ctxs)
        rc = s.resolve_config()
        # the label in the sweep config is what the report will derive from the resolved config
        assert method_label(rc.to_dict()) == s.label
        assert s.bars == [16, 64]
    seeds = {s.seed for s in specs}
    paper_seeds = 3 if name == "p2-table1" else 5  # P1: 5 seeds, P2: 3 seeds
    if profile == "paper":
        assert seeds == set(range(paper_seeds))
        assert {s.lr for s in specs} == {1e-4, 5e-4, 1e-3}  # docs/papers.md §9.4 LR grid


def _rows(name: str) -> set[tuple[str, str]]:
    return {(context_label(s.resolve_config().to_dict()), s.label) for s in sw.expand(sw.load_sweep(name))}


def test_sweeps_cover_the_published_rows() -> None:
    t2 = _rows("p1-table2")
    assert t2 == set(P1_TABLE_II)
    t3 = _rows("p1-table3")
    assert t3 == set(P1_TABLE_III)
    assert {c: m for c, m in t3 if m.startswith("RoPE(")} == P1_BEST_ROPE
    p2 = {s.label for s in sw.expand(sw.load_sweep("p2-table1"))}
    assert p2 == set(P2_TABLE_I)


def test_p2_sweep_uses_softmax_for_srpe_only() -> None:
    specs = sw.expand(sw.load_sweep("p2-table1"))
    for s in specs:
        assert s.resolve_config().attention == ("softmax" if s.pe == "srpe" else "linear")


def test_tables_share_run_folders() -> None:
    """RoPE(C) on BIN is in Tables II and III: same parameters -> same folder, run once by reproduce."""
    t2 = {s.name for s in sw.expand(sw.load_sweep("p1-table2"))}
    t3 = {s.name for s in sw.expand(sw.load_sweep("p1-table3"))}
    assert len(t2 & t3) == 4 * 3  # 4 best-RoPE rows x 3 quick seeds
