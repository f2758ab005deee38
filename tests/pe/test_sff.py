"""F-StrIPE:SFF and SPE: Monte-Carlo convergence to the RFF kernel, gating, eval determinism, chunking."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pe_helpers import rand_pos, rand_qk

from stripes.pe import build_pe


def sff(r, seed=0, gated=False, c=2, chunk_size=256):
    return (
        build_pe(
            "fstripe_sff",
            head_dim=4,
            n_heads=2,
            context_dim=c,
            n_sines=3,
            n_realizations=r,
            gated=gated,
            seed=seed,
            chunk_size=chunk_size,
        )
        .double()
        .eval()
    )


def mc_error(r, gated=False, n_seeds=12):
    ref = sff(8, gated=gated)
    params = {k: v for k, v in ref.state_dict().items() if not k.endswith("_eval")}
    q, k = rand_qk(b=1, tq=6, d=4)
    pos = rand_pos(b=1, t=6, c=2)
    target = ref.expected_scores(q, k, pos)
    errs = []
    for seed in range(n_seeds):
        pe = sff(r, seed=seed + 100, gated=gated)
        pe.load_state_dict(params, strict=False)
        errs.append(((pe.scores(q, k, pos) - target) ** 2).mean().item())
    return math.sqrt(np.mean(errs)), target.abs().mean().item()


def test_sff_converges_to_rff_kernel_as_one_over_sqrt_r():
    rs = [4, 16, 64, 256, 1024, 4096]
    results = [mc_error(r, n_seeds=20) for r in rs]
    errors = [e for e, _ in results]
    slope = np.polyfit(np.log(rs), np.log(errors), 1)[0]
    assert -0.7 < slope < -0.35, (slope, errors)  # Monte-Carlo rate R^(-1/2)
    assert errors[-1] < errors[0] / 16
    assert errors[-1] < 0.1 * results[0][1]  # small against the typical score magnitude


def test_gated_sff_converges_to_gated_kernel():
    err_small, scale = mc_error(16, gated=True)
    err_large, _ = mc_error(4096, gated=True)
    assert err_large < err_small / 4 and err_large < 0.15 * scale


def test_expected_gated_kernel_mixes_constant():
    pe = sff(8, gated=True)
    pos = rand_pos(b=1, t=4, c=2)
    with torch.no_grad():
        pe.gate.fill_(50.0)  # σ(g) ≈ 1: position-free attention
    kern = pe.kernel(pos, pos)
    torch.testing.assert_close(kern, torch.ones_like(kern), rtol=0, atol=1e-12)


def test_eval_is_deterministic_and_training_redraws():
    pe = sff(16)
    q, k = rand_qk(tq=5, d=4)
    pos = rand_pos(t=5, c=2)
    torch.testing.assert_close(pe.scores(q, k, pos), pe.scores(q, k, pos), rtol=0, atol=0)
    # the eval draw lives in the state dict: a module built with another seed reproduces it after loading
    other = sff(16, seed=99)
    assert not torch.allclose(other.scores(q, k, pos), pe.scores(q, k, pos))
    other.load_state_dict(pe.state_dict())
    torch.testing.assert_close(other.scores(q, k, pos), pe.scores(q, k, pos), rtol=0, atol=0)
    # the same seed gives the same eval draw
    torch.testing.assert_close(sff(16).z_eval, pe.z_eval, rtol=0, atol=0)
    pe.train()
    assert not torch.allclose(pe.scores(q, k, pos), pe.scores(q, k, pos))


def test_spe_eval_deterministic_and_gated_by_default():
    pe = build_pe("spe", head_dim=4, n_heads=2, n_sines=2, n_realizations=8).eval()
    assert pe.gated and pe.out_dim == 8
    q, k = rand_qk(tq=5, d=4, dtype=torch.float32)
    pos = torch.arange(5.0)[None, :, None].expand(2, -1, -1)
    torch.testing.assert_close(pe(q, k, pos)[0], pe(q, k, pos)[0], rtol=0, atol=0)


@pytest.mark.parametrize("gated", [False, True])
def test_chunked_equals_unchunked(gated):
    full, chunked = sff(8, gated=gated, chunk_size=None), sff(8, gated=gated, chunk_size=2)
    chunked.load_state_dict(full.state_dict())
    q, k = rand_qk(tq=7, tk=5, d=4)
    pq, pk = rand_pos(t=7, c=2), rand_pos(t=5, c=2, seed=3)
    outs_full, outs_chunked = full(q, k, pq, pk), chunked(q, k, pq, pk)
    for a, b in zip(outs_full, outs_chunked):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    sum(o.square().sum() for o in outs_full).backward()
    sum(o.square().sum() for o in outs_chunked).backward()
    grads = dict(chunked.named_parameters())
    for name, param in full.named_parameters():
        torch.testing.assert_close(param.grad, grads[name].grad, rtol=1e-10, atol=1e-12)


def test_eval_noise_differs_per_layer_and_follows_the_global_seed() -> None:
    """Without ``seed`` the eval draw comes from the global RNG: two layers of one model differ, and the
    same run seed gives the same draws again (so the seed spread of a result includes the noise's)."""

    def two(seed):
        torch.manual_seed(seed)
        return [build_pe("fstripe_sff", head_dim=8, n_heads=2, context_dim=2, n_realizations=4) for _ in "ab"]

    a1, a2 = two(0)
    b1, _ = two(0)
    c1, _ = two(1)
    assert not torch.equal(a1.z_eval, a2.z_eval)
    assert torch.equal(a1.z_eval, b1.z_eval) and torch.equal(a1.eps_eval, b1.eps_eval)
    assert not torch.equal(a1.z_eval, c1.z_eval)
    fixed = [build_pe("spe", head_dim=8, n_heads=2, n_realizations=4, seed=7) for _ in "ab"]
    assert torch.equal(fixed[0].z_eval, fixed[1].z_eval)  # an explicit seed still pins the draw
