"""Training loop: Adam, warm-up + StepLR, length curriculum, clipping, checkpoints, resume, DDP.

Run folder layout (docs/architecture.md): ``config.json``, ``checkpoints/{last,best}.pt``, ``log.csv``
(one row per epoch) and, when tensorboard is installed and enabled, ``tb/``.

Determinism: the model is initialised after seeding torch/numpy/random with ``config.seed``; the
order of training windows in epoch e is a permutation drawn from a generator seeded by (seed, e); all
RNG states are stored in every checkpoint, so resuming from ``last.pt`` (written at the end of each
epoch) continues exactly as the uninterrupted run.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from stripes.config import RunConfig
from stripes.errors import BudgetExceeded, TrainingError
from stripes.fileio import atomic_write_text
from stripes.models import Harmonizer, build_model
from stripes.train.checkpoint import (
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from stripes.train.checkpoint import load_run as load_run  # re-exported: its historical home
from stripes.train.data import collate, make_dataset, random_subset, spread_subset
from stripes.train.schedule import curriculum_length, lr_factor

LOG_FIELDS = [
    "epoch",
    "step",
    "lr",
    "train_loss",
    "val_bce",
    "val_cs",
    "val_ssmd",
    "val_gs",
    "val_ndd",
    "val_onset_f1",
    "val_frame_f1",
    "ticks_per_s",
    "seconds",
]


@dataclass
class TrainHooks:
    """Test hooks. ``on_batch(step, batch) -> batch`` may alter a batch; ``after_epoch(epoch)`` runs after
    the checkpoints of an epoch are written (raise there to simulate a killed run)."""

    on_batch: Callable[[int, dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None
    after_epoch: Callable[[int], None] | None = None


def parse_deadline(text: str) -> float:
    """``$STRIPES_DEADLINE`` (seconds since the epoch) as a float; a clear error when it is not a number."""
    try:
        return float(text)
    except ValueError:
        raise TrainingError(f"STRIPES_DEADLINE must be seconds since the epoch, got {text!r}") from None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _device(config: RunConfig) -> torch.device:
    want = config.train.device
    if want == "cuda" and not torch.cuda.is_available():
        raise TrainingError("train.device=cuda but CUDA is not available")
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want == "cuda" and dist.is_initialized():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device(want)


def _init_distributed() -> tuple[int, int]:
    """Join the torchrun process group when WORLD_SIZE > 1 (gloo on CPU, nccl on GPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


ACCOMPANY_LOG_FIELDS = ["epoch", "step", "lr", "train_loss", "val_nll", "val_count_nll", "val_onset_nll",
                        "val_hold_nll", "ticks_per_s", "seconds"]


def _write_log(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    # the accompaniment model logs its NLL terms instead of the BCE and the thresholded metrics
    fields = ACCOMPANY_LOG_FIELDS if rows and "val_nll" in rows[0] else LOG_FIELDS
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    atomic_write_text(path, buf.getvalue())


def _batches(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Shuffled full batches of epoch ``epoch`` (the incomplete last batch is dropped)."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    perm = torch.randperm(n, generator=g).tolist()
    return [perm[i : i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]


def validate(
    model: Harmonizer,
    dataset: Any,
    indices: list[int],
    batch_size: int,
    device: torch.device,
    metric_windows: int = 0,
    max_len: int | None = None,
) -> dict[str, float]:
    """Mean validation BCE over ``indices`` (mean of per-window means, :func:`stripes.train.predict.predict`,
    the same path as ``stripes evaluate``) and mean metrics at threshold 0.5 on the first windows."""
    from stripes.metrics import binarize, compute_metrics
    from stripes.train.predict import mean_window_bce, predict

    windows, rows = [], []
    for w in predict(model, dataset, indices, batch_size, device, max_len=max_len):
        windows.append({"bce_pos": w["bce_pos"]})
        if len(rows) < metric_windows:
            rows.append(compute_metrics(binarize(w["probs"], 0.5), w["target"]))
    out = {"val_bce": mean_window_bce(windows)}
    for k in ("cs", "ssmd", "gs", "ndd", "onset_f1", "frame_f1"):
        if rows:
            out[f"val_{k}"] = float(np.mean([r[k] for r in rows]))
    return out


def train(
    config: RunConfig,
    out_dir: str | Path,
    resume: bool = False,
    data_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    *,
    progress: bool = True,
    stop_after_epoch: int | None = None,
    hooks: TrainHooks | None = None,
    deadline: float | None = None,
) -> Path:
    """Train one run into ``out_dir`` and return it. ``stop_after_epoch=k`` ends after epoch k (1-based),
    as if the run had been killed there; ``resume=True`` continues from ``checkpoints/last.pt``.

    ``deadline`` (a ``time.time()`` value; default ``$STRIPES_DEADLINE``): after each epoch's checkpoint, when
    another epoch of the same length would end past it, training stops with :class:`BudgetExceeded` (the run
    resumes exactly with ``resume=True``)."""
    if deadline is None and os.environ.get("STRIPES_DEADLINE"):
        deadline = parse_deadline(os.environ["STRIPES_DEADLINE"])
    out = Path(out_dir)
    rank, world = _init_distributed()
    is_main = rank == 0
    hooks = hooks or TrainHooks()
    tc = config.train
    device = _device(config)
    if tc.batch_size % world:
        raise TrainingError(
            f"train.batch_size ({tc.batch_size}) must be divisible by the world size ({world})"
        )

    train_ds = make_dataset(config, "train", config.data.bars, data_root, cache_dir)
    val_ds = make_dataset(config, "val", config.data.bars, data_root, cache_dir)
    train_idx = random_subset(len(train_ds), tc.max_train_windows, config.seed)
    val_idx = spread_subset(len(val_ds), tc.max_val_windows)
    if len(train_idx) < tc.batch_size:
        raise TrainingError(f"only {len(train_idx)} training windows for batch size {tc.batch_size}")
    if not val_idx:
        raise TrainingError("the validation split has no windows")
    manifest = str(getattr(train_ds, "manifest_hash", ""))
    window_len = int(train_ds.window_len)
    max_len = min(tc.max_len or window_len, window_len)
    steps_per_epoch = len(train_idx) // tc.batch_size
    curriculum_steps = round(tc.curriculum_epochs * steps_per_epoch)

    ckpt_dir = out / "checkpoints"
    cfg_dict = config.to_dict()
    seed_everything(config.seed)
    accompany = config.task == "accompany"  # the autoregressive model: stripes.train.generative
    if accompany:
        from stripes.models.accompanist import build_accompanist
        from stripes.train.generative import onset_rolls, teacher_forced_loss, validate_accompanist

        model = build_accompanist(config, int(train_ds.context_dim)).to(device)
    else:
        model = build_model(config, int(train_ds.context_dim)).to(device)
    val_key = "val_nll" if accompany else "val_bce"
    optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, tc.warmup_steps, steps_per_epoch, tc.lr_gamma)
    )
    start_epoch, step, best_val, history = 0, 0, math.inf, []

    if resume:
        last = ckpt_dir / "last.pt"
        if not last.is_file():
            raise TrainingError(f"--resume: no checkpoint at {last}")
        ck = load_checkpoint(last)
        try:
            saved = RunConfig.from_dict(ck["config"]).to_dict()  # older checkpoints: fill new defaults
        except Exception:  # noqa: BLE001 - an unreadable config is reported like a differing one
            saved = ck.get("config", {})
        if saved != cfg_dict:
            from stripes.config import config_diff

            diff = "; ".join(config_diff(saved, cfg_dict)[:6])
            raise TrainingError(f"--resume: the config differs from the one in {last} ({diff})")
        if ck.get("manifest_hash", "") != manifest:
            raise TrainingError(
                "--resume: the prepared data changed since the checkpoint (manifest hash differs)"
            )
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(ck["scheduler"])
        start_epoch, step, best_val, history = ck["epoch"], ck["step"], ck["best_val"], ck["history"]
        set_rng_state(ck["rng"])
    elif is_main:
        if (ckpt_dir / "last.pt").exists():
            raise TrainingError(f"{out} already holds a run; use --resume or another --out")
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "config.json", json.dumps(cfg_dict, indent=2) + "\n")

    net: torch.nn.Module = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    use_bf16 = tc.bf16 and device.type == "cuda"
    tb = None
    if is_main and tc.tensorboard:
        try:
            from torch.utils.tensorboard import SummaryWriter

            tb = SummaryWriter(str(out / "tb"))
        except Exception:  # tensorboard is optional
            tb = None

    def state(epoch: int) -> dict[str, Any]:
        return {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng_state(),
            "config": cfg_dict,
            "manifest_hash": manifest,
            "epoch": epoch,
            "step": step,
            "best_val": best_val,
            "history": history,
            "context_dim": int(train_ds.context_dim),
            "window_len": window_len,
            "world_size": world,
        }

    end_epoch = tc.epochs if stop_after_epoch is None else min(tc.epochs, stop_after_epoch)
    augment = config.data.transpose is not None or config.data.bridge_dropout > 0
    if augment:
        from stripes.train.augment import augment_batch
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    longest_epoch = 0.0  # wall seconds of the longest epoch so far, validation and checkpoints included
    for epoch in range(start_epoch, end_epoch):
        net.train()
        t0 = time.perf_counter()
        losses: list[float] = []
        ticks = 0
        batches = _batches(len(train_idx), tc.batch_size, config.seed, epoch)
        bar = None
        if tqdm is not None and progress and is_main:
            bar = tqdm(  # disable=None: no bar when stderr is not a terminal (logs get the epoch line)
                total=len(batches), desc=f"epoch {epoch + 1}/{tc.epochs}", leave=False, dynamic_ncols=True,
                disable=None,
            )
        for batch_pos in batches:
            length = curriculum_length(step, curriculum_steps, tc.curriculum_min_len, max_len)
            mine = batch_pos[rank::world]
            b = collate([train_ds[train_idx[i]] for i in mine])
            if accompany:
                b["onset"] = onset_rolls(train_ds, [train_idx[i] for i in mine])
            if augment:
                # one generator per step: deterministic, and exact on resume without extra state
                aug_seed = config.seed * 1_000_003 + step * world + rank
                tr = config.data.transpose
                shifts = None if tr is None else (int(tr[0]), int(tr[1]))
                raw = b
                b = augment_batch(raw, torch.Generator().manual_seed(aug_seed), shifts,
                                  config.data.bridge_dropout, config.contexts)
                if accompany:  # the onset roll moves with the piano: the same draws, applied to it
                    same = torch.Generator().manual_seed(aug_seed)
                    b["onset"] = augment_batch({**raw, "y": raw["onset"]}, same, shifts,
                                               config.data.bridge_dropout, config.contexts)["y"]
            if hooks.on_batch is not None:
                b = hooks.on_batch(step, b)
            x, y, pos = (b[k][:, :length].to(device) for k in ("x", "y", "pos"))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                if accompany:
                    loss = teacher_forced_loss(net, x, pos, b["onset"][:, :length].to(device), y)
                else:
                    loss = Harmonizer.loss(net(x, pos), y)
            loss_val = loss.detach().clone()
            if world > 1:
                dist.all_reduce(loss_val)
                loss_val /= world
            lv = float(loss_val)
            if not math.isfinite(lv):
                where = ckpt_dir / "last.pt"
                kept = (
                    f"last good checkpoint kept at {where}" if where.exists() else "no checkpoint written yet"
                )
                raise TrainingError(
                    f"non-finite training loss ({lv}) at epoch {epoch + 1}, step {step}; {kept}"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if tc.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            optimizer.step()
            scheduler.step()
            step += 1
            losses.append(lv)
            ticks += length * tc.batch_size
            if bar is not None:
                rate = ticks / max(time.perf_counter() - t0, 1e-9)
                bar.set_postfix(loss=f"{lv:.4f}", len=length, ticks_s=f"{rate:.0f}")
                bar.update()
        if bar is not None:
            bar.close()
        seconds = time.perf_counter() - t0
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "step": step,
            "lr": optimizer.param_groups[0]["lr"],
            "train_loss": float(np.mean(losses)),
            "ticks_per_s": ticks / max(seconds, 1e-9),
            "seconds": seconds,
        }
        if is_main:
            rng = rng_state()  # validation must not change the training random streams
            if accompany:
                row.update(validate_accompanist(model, val_ds, val_idx, tc.batch_size, device))
            else:
                row.update(validate(model, val_ds, val_idx, tc.batch_size, device, tc.val_metrics_windows,
                                    max_len=None))
            set_rng_state(rng)
            history.append(row)
            improved = row[val_key] < best_val
            if improved:
                best_val = row[val_key]
            st = state(epoch + 1)
            if improved:  # best first: a crash between the two writes leaves last.pt to redo the epoch
                save_checkpoint(ckpt_dir / "best.pt", st)
            save_checkpoint(ckpt_dir / "last.pt", st)
            _write_log(out / "log.csv", history)
            if tb is not None:
                for k, v in row.items():
                    if k != "epoch" and isinstance(v, float):
                        tb.add_scalar(k, v, epoch + 1)
            if progress:
                print(
                    f"epoch {epoch + 1}/{tc.epochs}: train {row['train_loss']:.4f}"
                    + (f"  val NLL {row['val_nll']:.4f} nats/tick" if accompany else
                       f"  val BCE {row['val_bce']:.4f}"
                       f"  val onset F1 {row.get('val_onset_f1', float('nan')):.3f}")
                    + f"  ({seconds:.0f} s)",
                    flush=True,
                )
        if world > 1:
            dist.barrier()
        if hooks.after_epoch is not None:
            hooks.after_epoch(epoch + 1)
        longest_epoch = max(longest_epoch, time.perf_counter() - t0)
        if deadline is not None and epoch + 1 < end_epoch and time.time() + longest_epoch > deadline:
            if tb is not None:
                tb.close()
            raise BudgetExceeded(f"time budget reached after epoch {epoch + 1}/{tc.epochs} of {out} "
                                 "(checkpoint written; run again to resume)")
    if tb is not None:
        tb.close()
    return out
