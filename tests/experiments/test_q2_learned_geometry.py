"""What a trained context learner did to the positions (question 2): known values on hand-made learners."""

import pytest
import torch

from stripes.errors import DataError
from stripes.experiments.learned_context import distinct_positions, learner_geometry, main
from stripes.models.context_learner import ChordEmbedding, LinearContext


def _chromas() -> torch.Tensor:
    c = torch.zeros(6, 12)
    for i, notes in enumerate([(0, 4, 7), (9, 0, 4), (7, 11, 2), (5, 9, 0), (2, 5, 9), (4, 7, 11)]):
        c[i, list(notes)] = 1.0
    return c


def test_distinct_positions_counts_each_row_once_with_its_share():
    c = _chromas()
    pos = torch.cat([c[:1].repeat(3, 1), c[1:2]])
    uniq, w = distinct_positions(pos)
    assert uniq.shape == (2, 12)
    assert sorted(w.tolist()) == [0.25, 0.75]
    with pytest.raises(DataError, match="shape"):
        distinct_positions(torch.zeros(0, 12))


def test_identity_learner_has_not_moved_and_keeps_the_geometry():
    uniq, w = distinct_positions(_chromas())
    g = learner_geometry(LinearContext(12), uniq, w)
    assert g["relative_move"] == pytest.approx(0.0, abs=1e-7)
    assert g["distance_rank_corr"] == pytest.approx(1.0)
    assert g["n_positions"] == 6


def test_scaling_moves_by_the_factor_and_keeps_the_order_of_distances():
    lin = LinearContext(12)
    with torch.no_grad():
        lin.proj.weight.mul_(3.0)
    uniq, w = distinct_positions(_chromas())
    g = learner_geometry(lin, uniq, w)
    assert g["relative_move"] == pytest.approx(2.0, rel=1e-6)
    assert g["distance_rank_corr"] == pytest.approx(1.0)


def test_chord_embedding_move_is_the_weighted_norm_of_the_rows_it_learned():
    emb = ChordEmbedding(12)
    c = _chromas()
    pos = torch.cat([c[:1].repeat(3, 1), c[1:]])  # C major carries 3 of 8 ticks
    uniq, w = distinct_positions(pos)
    with torch.no_grad():
        emb.table.weight[emb.index(c[:1])[0]] = torch.full((12,), 0.5)  # |delta| = sqrt(3)
    g = learner_geometry(emb, uniq, w)
    assert g["relative_move"] == pytest.approx((3 / 8) * 3 ** 0.5 / 3 ** 0.5, rel=1e-6)
    assert g["distance_rank_corr"] < 1.0  # one chord moved away from the others, relative to its neighbours


def test_main_names_the_folder_without_runs(tmp_path):
    with pytest.raises(DataError, match="no run with a context learner"):
        main([str(tmp_path), "--out", str(tmp_path / "g.json")])
    with pytest.raises(DataError, match="no such folder"):
        main([str(tmp_path / "missing"), "--out", str(tmp_path / "g.json")])
    assert not (tmp_path / "g.json").exists()
