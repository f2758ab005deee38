"""Training-step benchmark: forward + backward + Adam step of the Harmonizer at paper shape.

For each PE (RoPEPool, F-StrIPE, RoPE, NoPE) it times the model with linear attention (FAVOR+, chunked
causal) and the same model with SDPA softmax attention, at (B=8, T=1024) and (B=1, T=4096), side by side.
FLOPs of one step are counted with ``torch.utils.flop_counter`` (matmuls and SDPA; the elementwise work of
the feature map is not counted) and compared with the rate of a large fp32 matmul on the same machine
(``fraction of peak`` = achieved / matmul rate).

Targets (issue #4): at T=1024 each linear model within 1.3x of the softmax model's step time; at T=4096
faster than it.

    python benchmarks/bench_train.py [--device cpu|cuda] [--reps 3] [--pes ropepool,fstripe,rope_c,nope]
    python benchmarks/bench_train.py --size cpu --shapes 8x1024 --pes ropepool,rope_c,fstripe1   # cpu profile
"""

from __future__ import annotations

import argparse
import time

import torch

from stripes.models import Harmonizer

CONTEXT_DIM = 12  # BIN


def matmul_rate(
    device: torch.device, n: int = 2048, reps: int = 5, dtype: torch.dtype = torch.float32
) -> float:
    """FLOP/s of an n x n x n matmul (the reference 'peak')."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# model sizes: P1's (d_model 512, d_ff 512) and the `cpu` / `quick` profiles' (128, 256)
SIZES = {"paper": (512, 512), "cpu": (128, 256)}


def make_model(pe: str, attention: str, device: torch.device, size: str = "paper") -> Harmonizer:
    torch.manual_seed(0)
    d_model, d_ff = SIZES[size]
    return Harmonizer(
        pe=pe,
        context_dim=CONTEXT_DIM,
        d_model=d_model,
        n_heads=4,
        n_layers=2,
        d_ff=d_ff,
        dropout=0.1,
        attention=attention,
        feature_map="favor",
        chunk_size=64,
        redraw="step",
        feature_map_options={"stabilize_keys": False},
    ).to(device)


def step_fn(
    model: Harmonizer,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    pos: torch.Tensor,
    y: torch.Tensor,
    bf16: bool,
) -> None:
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = model(x, pos)
    loss = Harmonizer.loss(logits, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def bench(pe: str, attention: str, b: int, t: int, device: torch.device, reps: int, bf16: bool,
          size: str = "paper") -> dict:
    model = make_model(pe, attention, device, size)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(b, t, 256, generator=g) < 0.03).float().to(device)
    y = (torch.rand(b, t, 128, generator=g) < 0.03).float().to(device)
    pos = (torch.rand(b, t, CONTEXT_DIM, generator=g) < 0.3).float().to(device)
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        step_fn(model, opt, x, pos, y, bf16)  # also the warm-up step
    flops = fc.get_total_flops()
    _sync(device)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step_fn(model, opt, x, pos, y, bf16)
        _sync(device)
        times.append(time.perf_counter() - t0)
    sec = sorted(times)[len(times) // 2]
    return {"pe": pe, "attention": attention, "B": b, "T": t, "sec": sec, "flops": flops}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--pes", default="ropepool,fstripe,rope_c,nope")
    ap.add_argument("--shapes", default="8x1024,1x4096", help="BxT list")
    ap.add_argument("--no-bf16", action="store_true", help="no bf16 autocast on CUDA")
    ap.add_argument("--size", choices=sorted(SIZES), default="paper",
                    help="model size: paper (d_model 512) or cpu (the cpu/quick profiles, d_model 128)")
    args = ap.parse_args()
    device = torch.device(args.device)
    bf16 = device.type == "cuda" and not args.no_bf16
    peak = matmul_rate(device, dtype=torch.bfloat16 if bf16 else torch.float32)
    print(
        f"device {device} ({torch.get_num_threads()} threads), torch {torch.__version__}, "
        f"bf16 autocast {bf16}; matmul reference {peak / 1e9:.1f} GFLOP/s; model size {args.size}"
    )
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    head = (
        f"{'B x T':>9} {'PE':<9} {'linear s':>9} {'softmax s':>9} {'lin/soft':>8} {'target':>8} "
        f"{'lin GF':>7} {'lin GF/s':>8} {'lin %pk':>7} {'soft GF/s':>9} {'soft %pk':>8}"
    )
    print(head)
    print("-" * len(head))
    for b, t in shapes:
        for pe in args.pes.split(","):
            lin = bench(pe, "linear", b, t, device, args.reps, bf16, args.size)
            soft = bench(pe, "softmax", b, t, device, args.reps, bf16, args.size)
            ratio = lin["sec"] / soft["sec"]
            ok = ratio <= 1.3 if t <= 1024 else ratio < 1.0
            target = ("<=1.3" if t <= 1024 else "<1.0") + (" ok" if ok else " NO")
            lr, sr = lin["flops"] / lin["sec"], soft["flops"] / soft["sec"]
            print(
                f"{b:>3}x{t:<5} {pe:<9} {lin['sec']:>9.3f} {soft['sec']:>9.3f} {ratio:>8.2f} {target:>8} "
                f"{lin['flops'] / 1e9:>7.1f} {lr / 1e9:>8.1f} {100 * lr / peak:>6.1f}% {sr / 1e9:>9.1f} "
                f"{100 * sr / peak:>7.1f}%",
                flush=True,
            )


if __name__ == "__main__":
    main()
