"""Streaming: prefill + single steps through a cache equal one parallel forward (the oracle), for every PE.

Kernel level: ``linear_attention(initial_state=..., return_state=True)`` split anywhere = one call.
Layer level: every linear PE x feature map, the softmax KV cache (q/k PEs and the S-RPE bias), random
split points, T not a multiple of the chunk size, left-padded batches of different lengths.
Model level: the Harmonizer passes one cache through its layers.
"""

from __future__ import annotations

import pytest
import torch

from stripes.attention import AttentionLayer, KVCache, LinearCache, linear_attention
from stripes.errors import ConfigError, ModelError
from stripes.pe import build_pe

LINEAR_PES = [  # name, context_dim
    ("nope", 1), ("rope_a", 1), ("rope_b", 12), ("rope_c", 12), ("ropepool", 12), ("fstripe1", 12),
    ("fstripe", 12), ("fstripe_sff", 12), ("spe", 1),
]


def _rel(a, b):
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def _splits(t: int, g: torch.Generator) -> list[int]:
    """A random prefill length, then single steps, then one more random block, then single steps."""
    first = int(torch.randint(1, t // 2, (1,), generator=g))
    block = int(torch.randint(2, 9, (1,), generator=g))
    sizes = [first] + [1] * 5 + [block]
    while sum(sizes) < t:
        sizes.append(1)
    sizes[-1] -= sum(sizes) - t
    return [s for s in sizes if s > 0]


def _stream(layer, x, pos, mask, sizes):
    cache = layer.init_cache(x.shape[0])
    outs, start = [], 0
    for n in sizes:
        sl = slice(start, start + n)
        outs.append(layer(x[:, sl], pos[:, sl], key_padding_mask=None if mask is None else mask[:, sl],
                          cache=cache))
        start += n
    return torch.cat(outs, dim=1), cache


@pytest.mark.parametrize("t,chunk", [(37, 8), (50, 64)])
@pytest.mark.parametrize("scaled", [False, True])
def test_kernel_split_anywhere_equals_one_call(t, chunk, scaled):
    g = torch.Generator().manual_seed(0)
    q, k = torch.rand(2, t, 3, 6, generator=g) + 0.05, torch.rand(2, t, 3, 6, generator=g) + 0.05
    v = torch.randn(2, t, 3, 5, generator=g)
    a = torch.randn(2, t, 3, generator=g) * 20 if scaled else None
    mask = torch.zeros(2, t, dtype=torch.bool)
    mask[1, :5] = True
    ref, ref_state = linear_attention(q, k, v, chunk_size=chunk, key_padding_mask=mask, k_log_scale=a,
                                      return_state=True)
    state, outs, start = None, [], 0
    for n in _splits(t, g):
        sl = slice(start, start + n)
        o, state = linear_attention(
            q[:, sl], k[:, sl], v[:, sl], chunk_size=chunk, key_padding_mask=mask[:, sl],
            k_log_scale=None if a is None else a[:, sl], initial_state=state, return_state=True,
        )
        outs.append(o)
        start += n
    assert _rel(torch.cat(outs, 1), ref) < 1e-5
    for got, want in zip(state, ref_state):
        if want is None:
            assert got is None
        else:
            assert _rel(got, want) < 1e-5


def _inputs(c, b=3, t=45, d=32, seed=0, left_pad=(0, 4, 9)):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, t, d, generator=g)
    if c == 1:
        pos = torch.arange(t, dtype=torch.float32).expand(b, t)[..., None].clone()
    else:
        pos = (torch.rand(b, t, c, generator=g) < 0.4).float()
    mask = torch.zeros(b, t, dtype=torch.bool)
    for i, p in enumerate(left_pad[:b]):
        mask[i, :p] = True
    return x, pos, mask


@pytest.mark.parametrize("fmap", ["favor", "elu", "relu"])
@pytest.mark.parametrize("name,c", LINEAR_PES)
def test_linear_layer_prefill_plus_steps_equals_parallel(name, c, fmap):
    torch.manual_seed(0)
    pe = build_pe(name, head_dim=8, n_heads=4, context_dim=c)
    layer = AttentionLayer(32, 4, pe=pe, feature_map=fmap, chunk_size=8, seed=0).eval()
    x, pos, mask = _inputs(c)
    with torch.no_grad():
        ref = layer(x, pos, key_padding_mask=mask)
        out, cache = _stream(layer, x, pos, mask, _splits(45, torch.Generator().manual_seed(1)))
        _, whole = _stream(layer, x, pos, mask, [45])  # the final state of one parallel call
    valid = ~mask
    assert _rel(out[valid], ref[valid]) < 1e-5
    assert isinstance(cache, LinearCache) and cache.seen == 45
    for got, want in zip(cache.state, whole.state):
        if want is not None:
            assert _rel(got, want) < 1e-5


@pytest.mark.parametrize(
    "name,c", [("nope", 1), ("rope_c", 12), ("ropepool", 12), ("fstripe", 12), ("srpe", 3)]
)
def test_softmax_kv_cache_equals_parallel(name, c):
    torch.manual_seed(0)
    pe = build_pe(name, head_dim=8, n_heads=4, context_dim=c, d_model=32)
    layer = AttentionLayer(32, 4, pe=pe, attention="softmax").eval()
    x, pos, mask = _inputs(c)
    if name == "srpe":
        pos = torch.randint(0, 5, pos.shape).float()
    with torch.no_grad():
        ref = layer(x, pos, key_padding_mask=mask)
        out, cache = _stream(layer, x, pos, mask, _splits(45, torch.Generator().manual_seed(2)))
    valid = ~mask
    assert _rel(out[valid], ref[valid]) < 1e-5
    assert isinstance(cache, KVCache) and cache.seen == 45


def test_linear_cache_size_is_constant_and_kv_cache_grows():
    torch.manual_seed(0)
    pe = build_pe("ropepool", head_dim=8, n_heads=4, context_dim=12)
    lin = AttentionLayer(32, 4, pe=pe, seed=0).eval()
    soft = AttentionLayer(32, 4, pe=pe, attention="softmax").eval()
    x, pos, _ = _inputs(12, b=1, t=60)
    sizes = {}
    for layer in (lin, soft):
        cache = layer.init_cache(1)
        seen = []
        with torch.no_grad():
            for i in range(60):
                layer(x[:, i : i + 1], pos[:, i : i + 1], cache=cache)
                seen.append(cache.nbytes())
        sizes[layer.attention] = seen
    assert len(set(sizes["linear"])) == 1 and sizes["linear"][0] > 0
    assert sizes["softmax"][-1] == 60 * sizes["softmax"][0]


def test_cache_errors():
    layer = AttentionLayer(32, 4, seed=0)
    with pytest.raises(ModelError, match="LinearCache"):
        layer(torch.randn(1, 3, 32), cache=KVCache(1))
    with pytest.raises(ModelError, match="batch size 2"):
        layer(torch.randn(1, 3, 32), cache=layer.init_cache(2))
    with pytest.raises(ConfigError, match="not causal"):
        AttentionLayer(32, 4, causal=False).init_cache(1)


@pytest.mark.parametrize("pe,c,attention", [
    ("ropepool", 12, "linear"), ("rope", 12, "linear"), ("fstripe", 12, "linear"), ("spe", 1, "linear"),
    ("ape", 1, "linear"), ("nope", 1, "softmax"), ("srpe", 3, "softmax"),
])
def test_model_cache_prefill_plus_steps_equals_parallel(pe, c, attention):
    from stripes.models import Harmonizer

    torch.manual_seed(0)
    model = Harmonizer(pe=pe, context_dim=c, d_model=32, n_heads=4, d_ff=32, attention=attention).eval()
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(2, 40, 256, generator=g) < 0.05).float()
    pos = torch.randint(0, 3, (2, 40, c), generator=g).float()
    mask = torch.zeros(2, 40, dtype=torch.bool)
    mask[1, :6] = True  # left-padded second sequence
    with torch.no_grad():
        ref = model(x, pos, key_padding_mask=mask)
        cache = model.init_cache(2)
        outs = [model(x[:, :17], pos[:, :17], key_padding_mask=mask[:, :17], cache=cache)]
        for i in range(17, 40):
            sl = slice(i, i + 1)
            outs.append(model(x[:, sl], pos[:, sl], key_padding_mask=mask[:, sl], cache=cache))
    out = torch.cat(outs, dim=1)
    assert _rel(out[~mask], ref[~mask]) < 1e-5
    assert cache.seen == 40 and len(cache.layers) == 2


def test_readme_generate_token_by_token_snippet_runs():
    """The README's "Generate token by token" block, executed as written."""
    from pathlib import Path

    text = (Path(__file__).parents[2] / "README.md").read_text()
    start = text.index("## Generate token by token")
    code = text[start:].split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["torch"].allclose(scope["y_steps"], scope["y_all"], atol=1e-5)
