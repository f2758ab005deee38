"""Benchmark: generating token by token with a cache, linear (fixed-size state) vs softmax (KV cache).

The ``cpu``-profile model (d_model 128, 4 heads, 2 layers, d_ff 256, FAVOR+) with RoPEPool on 12-dim BIN
positions, once with linear attention (LinearCache: fixed size) and once with softmax attention (KVCache:
grows), on one thread, in this one process:

1. time per new token and cache bytes after a context of L = 256, 1k, 4k, 16k, 64k tokens (batch 1): the
   linear cache is filled by a real prefill of L tokens (chunked, in blocks of 4096); the softmax cache
   by L random keys and values per layer (a step's cost depends on the cache length only). Median of
   --steps single-token calls. Targets: linear time at 64k within 1.3x of 1k, linear cache bytes the same
   at every L, linear faster per token than the KV cache at 16k and 64k (where they cross is printed);
2. tokens per second when generating 16 bars (1,024 ticks) from scratch, one step at a time, for batch 1
   and 32, beside the time of one parallel forward of the same 1,024 ticks.

    python benchmarks/bench_stream.py                       # one thread, all lengths
    python benchmarks/bench_stream.py --lengths 1024 4096   # quicker
    python benchmarks/bench_stream.py --device cuda         # on a GPU (same script)
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def _model(attention: str, device: torch.device):
    from stripes.config import load_run_config
    from stripes.models import build_model

    cfg = load_run_config("cpu", overrides={"pe": "ropepool", "attention": attention})
    torch.manual_seed(0)
    return build_model(cfg, context_dim=12).to(device).eval()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _inputs(b: int, t: int, device: torch.device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(b, t, 256, generator=g) < 0.03).float()
    pos = (torch.rand(b, t, 12, generator=g) < 0.3).float()
    return x.to(device), pos.to(device)


def _fill(model, attention: str, length: int, device: torch.device):
    """A cache that has seen ``length`` tokens."""
    cache = model.init_cache(1)
    if attention == "linear":
        x, pos = _inputs(1, length, device)
        with torch.no_grad():
            for s in range(0, length, 4096):
                model(x[:, s : s + 4096], pos[:, s : s + 4096], cache=cache)
        return cache
    g = torch.Generator().manual_seed(1)
    for layer_cache, block in zip(cache.layers, model.blocks):
        attn = block.attn
        h, qk, d = attn.n_heads, attn.qk_dim, attn.head_dim
        layer_cache.k = torch.randn(1, length, h, qk, generator=g).to(device)
        layer_cache.v = torch.randn(1, length, h, d, generator=g).to(device)
        layer_cache.mask = torch.zeros(1, length, dtype=torch.bool, device=device)
    return cache


def per_token(lengths: list[int], steps: int, device: torch.device) -> dict:
    print("1. one new token after a context of L tokens (batch 1)")
    print(f"{'L':>7} {'linear ms':>10} {'linear cache':>13} {'softmax ms':>11} {'softmax cache':>14} "
          f"{'softmax/linear':>15}")
    x, pos = _inputs(1, steps, device, seed=2)
    res: dict = {"linear": {}, "softmax": {}}
    for length in lengths:
        row = {}
        for attention in ("linear", "softmax"):
            model = _model(attention, device)
            cache = _fill(model, attention, length, device)
            times = []
            with torch.no_grad():
                for i in range(steps):
                    _sync(device)
                    t0 = time.perf_counter()
                    model(x[:, i : i + 1], pos[:, i : i + 1], cache=cache)
                    _sync(device)
                    times.append(time.perf_counter() - t0)
            row[attention] = (statistics.median(times[2:]) * 1e3, cache.nbytes())
            res[attention][length] = row[attention]
        (lt, lb), (st, sb) = row["linear"], row["softmax"]
        print(f"{length:>7} {lt:10.3f} {lb / 1024:11.1f}KB {st:11.3f} {sb / 2**20:12.1f}MB {st / lt:15.2f}",
              flush=True)
    lin = res["linear"]
    first, last = (1024 if 1024 in lin else min(lin)), max(lin)
    print(f"   linear time {last} vs {first}: {lin[last][0] / lin[first][0]:.2f}x (target <= 1.3); "
          f"linear cache bytes identical at every L: {len({b for _, b in lin.values()}) == 1}")
    faster = [length for length in lengths if res["softmax"][length][0] > lin[length][0]]
    print(f"   linear faster per token than the KV cache at L = {faster}")
    return res


def generate(batches: list[int], ticks: int, device: torch.device) -> None:
    print(f"2. generating {ticks} ticks (16 bars) step by step from scratch")
    print(f"{'B':>4} {'attention':>9} {'tokens/s':>10} {'s total':>8} {'one parallel forward s':>23}")
    for b in batches:
        x, pos = _inputs(b, ticks, device, seed=3)
        for attention in ("linear", "softmax"):
            model = _model(attention, device)
            with torch.no_grad():
                _sync(device)
                t0 = time.perf_counter()
                model(x, pos)
                _sync(device)
                par = time.perf_counter() - t0
                cache = model.init_cache(b)
                _sync(device)
                t0 = time.perf_counter()
                for i in range(ticks):
                    model(x[:, i : i + 1], pos[:, i : i + 1], cache=cache)
                _sync(device)
                total = time.perf_counter() - t0
            print(f"{b:>4} {attention:>9} {b * ticks / total:10.0f} {total:8.2f} {par:23.3f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--lengths", type=int, nargs="+", default=[256, 1024, 4096, 16384, 65536])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--ticks", type=int, default=1024)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {device}, {args.threads} thread(s); cpu-profile model, RoPEPool + BIN")
    per_token(args.lengths, args.steps, device)
    generate(args.batches, args.ticks, device)


if __name__ == "__main__":
    main()
