"""Toy kernel study (P1 §III-E): asymmetry numbers, outputs, and agreement with the PE modules."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from stripes.analysis.toy import TOY_KERNELS, asymmetry, make_toy_data, run_toy_study
from stripes.pe import build_pe


@pytest.mark.parametrize("seed", [0, 3])
def test_asymmetry_zero_for_rope_and_fstripe1_not_for_ropepool(tmp_path, seed):
    result = run_toy_study(tmp_path, seed=seed)
    asym = result["asymmetry"]
    assert asym["rope"] < 1e-12 and asym["fstripe1"] < 1e-12
    assert asym["ropepool"] > 0.1
    assert json.loads((tmp_path / "toy_summary.json").read_text()) == json.loads(json.dumps(result))


def test_outputs_written(tmp_path):
    out = tmp_path / "toy"
    result = run_toy_study(out, seed=1)
    for key in ("heatmaps", "data"):
        assert (out / f"toy_{key}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    arrays = np.load(out / "toy_arrays.npz")
    assert arrays["f"].shape == (41,) and arrays["f"][0] == 0 and arrays["f"][-1] == 1
    for name in ("rope", "fstripe1", "ropepool"):
        raw, norm = arrays[f"{name}_raw"], arrays[f"{name}_norm"]
        assert raw.shape == norm.shape == (41, result["n_keys"])
        # one normalisation over the whole map (not per row): an affine map of the raw scores onto [0, 1]
        assert norm.min() == 0 and norm.max() == 1
        np.testing.assert_allclose(norm, (raw - raw.min()) / (raw.max() - raw.min()))
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["toy_heatmaps.png", "toy_data.png", "toy_arrays.npz", "toy_summary.json"]
    )
    # the maps share their f = 0 row up to scale: RoPE and F-StrIPE₁ both reduce to cos(ψ_q − ψ_k)
    np.testing.assert_allclose(arrays["rope_raw"][0], arrays["fstripe1_raw"][0])


def test_toy_data_recipe():
    data = make_toy_data(seed=0)
    np.testing.assert_allclose(data["centres"], np.arange(1, 6) * math.pi / 6)
    assert len(data["psi"]) == 25 and np.all(np.diff(data["psi"]) <= 0)  # keys in descending ψ
    q = data["query"]
    assert data["context"][q] == 2
    middle = np.sort(data["psi"][data["context"] == 2])
    assert data["psi"][q] == middle[2]


def test_asymmetry_measure_on_known_kernels():
    psi = np.array([0.1, 0.5, 1.0])
    xi = np.array([0.3, 0.3, 1.2])
    f = np.linspace(0, 1, 5)
    assert asymmetry(TOY_KERNELS["rope"], 0.4, 0.6, psi, xi, f) < 1e-12
    # a kernel that depends on the key only is asymmetric unless keys are mirror images
    key_only = lambda pq, xq, pk, xk, ff: np.cos(pk)[None, :] + 0 * ff[:, None]  # noqa: E731
    assert asymmetry(key_only, 0.4, 0.6, psi, xi, f) > 0.05


@pytest.mark.parametrize("name", ["rope", "fstripe1", "ropepool"])
def test_toy_equations_match_the_pe_modules(name):
    """Eq. (24)–(26) are the modules' scores for D = 2, unit q, k at angles ψ and positions ξ."""
    psi_q, xi_q, f = 0.9, 1.3, 0.6
    psi_k = np.array([0.2, 1.1, 2.5])
    xi_k = np.array([0.5, 1.3, 2.1])
    pe = build_pe(name, head_dim=2, n_heads=1, **({"pooled": False} if name == "fstripe1" else {})).double()
    with torch.no_grad():
        pe.freqs.fill_(f)
    unit = lambda a: torch.tensor(np.stack([np.cos(a), np.sin(a)], -1), dtype=torch.float64)  # noqa: E731
    q = unit(np.array([psi_q])).reshape(1, 1, 1, 2)
    k = unit(psi_k).reshape(1, 3, 1, 2)
    pos_q = torch.tensor([[[xi_q]]], dtype=torch.float64)
    pos_k = torch.tensor(xi_k, dtype=torch.float64).reshape(1, 3, 1)
    scores = pe.scores(q, k, pos_q, pos_k)[0, 0, 0].detach().numpy()
    toy = TOY_KERNELS[name](psi_q, xi_q, psi_k, xi_k, np.array([f]))[0]
    np.testing.assert_allclose(scores, toy, rtol=1e-12, atol=1e-12)
