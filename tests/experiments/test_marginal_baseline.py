"""The floor of question 4: a constant per-pitch marginal, known values and the real data's shape."""

import json
import math

import numpy as np
import pytest

from stripes.experiments.marginal_baseline import EPS, main, marginal_bce, pitch_frequencies


def test_frequencies_and_bce_known_values():
    a = np.zeros((4, 3))
    a[:2, 0] = 1  # pitch 0 sounds on half the ticks, pitch 1 always, pitch 2 never
    a[:, 1] = 1
    p = pitch_frequencies([a[:1], a[1:]])  # split over two windows: counts add
    assert p.tolist() == pytest.approx([0.5, 1 - EPS, EPS])
    # on its own training data the marginal scores the mean binary entropy per cell: ln 2 for pitch 0,
    # ~0 for the constant pitches -> ln 2 / 3
    assert marginal_bce(p, [a]) == pytest.approx(math.log(2) / 3, rel=1e-5)
    # a pitch never heard in training that sounds at test costs -ln EPS per cell, not infinity
    b = np.zeros((1, 3))
    b[0, 2] = 1
    assert marginal_bce(p, [b]) == pytest.approx((math.log(2) - math.log(EPS) - math.log(EPS)) / 3, rel=1e-5)
    # the best constant: any other p scores worse on the training data
    assert marginal_bce(np.clip(p + 0.1, EPS, 1 - EPS), [a]) > marginal_bce(p, [a])
    with pytest.raises(ValueError, match="no rolls"):
        pitch_frequencies([])


def test_cli_on_the_tiny_dataset(tiny_root, tmp_path):  # noqa: ANN001
    out = tmp_path / "m.json"
    assert main(["--out", str(out), "--data-root", str(tiny_root), "--cache-dir", str(tmp_path / "c")]) == 0
    rows = json.loads(out.read_text())
    assert [r["task"] for r in rows] == ["harmonization", "melody"]
    for r in rows:
        assert 0 < r["valid_bce"] < 1 and 0 < r["test_bce"] < 1 and r["train_windows"] > 0
