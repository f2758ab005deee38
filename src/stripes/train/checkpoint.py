"""Safe checkpoints: tensors and plain Python values only, always loaded with ``weights_only=True``.

Two kinds of file, both ``torch.save`` dictionaries:

- a **training checkpoint** (``checkpoints/last.pt`` / ``best.pt``): model, optimizer and scheduler states,
  RNG states as tensors (:func:`rng_state`), the config as a dict, history and counters;
- an **inference file** (:func:`save_inference`, ``format == "stripes-inference"``): the config, the model
  weights (random features of FAVOR+ / F-StrIPE are buffers, so they travel with it) and small metadata
  such as the binarization chosen on validation. This is the file a harmonizer ships.

Loading never unpickles code: ``torch.load(..., weights_only=True)`` refuses any global that is not a
tensor or a plain value, and :func:`load_checkpoint` turns that refusal into a one-line
:class:`~stripes.errors.CheckpointError` that names the file. Checkpoints written by stripes before this
format (numpy RNG state inside) are converted by ``stripes checkpoint convert OLD NEW``, which allows the
numpy array reconstructors only, never arbitrary globals.
"""

from __future__ import annotations

import io
import pickle
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from stripes.errors import CheckpointError
from stripes.fileio import atomic_write_bytes

if TYPE_CHECKING:
    from stripes.config import RunConfig
    from stripes.models import Harmonizer

INFERENCE_FORMAT = "stripes-inference"
INFERENCE_VERSION = 1


# --------------------------------------------------------------------------------------------- RNG state


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch RNG states as tensors and plain values (safe under ``weights_only``)."""
    py_version, py_state, py_gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": int(py_version), "state": torch.tensor(py_state, dtype=torch.int64),
                   "gauss": py_gauss},
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    nps = state["numpy"]
    np.random.set_state((nps["kind"], nps["keys"].numpy().astype(np.uint32), nps["pos"], nps["has_gauss"],
                         nps["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------------------------- save/load


def _check_plain(value: Any, where: str) -> None:
    """Raise CheckpointError for anything ``weights_only`` loading would refuse (checked before saving)."""
    if isinstance(value, (torch.Tensor, str, int, float, bool, type(None), torch.dtype, torch.device)):
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                raise CheckpointError(f"checkpoint key {where}[{k!r}] is not a str or int")
            _check_plain(v, f"{where}[{k!r}]")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    raise CheckpointError(f"checkpoint value {where} has type {type(value).__name__}; only tensors and plain "
                          "Python values may be saved")


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` (tensors and plain values only) atomically to ``path``."""
    _check_plain(state, "state")
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; a file that needs code to unpickle is refused."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "global" not in text.lower():  # not a refused global: a damaged or foreign file
            why = text.strip().splitlines()[-1][:200] if text.strip() else type(exc).__name__
            raise CheckpointError(f"cannot read checkpoint {path}: damaged or foreign ({why})") from None
        why = next(ln.strip() for ln in text.splitlines() if "global" in ln.lower())
        raise CheckpointError(
            f"refusing to load {path}: it holds objects other than tensors and plain values ({why[:160]}). "
            "If it is a checkpoint written by an older stripes that you trust, convert it with "
            f"`stripes checkpoint convert {path} NEW.pt`"
        ) from None
    except Exception as exc:  # truncated, corrupt or not a torch file
        raise CheckpointError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(ck, dict):
        raise CheckpointError(f"{path} is not a stripes checkpoint (top level is {type(ck).__name__})")
    return ck


def save_inference(path: str | Path, model: torch.nn.Module, config: dict[str, Any], *,
                   context_dim: int, extra: dict[str, Any] | None = None) -> None:
    """Small inference file: config dict, model weights (float32) and ``extra`` metadata (plain values)."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    save_checkpoint(path, {
        "format": INFERENCE_FORMAT,
        "version": INFERENCE_VERSION,
        "config": config,
        "context_dim": int(context_dim),
        "model": state,
        "extra": dict(extra or {}),
    })


def export_inference(run_dir: str | Path, dest: str | Path, which: str = "best", bars: int = 16) -> Path:
    """Inference file of a run folder: its ``which`` checkpoint's weights and config, plus the binarization
    chosen on validation (``metrics_{bars}.json``) and the validation/test BCE when the run was evaluated."""
    import json

    run = Path(run_dir)
    config, model, ck = load_run(run, which)
    extra: dict[str, Any] = {"source_run": run.name, "epoch": ck.get("epoch"),
                             "best_val_bce": ck.get("best_val")}
    mfile = run / f"metrics_{bars}.json"
    m = json.loads(mfile.read_text()) if mfile.is_file() else {}
    if m and m.get("checkpoint", "best") != which:
        m = {}  # that binarization was chosen for the other checkpoint's weights: do not attach it
    if m:
        sel = m.get("selected", {})
        extra.update(threshold=sel.get("threshold"), merge=sel.get("merge"), test_bce=m.get("bce"),
                     test_onset_f1=m.get("at_selected", {}).get("onset_f1"), eval_bars=bars)
    save_inference(dest, model, config.to_dict(), context_dim=int(ck["context_dim"]),
                   extra={k: v for k, v in extra.items() if v is not None})
    return Path(dest)


def is_inference(ck: dict[str, Any]) -> bool:
    """True for a dict read from a :func:`save_inference` file."""
    return ck.get("format") == INFERENCE_FORMAT


def convert_legacy(src: str | Path, dest: str | Path) -> Path:
    """Rewrite a pre-safe-format training checkpoint (numpy RNG state pickled as arrays) in the safe format.

    Only numpy's array/dtype reconstructors are allowed while reading; any other global is still refused."""
    src, dest = Path(src), Path(dest)
    if not hasattr(torch.serialization, "safe_globals"):
        raise CheckpointError("converting old checkpoints needs torch >= 2.5 (safe_globals)")
    allowed: list[Any] = [np.ndarray, np.dtype]
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        try:
            allowed.append(__import__(mod, fromlist=["_reconstruct"])._reconstruct)
        except (ImportError, AttributeError):
            pass
    allowed += [type(np.dtype(t)) for t in ("uint32", "int64", "float64", "float32")]
    try:
        with torch.serialization.safe_globals(allowed):
            ck = torch.load(src, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"cannot convert {src}: it holds objects beyond numpy arrays ({exc})") from None
    except Exception as exc:
        raise CheckpointError(f"cannot read checkpoint {src}: {type(exc).__name__}: {exc}") from None
    if not isinstance(ck, dict) or not isinstance(ck.get("rng", {}), dict):
        raise CheckpointError(f"cannot convert {src}: not a stripes training checkpoint (no rng state dict)")
    rng = ck.get("rng", {})
    if isinstance(ck.get("config"), dict):  # fill keys added since (data.transpose, ...) so --resume matches
        from stripes.config import RunConfig

        try:
            ck["config"] = RunConfig.from_dict(ck["config"]).to_dict()
        except Exception:  # noqa: BLE001 - keep a config this version cannot read as it is
            pass
    if isinstance(rng.get("numpy"), tuple):
        kind, keys, pos, has_gauss, cached = rng["numpy"]
        rng["numpy"] = {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                        "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)}
    if isinstance(rng.get("python"), tuple):
        v, st, g = rng["python"]
        rng["python"] = {"version": int(v), "state": torch.tensor(st, dtype=torch.int64), "gauss": g}
    save_checkpoint(dest, _plain(ck))
    return dest


def _plain(value: Any) -> Any:
    """numpy scalars/arrays -> Python values / tensors, recursively."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, np.generic):
        return value.item()
    return value


def load_run(
    path: str | Path, which: str = "best"
) -> tuple[RunConfig, Harmonizer, dict[str, Any]]:
    """(config, model in eval mode, checkpoint dict) from a run folder (``checkpoints/{which}.pt``, falling
    back to ``last.pt`` when ``best.pt`` is absent), a training checkpoint file or an inference file
    (:func:`stripes.train.checkpoint.save_inference`). Always loaded with ``weights_only=True``."""
    from stripes.config import RunConfig
    from stripes.errors import ConfigError
    from stripes.models import build_model  # noqa: F811 (runtime import; the names above are for typing)

    p = Path(path)
    if p.is_dir():
        ckpt = p / "checkpoints" / f"{which}.pt"
        if which == "best" and not ckpt.is_file():
            ckpt = p / "checkpoints" / "last.pt"
        if not ckpt.is_file():
            raise CheckpointError(f"{p} is not a run folder (no checkpoints/{which}.pt)")
        p = ckpt
    ck = load_checkpoint(p)
    if "config" not in ck or "model" not in ck or "context_dim" not in ck:
        raise CheckpointError(f"{p} is not a stripes checkpoint (needs config, model and context_dim)")
    try:
        config = RunConfig.from_dict(ck["config"])
    except ConfigError as exc:
        raise CheckpointError(f"{p}: its config is not valid for this stripes version: {exc}") from None
    if config.task == "accompany":  # the autoregressive accompaniment model
        from stripes.models.accompanist import build_accompanist

        model = build_accompanist(config, int(ck["context_dim"]))
    else:
        model = build_model(config, int(ck["context_dim"]))
    try:
        model.load_state_dict(ck["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"{p}: weights do not fit the model of its config: {str(exc)[:300]}") from None
    model.eval()
    ck.setdefault("inference", is_inference(ck))
    return config, model, ck
