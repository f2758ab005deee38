"""S-RPE benchmark: the one-hot path over distinct key labels vs the dense product, side by side.

P3's S-RPE adds q_m · W_s Sin(l_m − l_n) to every softmax logit. The dense product costs
Tq·Tk·C·2·d_model multiply-adds a layer; with few distinct labels per window (pitches, chords,
sections) the one-hot path costs Tq·Tk·ΣK_s. This script times one training step (forward, backward,
Adam) of the `cpu`-profile Harmonizer with S-RPE on melody+chord+phrase, on real POP909 training
batches when ``$STRIPES_DATA`` (or ``--data-root``) is set and on synthetic labels otherwise: the
(B, H, T, T) bias from the dense product (P3's cost), the bias from the one-hot path, and the default
(one-hot, folded into q and k: no bias tensor), with the loss each gives on the same batches. The last
row is the default with attention dropout on the whole (B, H, T, T) square, as SDPA's math path does it on
CPU, against the default's causal blocks (``stripes.attention.softmax.causal_blocks_attention``); its loss
differs by dropout noise only (other dropout masks).

    python benchmarks/bench_srpe.py [--batches 3] [--bars 16] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch

from stripes.attention import softmax as softmax_attention_module
from stripes.config import load_run_config
from stripes.models.harmonizer import build_model
from stripes.pe.srpe import _distinct_per_row
from stripes.train.data import collate, make_dataset


def batches(config, n: int, bars: int, data_root: str | None) -> list[dict[str, torch.Tensor]]:
    """The first ``n`` training batches of the `cpu` profile's batch size (real data or synthetic)."""
    try:
        ds = make_dataset(config, "train", bars, data_root=data_root)
        source = "POP909 train"
    except Exception as err:  # no data here: synthetic labels of a plausible spread
        print(f"(no POP909: {err}; synthetic labels)")
        g = torch.Generator().manual_seed(0)
        b, t = config.train.batch_size, 64 * bars
        out = []
        for _ in range(n):
            pos = torch.stack([torch.randint(55, 80, (b, t), generator=g),
                               torch.randint(0, 30, (b, t), generator=g),
                               torch.randint(0, 4, (b, t), generator=g)], -1).float()
            out.append({"x": torch.rand(b, t, 256, generator=g).round(), "pos": pos,
                        "y": torch.rand(b, t, 128, generator=g).lt(0.05).float()})
        return out
    bs = config.train.batch_size
    step = max(1, len(ds) // (n * bs))  # spread over songs
    print(f"{source}: {len(ds)} windows of {bars} bars; batches of {bs}")
    return [collate([ds[(i * bs + j) * step % len(ds)] for j in range(bs)]) for i in range(n)]


def step_seconds(options: str, data: list[dict[str, torch.Tensor]], block: int | None = None
                 ) -> tuple[float, list[float]]:
    """Mean seconds of a training step (after one warm-up step) and the losses, for S-RPE options;
    ``block`` overrides the query block of the CPU dropout path (a huge one: the whole square at once)."""
    default_block = softmax_attention_module.DROPOUT_BLOCK
    softmax_attention_module.DROPOUT_BLOCK = block or default_block
    try:
        return _timed_steps(options, data)
    finally:
        softmax_attention_module.DROPOUT_BLOCK = default_block


def _timed_steps(options: str, data: list[dict[str, torch.Tensor]]) -> tuple[float, list[float]]:
    torch.manual_seed(0)
    cfg = load_run_config("cpu", overrides=[
        "pe=srpe", "attention=softmax", 'context=["melody","chord","phrase"]', f"model.pe_options={options}"])
    model = build_model(cfg, context_dim=3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    times, losses = [], []
    for batch in [data[0], *data]:  # the first step warms up
        t0 = time.perf_counter()
        loss = model.loss(model(batch["x"], batch["pos"]), batch["y"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
        losses.append(loss.item())
    return sum(times[1:]) / len(times[1:]), losses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=3)
    ap.add_argument("--bars", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    config = load_run_config("cpu", overrides=[
        "pe=srpe", "attention=softmax", 'context=["melody","chord","phrase"]'])
    data = batches(config, args.batches, args.bars, args.data_root)
    ks = [[_distinct_per_row(b["pos"][..., s])[0].shape[1] for s in range(3)] for b in data]
    print(f"distinct labels per row (max over the batch), melody/chord/phrase: {ks}; "
          f"dense inner size C·2·d_model = {3 * 2 * config.model.d_model}")
    paths = {
        "bias tensor, dense (P3's way)": ('{"distinct": "never", "fold": false}', None),
        "bias tensor, one-hot": ('{"distinct": "auto", "fold": false}', None),
        "folded into q, k, one-hot (default)": ('{"distinct": "auto"}', None),
        "default, dropout on the whole square": ('{"distinct": "auto"}', 1 << 30),
    }
    results = {name: step_seconds(options, data, block) for name, (options, block) in paths.items()}
    base_time, base_loss = next(iter(results.values()))
    print(f"train step, B={config.train.batch_size}, T={64 * args.bars}, {args.threads} thread(s):")
    for name, (sec, loss) in results.items():
        drift = max(abs(a - b) for a, b in zip(loss, base_loss))
        print(f"  {name:38s} {sec:6.2f} s  speed-up {base_time / sec:4.1f}x  "
              f"largest loss difference over {len(loss)} steps {drift:.1e}")

if __name__ == "__main__":
    main()
