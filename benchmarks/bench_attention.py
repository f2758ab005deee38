"""Benchmark: forward+backward time and peak memory of attention layers, side by side.

Cases (B=1, H=4, head dim D=128, FAVOR+ M=128, d_model = H*D = 512, causal):
  linear-<pe>   our AttentionLayer (chunked causal linear attention) with the PE nope, rope, ropepool,
                fstripe1 or fstripe (all but nope need stripes.pe);
  cumsum-<pe>   the same layer with a naive causal linear attention that materialises the (B, T, H, M, Dv)
                cumulative k v^T state (performer-pytorch's non-CUDA fallback, without chunking);
  softmax-sdpa  the same layer with exact causal softmax through scaled_dot_product_attention.
  core-<pe>     the attention core alone, without the four d_model x d_model projections (which cost the same
                in every layer): PE -> FAVOR+ -> chunked causal linear attention on (B, T, H, D) q, k, v;
  core-sdpa     the softmax core alone: stripes.attention.softmax_attention (SDPA, is_causal).

Each (case, T) runs in a fresh subprocess: peak memory = growth of ru_maxrss (the process's peak resident
set) over one forward+backward, after building the layer and inputs and a tiny warm-up; time = min and
median over --repeats further forward+backward passes. Cases whose estimated memory exceeds --mem-limit-gb
are skipped (and said so); a case over --timeout seconds is reported as timed out.

Usage:
  python benchmarks/bench_attention.py                        # T in 1024 4096 16384, all cases
  python benchmarks/bench_attention.py --sizes 1024 4096 --cases linear-ropepool softmax-sdpa
  python benchmarks/bench_attention.py --chunk-sweep 32 64 128 256 --sizes 4096
  python benchmarks/bench_attention.py --json results.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

B, H, D, M = 1, 4, 128, 128
PES = ("nope", "rope", "ropepool", "fstripe1", "fstripe")


def _has_pe() -> bool:
    return importlib.util.find_spec("stripes.pe") is not None


def default_cases() -> list[str]:
    pes = PES if _has_pe() else ("nope",)
    ref = "ropepool" if _has_pe() else "nope"
    return [f"linear-{p}" for p in pes] + [f"cumsum-{ref}", "softmax-sdpa", f"core-{ref}", "core-sdpa"]


def estimate_gb(case: str, t: int) -> float:
    """Rough upper bound of the memory a case needs (GiB), to skip what cannot fit."""
    base = 40 * B * t * H * D * 4  # activations of projections, PE and features, with gradients
    if case.startswith("cumsum"):
        base += 5 * B * t * H * M * D * 4  # outer products, their cumsum and both gradients
    if case.endswith("-fstripe"):
        base += 0.8 * 2**20 * t  # stripes.pe F-StrIPE: ~0.75 MB per token measured at T=1024
    return base / 2**30


# ----------------------------------------------------------------------------------------------- worker


class _Core:
    """The attention core on (B, T, H, D) q, k, v: PE -> FAVOR+ -> chunked linear attention, or SDPA."""

    def __init__(self, pe_name: str, chunk_size: int, seed: int) -> None:
        from stripes.attention import build_feature_map

        self.pe_name, self.chunk_size = pe_name, chunk_size
        self.pe = _pe(pe_name) if pe_name not in ("nope", "sdpa") else None
        in_dim = self.pe.out_dim if self.pe is not None else D
        self.fm = build_feature_map("favor", in_dim, n_features=M, seed=seed, scale=D**-0.25)

    def __call__(self, q, k, v, pos):
        from stripes.attention import linear_attention, softmax_attention

        if self.pe_name == "sdpa":
            return softmax_attention(q, k, v, causal=True)
        if self.pe is not None:
            q, k = self.pe(q, k, pos, pos)
        return linear_attention(self.fm(q, role="query"), self.fm(k, role="key"), v,
                                chunk_size=self.chunk_size)

    def zero_grad(self, set_to_none: bool = True) -> None:
        if self.pe is not None:
            self.pe.zero_grad(set_to_none=set_to_none)


def _pe(name: str):
    from stripes.pe import build_pe

    return build_pe(name, head_dim=D, n_heads=H, context_dim=1, d_model=H * D)


def _build(case: str, chunk_size: int, seed: int = 0):
    import torch

    from stripes.attention import AttentionLayer

    kind, _, pe_name = case.partition("-")
    torch.manual_seed(seed)
    if kind == "core":
        return _Core(pe_name, chunk_size, seed)
    pe = None
    if kind in ("linear", "cumsum") and pe_name != "nope":
        pe = _pe(pe_name)
    if kind == "softmax":
        return AttentionLayer(H * D, H, pe=None, attention="softmax")
    layer = AttentionLayer(H * D, H, pe=pe, attention="linear", feature_map="favor", n_features=M,
                           chunk_size=chunk_size, seed=seed)
    if kind == "cumsum":
        fm = layer.feature_map

        def attend(q, k, v, pos, key_padding_mask):
            from stripes.attention import cumsum_linear_attention  # the library's reference baseline

            return cumsum_linear_attention(fm(q, role="query"), fm(k, role="key"), v, layer.eps)

        layer._attend = attend  # swap only the attention kernel; projections, PE and features are shared
    elif kind != "linear":
        raise SystemExit(f"unknown case {case!r}")
    return layer


def _fwd_bwd(layer, x, pos) -> None:
    layer.zero_grad(set_to_none=True)
    if isinstance(layer, _Core):
        for t in x:
            t.grad = None
        layer(*x, pos).sum().backward()
    else:
        x.grad = None
        layer(x, pos).sum().backward()


def _inputs(layer, t: int, g):
    import torch

    if isinstance(layer, _Core):
        return tuple(torch.randn(B, t, H, D, generator=g, requires_grad=True) for _ in range(3))
    return torch.randn(B, t, H * D, generator=g, requires_grad=True)


def worker(case: str, t: int, repeats: int, chunk_size: int, threads: int | None) -> dict:
    import torch

    if threads:
        torch.set_num_threads(threads)
    layer = _build(case, chunk_size)
    g = torch.Generator().manual_seed(1)
    x = _inputs(layer, t, g)
    pos = torch.arange(t, dtype=torch.float32).view(1, t, 1).expand(B, t, 1).contiguous()
    _fwd_bwd(layer, _inputs(layer, 64, g), pos[:, :64])  # warm-up: thread pools, kernels
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    _fwd_bwd(layer, x, pos)
    first = time.perf_counter() - t0
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024  # ru_maxrss is in KiB
    times = []
    if first < 30:
        for _ in range(repeats):
            t0 = time.perf_counter()
            _fwd_bwd(layer, x, pos)
            times.append(time.perf_counter() - t0)
    else:
        times = [first]
    return {"case": case, "T": t, "chunk_size": chunk_size, "time_min_s": min(times),
            "time_median_s": statistics.median(times), "n_timed": len(times), "peak_mb": peak_mb,
            "threads": torch.get_num_threads(), "torch": torch.__version__}


# ----------------------------------------------------------------------------------------------- driver


def run_case(case: str, t: int, args: argparse.Namespace, chunk_size: int) -> dict:
    est = estimate_gb(case, t)
    if est > args.mem_limit_gb:
        return {"case": case, "T": t, "skipped": f"needs ~{est:.1f} GiB > --mem-limit-gb {args.mem_limit_gb}"}
    cmd = [sys.executable, __file__, "--worker", case, str(t), "--repeats", str(args.repeats),
           "--chunk-size", str(chunk_size)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"case": case, "T": t, "skipped": f"timed out after {args.timeout} s"}
    if res.returncode != 0:
        tail = (res.stderr.strip().splitlines() or ["?"])[-1]
        return {"case": case, "T": t, "skipped": f"failed (exit {res.returncode}): {tail}"}
    return json.loads(res.stdout.strip().splitlines()[-1])


def _merge(old: dict | None, new: dict) -> dict:
    """Combine rounds: min time over rounds, median of the per-round medians, max peak memory."""
    if old is None or "skipped" in old:
        return dict(new, round_medians_s=[new["time_median_s"]]) if "skipped" not in new else new
    if "skipped" in new:
        return old
    out = dict(old)
    out["time_min_s"] = min(old["time_min_s"], new["time_min_s"])
    out["round_medians_s"] = old["round_medians_s"] + [new["time_median_s"]]
    out["time_median_s"] = statistics.median(out["round_medians_s"])
    out["peak_mb"] = max(old["peak_mb"], new["peak_mb"])
    out["n_timed"] = old["n_timed"] + new["n_timed"]
    return out


def _fmt(r: dict) -> str:
    if "skipped" in r:
        return f"{r['case']:<18} {r['T']:>6}   skipped: {r['skipped']}"
    return (f"{r['case']:<18} {r['T']:>6} {r.get('chunk_size', ''):>6} {r['time_min_s']:>10.3f} "
            f"{r['time_median_s']:>10.3f} {r['peak_mb']:>10.1f}")


def summarize(results: list[dict]) -> list[str]:
    ok = {(r["case"], r["T"]): r for r in results if "skipped" not in r}
    lines = []
    pe_name = "ropepool" if any(c.endswith("-ropepool") for c, _ in ok) else "nope"
    target, ref_cumsum, core = f"linear-{pe_name}", f"cumsum-{pe_name}", f"core-{pe_name}"
    def ratio(a: dict, b: dict, key: str) -> float:
        return a[key] / max(b[key], 1e-9)

    for (case, t), r in sorted(ok.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if case == core and ("core-sdpa", t) in ok:
            sm = ok[("core-sdpa", t)]
            lines.append(f"T={t}: {core} (no projections) is {ratio(sm, r, 'time_min_s'):.2f}x faster than "
                         f"core-sdpa (memory {ratio(sm, r, 'peak_mb'):.2f}x less)")
        if case != target:
            continue
        sm, cs = ok.get(("softmax-sdpa", t)), ok.get((ref_cumsum, t))
        if sm:
            lines.append(f"T={t}: {target} is {ratio(sm, r, 'time_min_s'):.2f}x faster than softmax-sdpa "
                         f"(memory {ratio(sm, r, 'peak_mb'):.2f}x less)")
        if cs:
            lines.append(f"T={t}: {target} uses {ratio(cs, r, 'peak_mb'):.2f}x less memory than "
                         f"{ref_cumsum} (time {ratio(cs, r, 'time_min_s'):.2f}x faster)")
    ts = sorted(t for c, t in ok if c == target)
    if len(ts) >= 2:
        a, b = ok[(target, ts[0])], ok[(target, ts[-1])]
        lines.append(f"{target} T={ts[0]} -> {ts[-1]} ({ts[-1] / ts[0]:.0f}x tokens): time x"
                     f"{ratio(b, a, 'time_min_s'):.2f}, peak memory x{ratio(b, a, 'peak_mb'):.2f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096, 16384])
    p.add_argument("--cases", nargs="+", default=None, help=f"default: {' '.join(default_cases())}")
    p.add_argument("--repeats", type=int, default=3, help="timed passes per subprocess")
    p.add_argument("--rounds", type=int, default=1, help="run every case this many times, alternating")
    p.add_argument("--chunk-size", type=int, default=128, help="chunk of the causal linear attention")
    p.add_argument("--chunk-sweep", type=int, nargs="+", default=None,
                   help="instead of the cases: time linear-ropepool (or -nope) for these chunk sizes")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--mem-limit-gb", type=float, default=12.0)
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per (case, T)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--worker", nargs=2, metavar=("CASE", "T"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.repeats, args.chunk_size,
                                args.threads)))
        return 0

    import torch

    threads = args.threads or torch.get_num_threads()
    print(f"# torch {torch.__version__}, {os.cpu_count()} CPUs, threads {threads}, B={B} H={H} D={D} M={M}, "
          f"stripes.pe {'available' if _has_pe() else 'missing (nope only)'}")
    print(f"{'case':<18} {'T':>6} {'chunk':>6} {'t_min[s]':>10} {'t_med[s]':>10} {'peak[MB]':>10}")
    results = []
    if args.chunk_sweep:
        case = "linear-ropepool" if _has_pe() else "linear-nope"
        for t in args.sizes:
            for c in args.chunk_sweep:
                r = run_case(case, t, args, c)
                print(_fmt(r), flush=True)
                results.append(r)
    else:
        for t in args.sizes:
            merged: dict[str, dict] = {}
            for rnd in range(args.rounds):  # cases alternate within a round: shared-machine noise hits all
                for case in args.cases or default_cases():
                    if rnd and "skipped" in merged[case]:
                        continue
                    r = run_case(case, t, args, args.chunk_size)
                    if args.rounds > 1:
                        print(f"  round {rnd + 1}: " + _fmt(r), flush=True)
                    merged[case] = _merge(merged.get(case), r)
            for r in merged.values():
                print(_fmt(r), flush=True)
                results.append(r)
        print()
        for line in summarize(results):
            print(line)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=args.json.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(results, f, indent=1)
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
