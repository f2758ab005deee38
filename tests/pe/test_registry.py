"""Registry, shapes, dtypes, vector positions and input checks shared by every PE."""

from __future__ import annotations

import pytest
import torch
from pe_helpers import rand_pos, rand_qk

from stripes.errors import ConfigError, DataError, StripesError
from stripes.pe import build_pe, list_pes

QK = ["nope", "rope", "rope_a", "rope_b", "ropepool", "fstripe1", "fstripe", "fstripe_sff", "spe"]
EXPECTED_OUT = {  # head_dim D = 8, n_sines 3, R = 6
    "nope": 8,
    "rope": 8,
    "rope_a": 8,
    "rope_b": 8,
    "ropepool": 4,
    "fstripe1": 2,
    "fstripe": 6,
    "fstripe_sff": 6,
    "spe": 6,
}


def small(name, c=1, **kw):
    opts = {}
    if name in ("fstripe", "fstripe_sff", "spe"):
        opts["n_sines"] = 3
    if name in ("fstripe_sff", "spe"):
        opts["n_realizations"] = 6
    opts.update(kw)
    return build_pe(name, head_dim=8, n_heads=2, context_dim=c, d_model=16, **opts)


def test_list_pes_names_and_descriptions():
    pes = list_pes()
    assert set(pes) == {
        "nope",
        "rope",
        "ropepool",
        "fstripe1",
        "fstripe",
        "fstripe_sff",
        "spe",
        "ape",
        "sape",
        "srpe",
    }
    assert all(isinstance(v, str) and len(v) > 10 and "\n" not in v for v in pes.values())
    kinds = {n: build_pe(n, head_dim=8, n_heads=2, d_model=16).kind for n in pes}
    assert kinds["ape"] == kinds["sape"] == "input" and kinds["srpe"] == "bias"
    assert all(kinds[n] == "qk" for n in pes if n not in ("ape", "sape", "srpe"))


@pytest.mark.parametrize("name", QK)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shapes_dtypes_and_scores_are_dot_products(name, dtype):
    pe = small(name).to(dtype).eval()
    assert pe.out_dim == EXPECTED_OUT[name]
    q, k = rand_qk(b=2, tq=5, tk=7, dtype=dtype)
    pq, pk = rand_pos(t=5, dtype=dtype), rand_pos(t=7, dtype=dtype, seed=3)
    q_out, k_out = pe(q, k, pq, pk)
    assert q_out.shape == (2, 5, 2, pe.out_dim) and k_out.shape == (2, 7, 2, pe.out_dim)
    assert q_out.dtype == dtype and k_out.dtype == dtype
    s = pe.scores(q, k, pq, pk)
    assert s.shape == (2, 2, 5, 7) and s.dtype == dtype
    manual = (q_out[:, :, None] * k_out[:, None]).sum(-1).permute(0, 3, 1, 2)
    torch.testing.assert_close(s, manual)


@pytest.mark.parametrize("name", [n for n in QK if n != "spe"])
def test_vector_positions_c12(name):
    pe = small(name, c=12).eval()
    q, k = rand_qk(tq=4, dtype=torch.float32)
    pos = (torch.rand(2, 4, 12) > 0.5).float()  # a BIN-like chroma vector
    q_out, k_out = pe(q, k, pos)
    assert (
        q_out.shape == (2, 4, 2, pe.out_dim) and torch.isfinite(q_out).all() and torch.isfinite(k_out).all()
    )
    if name not in ("nope",):
        other = pos.clone()
        other[:, :, 5] = 1 - other[:, :, 5]  # changing one chroma bin changes the code
        assert not torch.allclose(pe(q, k, other)[0], q_out)


def test_spe_rejects_vector_positions():
    with pytest.raises(ConfigError, match="context_dim"):
        build_pe("spe", head_dim=8, n_heads=2, context_dim=12)


@pytest.mark.parametrize("name", QK)
def test_bad_inputs_raise_clear_errors(name):
    pe = small(name)
    q, k = rand_qk(dtype=torch.float32)
    pos = rand_pos(dtype=torch.float32)
    bad_cases = [
        (q[..., :6], k, pos, None, "D=8"),  # wrong head dim
        (q[:, :, :1], k, pos, None, "H=2"),  # wrong head count
        (q[0], k, pos, None, "4-d"),  # missing batch dim
        (q, k, pos[:, :4], None, "pos_q"),  # wrong length
        (q, k, torch.cat([pos, pos], -1), None, "C=1"),  # wrong context width
        (q, k[:, :3], pos, None, "pos_k is required"),  # different lengths, no pos_k
        (q.long(), k.long(), pos, None, "floating"),
    ]
    for qq, kk, pq, pk, msg in bad_cases:
        with pytest.raises(DataError, match=msg) as info:
            pe(qq, kk, pq, pk)
        assert isinstance(info.value, StripesError) and isinstance(info.value, ValueError)


def test_two_dim_positions_accepted_when_c_is_1():
    pe = small("rope")
    q, k = rand_qk(dtype=torch.float32)
    pos = rand_pos(dtype=torch.float32)
    torch.testing.assert_close(pe(q, k, pos[..., 0])[0], pe(q, k, pos)[0])


def test_build_errors():
    with pytest.raises(ConfigError, match="unknown positional encoding"):
        build_pe("alibi", head_dim=8, n_heads=2)
    with pytest.raises(ConfigError, match="unknown option"):
        build_pe("rope", head_dim=8, n_heads=2, n_sines=3)
    with pytest.raises(ConfigError, match="even"):
        build_pe("ropepool", head_dim=7, n_heads=2)
    with pytest.raises(ConfigError, match="variant"):
        build_pe("rope", head_dim=8, n_heads=2, variant="D")
    with pytest.raises(ConfigError, match="head_dim"):
        build_pe("fstripe", head_dim=0, n_heads=2)
    with pytest.raises(ConfigError, match="d_model"):
        build_pe("ape", head_dim=8, n_heads=2)
    with pytest.raises(ConfigError, match="n_sines"):
        build_pe("fstripe", head_dim=8, n_heads=2, n_sines=0)
    with pytest.raises(ConfigError, match="chunk_size"):
        build_pe("fstripe", head_dim=8, n_heads=2, chunk_size=-1)
    assert build_pe("rope_b", head_dim=8, n_heads=2).variant == "B"


LEARNABLE = {
    "rope": ["freqs"],
    "ropepool": ["freqs"],
    "fstripe1": ["freqs"],
    "fstripe": ["code.raw_freqs", "code.raw_gains", "code.offsets"],
    "fstripe_sff": ["code.raw_freqs", "code.raw_gains", "code.offsets", "gate"],
    "spe": ["code.raw_freqs", "code.raw_gains", "code.offsets", "gate"],
}


@pytest.mark.parametrize("name", list(LEARNABLE))
def test_gradients_reach_every_learnable_frequency(name):
    pe = (
        small(name, c=3, **({"gated": True} if name == "fstripe_sff" else {}))
        if name != "spe"
        else small(name)
    )
    pe.train()
    q, k = rand_qk(dtype=torch.float32)
    pos = rand_pos(c=pe.context_dim, dtype=torch.float32)
    pe.scores(q, k, pos).square().sum().backward()
    params = dict(pe.named_parameters())
    assert set(params) == set(LEARNABLE[name])
    for pname in LEARNABLE[name]:
        grad = params[pname].grad
        assert grad is not None and torch.isfinite(grad).all()
        # every single frequency / gain / phase entry receives signal
        assert (grad.abs() > 0).all(), pname


def test_fixed_rope_variants_have_no_parameters():
    for v in ("A", "B"):
        pe = build_pe("rope", head_dim=8, n_heads=2, variant=v)
        assert list(pe.parameters()) == [] and "freqs" in dict(pe.named_buffers())


@pytest.mark.parametrize("name", QK)
def test_bf16_autocast_keeps_positions_and_angles_in_float32(name):
    """Under bf16 autocast (the CUDA training default) q, k arrive in bf16: positions ≥ 256 and angles f·p
    must not be rounded to bf16, so the codes stay within bf16 rounding of the float64 reference."""
    kw = {"variant": "A"} if name == "rope" else {}
    pe = small(name, **kw).eval()
    q, k = rand_qk(b=1, tq=600, dtype=torch.float32)
    q, k = q.bfloat16(), k.bfloat16()
    pos = torch.arange(600, dtype=torch.float32)[None, :, None] + 0.5
    with torch.autocast("cpu", dtype=torch.bfloat16):
        q_out, k_out = pe(q, k, pos)
    assert q_out.dtype == k_out.dtype == torch.bfloat16
    ref_q, ref_k = pe.double()(q.double(), k.double(), pos.double())
    for out, ref in ((q_out, ref_q), (k_out, ref_k)):
        err = (out.double() - ref).abs().max() / ref.abs().max()
        assert err < 1e-2, err


def test_srpe_bf16_autocast_keeps_labels_in_float32():
    pe = build_pe("srpe", head_dim=4, n_heads=2, d_model=8)
    q = torch.randn(1, 300, 2, 4).bfloat16()
    pos = torch.arange(300, dtype=torch.float32)[None, :, None] + 100.0  # chord-like ids up to 399
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bias = pe.bias(pos, None, q=q)
    assert bias.dtype == torch.bfloat16
    ref = pe.double().bias(pos.double(), None, q=q.double())
    assert (bias.double() - ref).abs().max() / ref.abs().max() < 1e-2
