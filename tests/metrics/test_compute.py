"""The evaluation entry point compute_metrics and its batched form."""

import numpy as np
import pytest

from stripes.errors import DataError
from stripes.metrics import METRIC_KEYS, compute_metrics, compute_metrics_batch, compute_variants


def window(seed: int, t: int = 256) -> np.ndarray:
    rng = np.random.default_rng(seed)
    r = np.zeros((t, 128), dtype=bool)
    for _ in range(30):
        a = int(rng.integers(0, t - 2))
        r[a : min(t - 1, a + int(rng.integers(1, 20))), int(rng.integers(36, 84))] = True
    return r


def test_keys_and_identical_window():
    r = window(0)
    r[::32, 60] = True  # an onset in every half-measure
    m = compute_metrics(r, r)
    assert tuple(m) == METRIC_KEYS
    assert all(isinstance(v, float) for v in m.values())
    assert m["cs"] == pytest.approx(100.0) and m["gs"] == 100.0
    assert m["ssmd"] == 0.0 and m["ndd"] == 0.0
    assert m["frame_f1"] == 1.0 and m["onset_f1"] == 1.0


def test_over_prediction_punished_by_f1_not_ndd():
    t = window(1)
    over = t | window(2)
    m = compute_metrics(over, t)
    assert m["ndd"] == 0.0 and m["frame_r"] == 1.0
    assert m["frame_p"] < 1.0 and m["frame_f1"] < 1.0 and m["onset_p"] < 1.0


def test_batch_is_mean_of_windows_and_independent_of_batch_size():
    p = np.stack([window(3), window(4)])
    t = np.stack([window(5), window(6)])
    singles = [compute_metrics(p[i], t[i]) for i in range(2)]
    both = compute_metrics_batch(p, t)
    for k in METRIC_KEYS:
        assert both[k] == pytest.approx((singles[0][k] + singles[1][k]) / 2)
    rep = compute_metrics_batch(np.repeat(p[:1], 5, axis=0), np.repeat(t[:1], 5, axis=0))
    assert rep == pytest.approx(singles[0])


def test_ssmd_scale_option_and_variants():
    p, t = window(7), window(8)
    assert compute_metrics(p, t, ssmd_scale=100.0)["ssmd"] == pytest.approx(2 * compute_metrics(p, t)["ssmd"])
    v = compute_variants(p, t)
    assert v["ssmd_x100"] == pytest.approx(2 * compute_metrics(p, t)["ssmd"])
    assert set(v) >= {"p3_ssmd", "p3_groove", "p3_nd", "ndd_ratio"}


def test_shape_checks():
    with pytest.raises(DataError):
        compute_metrics(np.zeros((16, 64), bool), np.zeros((16, 64), bool))
    with pytest.raises(DataError):
        compute_metrics_batch(np.zeros((16, 128), bool), np.zeros((16, 128), bool))
