"""One entry point for the speed targets of issue #14: prints every number and ratio side by side.

Sections (all on one device, measured in this one run):
  1. train step of the ``quick`` model (d_model 128, 4 heads, 2 layers, d_ff 256, FAVOR+, chunk 64) at
     B=8, T=1024 for each PE, 12-dim random binary BIN positions (SPE: scalar TIME positions), median of
     --reps steps, rounds interleaved across PEs; ratio to RoPEPool (target: F-StrIPE, SFF, SPE <= 2x);
  2. causal linear attention (chunked kernel, chunk 128, on positive features) vs SDPA causal, fwd+bwd,
     B=1, H=4, M=D=128, T in 1024/4096/16384: median time of >= 5 repeats and peak memory, each (case, T)
     in a fresh subprocess (CPU: growth of ru_maxrss; CUDA: max_memory_allocated); target: >= 5x at
     T=4096, time and memory growing <= 20x from T=1024 to 16384;
  3. a square fp32 matmul's FLOP/s (the "peak") and the linear kernel's achieved fraction of it;
  4. bf16 autocast vs fp32: relative error of the linear-attention layer output (and, on CUDA, the
     train-step time under bf16 autocast).

    python benchmarks/run_all.py --threads 1            # full (CPU: ~10 min on a quiet core)
    python benchmarks/run_all.py --threads 1 --quick    # T up to 4096, fewer repeats
    python benchmarks/run_all.py --device cuda          # see benchmarks/gpu.sh
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch
from bench_train import _sync, matmul_rate  # one matmul reference for every benchmark (script dir)

PES = ("ropepool", "fstripe", "fstripe_sff", "spe", "rope", "fstripe1", "nope")
TARGET_PES = ("fstripe", "fstripe_sff", "spe")
H, D, M, CHUNK = 4, 128, 128, 128


# ------------------------------------------------------------------------------------------- train step


def _train_case(pe: str, device: torch.device, b: int, t: int, bf16: bool):
    from stripes.config import load_run_config
    from stripes.models import Harmonizer, build_model

    cfg = load_run_config("quick", overrides={"pe": pe})
    c = 1 if pe == "spe" else 12  # sineSPE takes scalar positions: TIME
    torch.manual_seed(0)
    model = build_model(cfg, context_dim=c).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(b, t, 256, generator=g) < 0.03).float().to(device)
    y = (torch.rand(b, t, 128, generator=g) < 0.03).float().to(device)
    if pe == "spe":
        pos = torch.arange(t, dtype=torch.float32).view(1, t, 1).expand(b, t, 1).contiguous().to(device)
    else:
        pos = (torch.rand(b, t, c, generator=g) < 0.3).float().to(device)  # random binary chroma

    def step() -> float:
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x, pos)
        loss = Harmonizer.loss(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _sync(device)
        return time.perf_counter() - t0

    return step


def bench_train(device: torch.device, reps: int, bf16: bool, b: int = 8, t: int = 1024) -> dict[str, float]:
    steps = {pe: _train_case(pe, device, b, t, bf16) for pe in PES}
    for step in steps.values():
        step()  # warm-up
    times: dict[str, list[float]] = {pe: [] for pe in PES}
    for _ in range(reps):  # interleaved: load on a shared machine hits every PE alike
        for pe, step in steps.items():
            times[pe].append(step())
    return {pe: statistics.median(v) for pe, v in times.items()}


# ------------------------------------------------------------------------------------- attention kernels


def _flops_linear(t: int) -> float:
    """Matmul FLOPs of one chunked causal linear-attention fwd+bwd (B=1): forward x 3."""
    n = -(-t // CHUNK)
    per_head = n * (2 * CHUNK * M * (D + 1) + 2 * CHUNK * CHUNK * M + 2 * CHUNK * CHUNK * (D + 1)
                    + 2 * CHUNK * M * (D + 1))
    return 3.0 * H * per_head


def _proc_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> int | None:
    """Reset the kernel's peak-RSS mark (Linux: clear_refs 5) and return the current RSS in KiB."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return None
    return _proc_kib("VmRSS")


def attention_worker(case: str, t: int, repeats: int, device: str, threads: int | None) -> dict:
    import torch.nn.functional as F

    from stripes.attention import linear_attention

    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    g = torch.Generator().manual_seed(0)
    if case == "linear":  # positive features, as after FAVOR+
        shapes = [(1, t, H, M), (1, t, H, M), (1, t, H, D)]
        inputs = [(torch.rand(s, generator=g) + 0.05).to(dev) for s in shapes[:2]]
        inputs.append(torch.randn(shapes[2], generator=g).to(dev))

        def fn(a, b_, c):
            return linear_attention(a, b_, c, chunk_size=CHUNK)
    else:
        inputs = [torch.randn(1, H, t, D, generator=g).to(dev) for _ in range(3)]

        def fn(a, b_, c):
            return F.scaled_dot_product_attention(a, b_, c, is_causal=True)

    inputs = [x.requires_grad_() for x in inputs]

    def once() -> float:
        for x in inputs:
            x.grad = None
        _sync(dev)
        t0 = time.perf_counter()
        fn(*inputs).sum().backward()
        _sync(dev)
        return time.perf_counter() - t0

    small = [x[:, :64].detach().clone().requires_grad_() if case == "linear" else
             x[:, :, :64].detach().clone().requires_grad_() for x in inputs]
    fn(*small).sum().backward()  # warm-up on a small size: kernels, thread pools
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
    rss_now = _reset_peak_rss()  # peak RSS growth over one pass (the process peak is reset first)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    first = once()
    if dev.type == "cuda":
        peak_mb = (torch.cuda.max_memory_allocated(dev) - base) / 2**20
    elif rss_now is not None and _proc_kib("VmHWM") is not None:
        peak_mb = (_proc_kib("VmHWM") - rss_now) / 1024
    else:
        peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    times = [once() for _ in range(repeats)] if first < 60 else [first]
    return {"case": case, "T": t, "median_s": statistics.median(times), "n": len(times), "peak_mb": peak_mb}


def bench_attention(args: argparse.Namespace) -> dict[tuple[str, int], dict]:
    out = {}
    for t in args.sizes:
        for case in ("linear", "sdpa"):
            cmd = [sys.executable, __file__, "--worker", case, str(t), "--repeats", str(args.repeats),
                   "--device", args.device]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
            if res.returncode != 0:
                out[(case, t)] = {"error": (res.stderr.strip().splitlines() or ["?"])[-1]}
            else:
                out[(case, t)] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


# ----------------------------------------------------------------------------------------------- bf16


def bf16_error(device: torch.device) -> float:
    """Relative L2 error of a FAVOR+ linear-attention layer (RoPEPool, BIN) under bf16 autocast vs fp32."""
    from stripes.attention import AttentionLayer
    from stripes.pe import build_pe

    torch.manual_seed(0)
    pe = build_pe("ropepool", head_dim=32, n_heads=4, context_dim=12)
    layer = AttentionLayer(128, 4, pe=pe, attention="linear", feature_map="favor", chunk_size=64, seed=0)
    layer = layer.to(device)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 1024, 128, generator=g).to(device)
    pos = (torch.rand(2, 1024, 12, generator=g) < 0.3).float().to(device)
    with torch.no_grad():
        ref = layer(x, pos)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            out = layer(x, pos)
    return ((out.float() - ref).norm() / ref.norm()).item()


# ----------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None, help="torch threads (use 1 on a shared CPU)")
    p.add_argument("--quick", action="store_true", help="T in 1024 4096 only, 3 train reps")
    p.add_argument("--reps", type=int, default=None, help="train steps per PE (default 5, quick 3)")
    p.add_argument("--repeats", type=int, default=5, help="attention fwd+bwd repeats per (case, T)")
    p.add_argument("--sizes", type=int, nargs="+", default=None)
    p.add_argument("--skip", nargs="*", default=[], choices=["train", "attention", "bf16"])
    p.add_argument("--worker", nargs=2, metavar=("CASE", "T"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(attention_worker(args.worker[0], int(args.worker[1]), args.repeats, args.device,
                                          args.threads)))
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    args.sizes = args.sizes or ([1024, 4096] if args.quick else [1024, 4096, 16384])
    reps = args.reps or (3 if args.quick else 5)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{os.cpu_count()} CPUs"
    print(f"# device {device} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"load average at start {load:.2f}")
    peak = matmul_rate(device, reps=5 if device.type == "cpu" else 50)
    print(f"# fp32 matmul 2048^3: {peak / 1e9:.1f} GFLOP/s (the 'peak' below)\n")

    if "train" not in args.skip:
        print(f"## train step, quick model, B=8 T=1024, median of {reps} (interleaved)")
        modes = [False, True] if device.type == "cuda" else [False]
        res = {bf: bench_train(device, reps, bf) for bf in modes}
        head = f"{'PE':<12} {'fp32 s':>8} {'/ropepool':>9}" + (f" {'bf16 s':>8} {'/ropepool':>9}" if
                                                                   len(modes) > 1 else "") + "  target"
        print(head)
        for pe in PES:
            row = f"{pe:<12}"
            for bf in modes:
                r = res[bf]
                row += f" {r[pe]:>8.3f} {r[pe] / r['ropepool']:>9.2f}"
            if pe in TARGET_PES:
                ok = res[False][pe] / res[False]["ropepool"] <= 2.0
                row += "  <=2x " + ("met" if ok else "NOT met")
            print(row, flush=True)
        print()

    if "attention" not in args.skip:
        print(f"## causal attention kernel fwd+bwd, B=1 H={H} M=D={D}, linear chunk {CHUNK}, "
              f"median of {args.repeats}")
        att = bench_attention(args)
        print(f"{'T':>6} {'linear s':>9} {'MB':>8} {'sdpa s':>9} {'MB':>8} {'sdpa/lin':>8} {'lin %peak':>9}")
        for t in args.sizes:
            li, sd = att[("linear", t)], att[("sdpa", t)]
            if "error" in li or "error" in sd:
                print(f"{t:>6} error: {li.get('error', '')} {sd.get('error', '')}")
                continue
            frac = _flops_linear(t) / li["median_s"] / peak
            print(f"{t:>6} {li['median_s']:>9.3f} {li['peak_mb']:>8.1f} {sd['median_s']:>9.3f} "
                  f"{sd['peak_mb']:>8.1f} {sd['median_s'] / li['median_s']:>8.2f} {100 * frac:>8.1f}%")
        ok4 = ("linear", 4096) in att and "error" not in att[("linear", 4096)]
        if ok4 and "error" not in att[("sdpa", 4096)]:
            r = att[("sdpa", 4096)]["median_s"] / att[("linear", 4096)]["median_s"]
            print(f"T=4096: linear is {r:.2f}x faster than SDPA causal (target >= 5x: "
                  f"{'met' if r >= 5 else 'NOT met'})")
        ts = [t for t in args.sizes if "error" not in att[("linear", t)]]
        if len(ts) >= 2:
            a, b = att[("linear", ts[0])], att[("linear", ts[-1])]
            gt, gm = b["median_s"] / a["median_s"], b["peak_mb"] / max(a["peak_mb"], 1e-3)
            verdict = "n/a (run T=1024 and 16384)"
            if (ts[0], ts[-1]) == (1024, 16384):
                mt, mm = ("met" if g <= 20 else "NOT met" for g in (gt, gm))
                verdict = f"time {mt}, memory {mm}"
            print(f"linear T={ts[0]} -> {ts[-1]}: time x{gt:.1f}, peak memory x{gm:.1f} "
                  f"(target <= 20x each for 1024 -> 16384: {verdict})")
        print()

    if "bf16" not in args.skip:
        err = bf16_error(device)
        print(f"## bf16 autocast vs fp32, linear-attention layer (RoPEPool, FAVOR+, T=1024): relative L2 "
              f"error {err:.2e} (test tolerance 1.5e-2)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
