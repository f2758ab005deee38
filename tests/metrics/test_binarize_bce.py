"""Binarization (threshold, threshold + merge) and the BCE helpers."""

import math

import numpy as np
import pytest
import torch

from stripes.errors import DataError
from stripes.metrics import bce_logits_mean, bce_logits_per_position, binarize, fill_gaps


def merge_reference(y: np.ndarray, s: int) -> np.ndarray:
    """Loop oracle: per pitch, fill between consecutive active ticks separated by <= s empty ticks."""
    out = y.copy()
    for p in range(y.shape[1]):
        idx = np.nonzero(y[:, p])[0]
        for a, b in zip(idx[:-1], idx[1:], strict=True):
            if b - a - 1 <= s:
                out[a:b, p] = True
    return out


def test_threshold_is_inclusive():
    probs = np.full((4, 128), 0.3)
    probs[1, 5] = 0.5
    probs[2, 7] = 0.49
    y = binarize(probs, 0.5)
    assert y.dtype == bool
    assert np.argwhere(y).tolist() == [[1, 5]]


def test_merge_known_row():
    row = np.array([0, 1, 0, 0, 1, 0, 0, 0, 1, 0], dtype=bool)[:, None].repeat(128, axis=1)
    assert fill_gaps(row, 2)[:, 0].astype(int).tolist() == [0, 1, 1, 1, 1, 0, 0, 0, 1, 0]
    assert fill_gaps(row, 3)[:, 0].astype(int).tolist() == [0, 1, 1, 1, 1, 1, 1, 1, 1, 0]
    assert fill_gaps(row, 0)[:, 0].tolist() == row[:, 0].tolist()


def test_merge_matches_loop_oracle_and_batches():
    rng = np.random.default_rng(0)
    probs = rng.random((3, 64, 128))
    for s in (1, 2, 4, 8):
        y = binarize(probs, 0.8, merge=s)
        for b in range(3):
            assert np.array_equal(y[b], merge_reference(probs[b] >= 0.8, s))
            assert np.array_equal(binarize(probs[b], 0.8, merge=s), y[b])


def test_binarize_rejects_bad_input():
    with pytest.raises(DataError):
        binarize(np.zeros(5), 0.5)
    with pytest.raises(DataError):
        binarize(np.zeros((4, 128)), 1.5)
    with pytest.raises(DataError):
        binarize(np.full((4, 128), np.nan), 0.5)
    with pytest.raises(DataError):
        fill_gaps(np.zeros((4, 128), bool), -1)


def test_bce_known_values_and_torch_agreement():
    zero = np.zeros((8, 128))  # logit 0 = probability 0.5
    y = np.zeros((8, 128))
    assert bce_logits_mean(zero, y) == pytest.approx(np.log(2))
    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.99, (2, 16, 128))
    t = (rng.random((2, 16, 128)) < 0.1).astype(float)
    ref = -(t * np.log(p) + (1 - t) * np.log1p(-p)).mean()  # the textbook formula on probabilities
    assert bce_logits_mean(np.log(p / (1 - p)), t) == pytest.approx(ref, rel=1e-9)
    # float32 logits of large magnitude stay finite (log-sum-exp form)
    big = torch.tensor([[80.0, -80.0]])
    assert math.isfinite(bce_logits_mean(big, torch.tensor([[0.0, 1.0]])))
    assert bce_logits_mean(big, torch.tensor([[1.0, 0.0]])) < 1e-6


def test_bce_per_position_shape_and_consistency():
    rng = np.random.default_rng(1)
    lg = rng.normal(0, 2, (3, 20, 128))
    t = (rng.random((3, 20, 128)) < 0.2).astype(float)
    per = bce_logits_per_position(lg, t)
    assert per.shape == (20,)
    assert per.mean() == pytest.approx(bce_logits_mean(lg, t))
    # a confident correct prediction at one position only lowers that position
    lg2 = lg.copy()
    lg2[:, 5] = np.where(t[:, 5] > 0, 40.0, -40.0)
    per2 = bce_logits_per_position(lg2, t)
    assert per2[5] < 1e-5 and np.allclose(np.delete(per2, 5), np.delete(per, 5))
    assert bce_logits_per_position(lg[0], t[0]).shape == (20,)
    with pytest.raises(DataError):
        bce_logits_mean(lg, t[:, :10])
