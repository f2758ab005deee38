"""Benchmark: torch.compile(fullgraph=True) against eager for the linear attention path of each linear PE.

One AttentionLayer (d_model 256, 4 heads, FAVOR+, chunk 64, causal) with RoPE, RoPEPool, F-StrIPE1 or
F-StrIPE on random 12-dim binary (BIN-like) positions, B=4, T=1024. For each PE, in this one process:
the eager layer and the compiled one (``torch.compile(layer, fullgraph=True)``; compile time reported
apart), median over --reps of a training step (forward + backward) and of an eval forward, rounds
interleaved. Prints the times and the ratio eager / compiled (> 1: compiled is faster).

    python benchmarks/bench_compile.py --threads 1
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import torch

PES = ("rope", "ropepool", "fstripe1", "fstripe")


def _layer(pe_name: str, seed: int = 0):
    from stripes.attention import AttentionLayer
    from stripes.pe import build_pe

    torch.manual_seed(seed)
    pe = build_pe(pe_name, head_dim=64, n_heads=4, context_dim=12)
    return AttentionLayer(256, 4, pe=pe, attention="linear", feature_map="favor", chunk_size=64, seed=seed)


def _time(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def train(m, layer, x, pos) -> None:
    layer.train()
    m(x, pos).square().mean().backward()


def evaluate(m, layer, x, pos) -> None:
    layer.eval()
    with torch.no_grad():
        m(x, pos)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--length", type=int, default=1024)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--pes", nargs="+", default=list(PES))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, args.length, 256, generator=g)
    pos = (torch.rand(args.batch, args.length, 12, generator=g) < 0.3).float()
    print(f"torch {torch.__version__}, {args.threads} thread(s), B={args.batch}, T={args.length}, "
          f"median of {args.reps}")
    print(f"{'pe':<10} {'compile s':>9} {'train eager ms':>15} {'compiled ms':>12} {'ratio':>6} "
          f"{'eval eager ms':>14} {'compiled ms':>12} {'ratio':>6}")
    for name in args.pes:
        eager = _layer(name)
        comp_layer = _layer(name)
        comp_layer.load_state_dict(eager.state_dict())
        compiled = torch.compile(comp_layer, fullgraph=True)


        t0 = time.perf_counter()
        train(compiled, comp_layer, x, pos)
        evaluate(compiled, comp_layer, x, pos)
        compile_s = time.perf_counter() - t0
        train(eager, eager, x, pos)
        evaluate(eager, eager, x, pos)
        te, tc, ee, ec = [], [], [], []
        for _ in range(args.reps):  # interleaved rounds
            te.append(_time(functools.partial(train, eager, eager, x, pos), 1))
            tc.append(_time(functools.partial(train, compiled, comp_layer, x, pos), 1))
            ee.append(_time(functools.partial(evaluate, eager, eager, x, pos), 1))
            ec.append(_time(functools.partial(evaluate, compiled, comp_layer, x, pos), 1))
        te_, tc_, ee_, ec_ = (statistics.median(v) * 1e3 for v in (te, tc, ee, ec))
        print(f"{name:<10} {compile_s:9.1f} {te_:15.1f} {tc_:12.1f} {te_ / tc_:6.2f} "
              f"{ee_:14.1f} {ec_:12.1f} {ee_ / ec_:6.2f}", flush=True)


if __name__ == "__main__":
    main()
