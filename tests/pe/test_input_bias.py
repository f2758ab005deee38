"""Input-level APE / S-APE and the S-RPE bias."""

from __future__ import annotations

import math

import pytest
import torch
from pe_helpers import rand_pos

from stripes.errors import ConfigError, DataError
from stripes.pe import build_pe


def test_ape_is_textbook_sinusoid_of_the_index():
    pe = build_pe("ape", head_dim=4, n_heads=2, d_model=6)
    pos = rand_pos(b=2, t=5, dtype=torch.float32)
    out = pe.embed(pos)
    assert out.shape == (2, 5, 6) and pe.kind == "input"
    for t in range(5):
        for i in range(3):
            w = 1 / 10000 ** (2 * i / 6)
            assert out[1, t, 2 * i].item() == pytest.approx(math.sin(t * w), abs=1e-6)
            assert out[1, t, 2 * i + 1].item() == pytest.approx(math.cos(t * w), abs=1e-6)
    torch.testing.assert_close(pe.embed(pos * 3), out)  # label values are ignored


def p3_sin(x: float, d: int, base: float) -> list[float]:
    """[C3] create_angles written out: ω_j = base^(−2⌊(j+1)/2⌋/d), sin for even j, cos for odd j."""
    out = []
    for j in range(d):
        w = base ** (-2 * ((j + 1) // 2) / d)
        out.append(math.sin(x * w) if j % 2 == 0 else math.cos(x * w))
    return out


def test_sape_sums_p3_sinusoids_of_each_label():
    pe = build_pe("sape", head_dim=4, n_heads=2, d_model=8, context_dim=2, bases=[100.0, 500.0])
    pos = torch.tensor([[[3.0, 1.0], [7.0, 2.0]]], dtype=torch.float64)
    out = pe.embed(pos)
    assert out.shape == (1, 2, 8) and out.dtype == torch.float64
    for t in range(2):
        expected = [
            a + b
            for a, b in zip(p3_sin(pos[0, t, 0].item(), 8, 100.0), p3_sin(pos[0, t, 1].item(), 8, 500.0))
        ]
        torch.testing.assert_close(out[0, t], torch.tensor(expected, dtype=torch.float64))
    default = build_pe("sape", head_dim=4, n_heads=2, d_model=8, context_dim=5)
    assert default.omegas.shape == (5, 8) and default.bases == (7920.0, 9919.0, 10001.0, 11339.0, 7920.0)
    with pytest.raises(ConfigError, match="bases"):
        build_pe("sape", head_dim=4, n_heads=2, d_model=8, context_dim=2, bases=[100.0])
    with pytest.raises(DataError):
        pe.embed(torch.zeros(1, 3, 3))


def naive_srpe(pe, pos_q, pos_k, q):
    """P3 S-RPE materialised: r = W_s Sin(l_m − l_n) (Tq, Tk, d_model), heads via view(..., d_head, H)."""
    b, tq, h, dh = q.shape
    tk = pos_k.shape[1]
    out = torch.zeros(b, h, tq, tk, dtype=q.dtype)
    for s in range(pe.context_dim):
        diff = pos_q[..., s][:, :, None] - pos_k[..., s][:, None, :]
        sin = torch.tensor(
            [
                [
                    [p3_sin(diff[i, m, n].item(), pe.d_model, pe.bases[s]) for n in range(tk)]
                    for m in range(tq)
                ]
                for i in range(b)
            ],
            dtype=q.dtype,
        )
        r = sin @ pe.proj[s].detach().to(q.dtype).T  # (B, Tq, Tk, d_model)
        r = r.view(b, tq, tk, dh, h)
        out += torch.einsum("bmhi,bmnih->bhmn", q / math.sqrt(dh), r)
    return out


@pytest.mark.parametrize("distinct", ["auto", "always", "never"])
def test_srpe_bias_equals_materialised_p3_formula(distinct):
    pe = build_pe(
        "srpe", head_dim=3, n_heads=2, d_model=6, context_dim=2, bases=[50.0, 900.0], distinct=distinct
    )
    assert pe.bases == (50.0, 900.0)
    assert pe.kind == "bias"
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 4, 2, 3, generator=g, dtype=torch.float64)
    pos_q = torch.randint(0, 9, (2, 4, 2), generator=g).double()
    pos_k = torch.randint(0, 9, (2, 5, 2), generator=g).double()
    bias = pe.bias(pos_q, pos_k, q=q)
    assert bias.shape == (2, 2, 4, 5)
    torch.testing.assert_close(bias, naive_srpe(pe, pos_q, pos_k, q))
    # only label differences matter
    torch.testing.assert_close(pe.bias(pos_q + 4, pos_k + 4, q=q), bias)
    # without q, the learnable per-head vector u_h replaces q_mh / √d
    u = pe.u.detach().double()[None, None].expand(2, 4, -1, -1) * math.sqrt(3)
    torch.testing.assert_close(
        pe.bias(pos_q, pos_k).double(), naive_srpe(pe, pos_q, pos_k, u), atol=1e-5, rtol=1e-4
    )


def test_srpe_distinct_label_path_equals_the_dense_product_with_gradients():
    """The one-hot path (scores per distinct key label) is the same bias as the dense product, for
    outputs and for the gradients of q, W_s and u, with a mix of few-valued and many-valued columns."""
    g = torch.Generator().manual_seed(3)
    b, t, h, dh = 2, 40, 2, 4
    pos = torch.stack(
        [
            torch.randint(60, 66, (b, t), generator=g).double(),  # melody-like: 6 values
            torch.randint(0, 395, (b, t), generator=g).double(),  # many values: dense in "auto"
            torch.randint(0, 3, (b, t), generator=g).double(),  # section-like
        ],
        dim=-1,
    )
    pos[1, :, 2] = 7.0  # one row with a single label
    q = torch.randn(b, t, h, dh, generator=g, dtype=torch.float64)
    weight = torch.randn(b, h, t, t, generator=g, dtype=torch.float64)
    results = {}
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # the q-free bias computes in the default dtype
    try:
        for distinct in ("never", "auto", "always"):
            torch.manual_seed(0)
            pe = build_pe("srpe", head_dim=dh, n_heads=h, context_dim=3, distinct=distinct)
            qq = q.clone().requires_grad_(True)
            with_q = pe.bias(pos, pos[:, : t - 5], q=qq)  # keys: a prefix (Tk ≠ Tq)
            without_q = pe.bias(pos, pos)
            ((with_q * weight[..., : t - 5]).sum() + (without_q * weight).sum()).backward()
            results[distinct] = (with_q, without_q, qq.grad, pe.proj.grad, pe.u.grad)
    finally:
        torch.set_default_dtype(default)
    for distinct in ("auto", "always"):
        for got, want in zip(results[distinct], results["never"]):
            torch.testing.assert_close(got, want)
    with pytest.raises(ConfigError, match="distinct"):
        build_pe("srpe", head_dim=dh, n_heads=h, distinct="sometimes")


def test_distinct_per_row_indexes_each_rows_own_labels():
    from stripes.pe.srpe import _distinct_per_row

    labels = torch.tensor([[5.0, 2.0, 5.0, 9.0, 2.0], [1.0, 1.0, 1.0, 1.0, 1.0]])
    values, index = _distinct_per_row(labels)
    assert values.shape == (2, 3)  # the largest row count of distinct labels
    torch.testing.assert_close(values.gather(1, index), labels)
    assert values[0].tolist() == [2.0, 5.0, 9.0] and index[1].tolist() == [0] * 5


def test_srpe_errors():
    with pytest.raises(ConfigError, match="d_model"):
        build_pe("srpe", head_dim=3, n_heads=2, d_model=8)
    pe = build_pe("srpe", head_dim=3, n_heads=2, d_model=6)
    with pytest.raises(DataError, match="q must"):
        pe.bias(torch.zeros(1, 4, 1), torch.zeros(1, 4, 1), q=torch.zeros(1, 4, 2, 2))
