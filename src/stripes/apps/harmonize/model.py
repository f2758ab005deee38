"""Loading the harmonizer model (shipped file or any run of ``stripes train``) and predicting a song.

The model is causal linear attention, so a whole song of T ticks goes through in one forward pass:
x (1, T, 256) = melody roll (128) + an empty bridge roll (128), pos (1, T, 12) = BIN chroma of the chord
at each tick -> probabilities (T, 128) of the piano roll.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stripes.apps.harmonize.errors import HarmonizeError
from stripes.errors import StripesError

SHIPPED_MODEL = Path(__file__).parent / "model" / "harmonizer.pt"
DEFAULT_THRESHOLD = 0.3
TRAIN_HINT = (
    "pass --checkpoint RUN_DIR (any run of `stripes train --context bin`) or train one with "
    "`stripes train --profile harmonizer --context bin --out runs/harmonizer`"
)


@dataclass
class LoadedModel:
    """A model ready to harmonize: the network (eval mode), its binarization and where it came from."""

    model: torch.nn.Module
    threshold: float
    merge: int | None
    source: str
    threshold_from: str


def _selected_from_metrics(run_dir: Path) -> dict[str, Any] | None:
    """The binarization ``stripes evaluate`` chose on validation (longest evaluated window first)."""
    found = sorted(
        run_dir.glob("metrics_*.json"),
        key=lambda p: -int(p.stem.split("_")[1]) if p.stem.split("_")[1].isdigit() else 0,
    )
    for path in found:
        try:
            sel = json.loads(path.read_text()).get("selected")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(sel, dict) and "threshold" in sel:
            return {"threshold": float(sel["threshold"]), "merge": sel.get("merge"), "from": path.name}
    return None


def shipped_accompanist() -> Path:
    """Where the shipped generative model lives: beside :data:`SHIPPED_MODEL` (``accompanist.pt``)."""
    return SHIPPED_MODEL.with_name("accompanist.pt")


def load_checked(checkpoint: str | Path | None, default: Path | None = None) -> tuple[Any, Any, dict, Path]:
    """(config, model, checkpoint dict, path) of ``checkpoint`` (else ``default``, else the shipped
    parallel model); any run of either task, as long as it uses the BIN context (12-dim chord chroma)."""
    from stripes.train.loop import load_run

    if checkpoint is None:
        path = SHIPPED_MODEL if default is None else default
        if not path.is_file():
            raise HarmonizeError(f"no shipped model ({path} is missing); {TRAIN_HINT}")
    else:
        path = Path(checkpoint)
        if not path.exists():
            raise HarmonizeError(f"--checkpoint {path}: no such file or folder; {TRAIN_HINT}")
    try:
        config, model, ck = load_run(path)
    except StripesError as exc:
        raise HarmonizeError(f"cannot load model: {exc}") from None
    contexts = [c.lower() for c in config.contexts]
    if contexts != ["bin"] or int(ck.get("context_dim", 12)) != 12:
        raise HarmonizeError(
            f"{path}: the model uses context {contexts}; the harmonizer needs a model "
            "trained with --context bin (12-dim chord chroma)"
        )
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    return config, model, ck, path


def loaded_from(config: Any, model: torch.nn.Module, ck: dict, path: Path) -> LoadedModel:
    """The parallel model of a loaded run, with its binarization (see :func:`load_model`)."""
    if getattr(config, "task", "harmonize") == "accompany":
        raise HarmonizeError(
            f"{path}: a generative (task=accompany) model cannot run in --mode parallel; "
            "use --mode generative (or auto)"
        )
    if getattr(config, "task", "harmonize") == "melody":
        raise HarmonizeError(f"{path}: a task=melody model writes a melody from a piano part (question 4), "
                             "not an accompaniment; give a harmonization model")
    extra = ck.get("extra") or {}
    threshold, merge, origin = DEFAULT_THRESHOLD, None, "default"
    if "threshold" in extra:
        threshold, merge, origin = float(extra["threshold"]), extra.get("merge"), "stored with the model"
    else:
        run_dir = path if path.is_dir() else path.parent.parent
        sel = _selected_from_metrics(run_dir)
        if sel is not None:
            threshold, merge, origin = sel["threshold"], sel["merge"], f"chosen on validation ({sel['from']})"
    return LoadedModel(model.eval(), threshold, None if merge is None else int(merge), str(path), origin)


def load_model(checkpoint: str | Path | None = None) -> LoadedModel:
    """The shipped model (``checkpoint=None``) or a run folder / checkpoint / inference file.

    The model must use the BIN context (12-dim chord chroma). Its binarization comes from the inference
    file's ``extra`` (threshold, merge), else from the run's ``metrics_*.json`` (``stripes evaluate``),
    else :data:`DEFAULT_THRESHOLD`."""
    return loaded_from(*load_checked(checkpoint))


def predict_probs(loaded: LoadedModel, melody_roll: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    """(T, 128) melody roll and (T, 12) chroma -> (T, 128) float32 piano-roll probabilities."""
    from stripes.train.predict import forward_logits

    T = melody_roll.shape[0]
    x = torch.zeros(1, T, 256)
    x[0, :, :128] = torch.from_numpy(np.asarray(melody_roll, np.float32))
    pos = torch.from_numpy(np.asarray(chroma, np.float32))[None]
    logits = forward_logits(loaded.model, x, pos)
    return torch.sigmoid(logits[0]).numpy()


def choose_notes(
    probs: np.ndarray, threshold: float, merge: int | None, seed: int | None = None
) -> np.ndarray:
    """Binary (T, 128) accompaniment roll: ``probs >= threshold`` (then gaps of <= merge ticks filled).

    With ``seed``: a variation, notes of the roll at half the threshold are kept with probability
    min(1, mean probability over the note / threshold), drawn from ``numpy.random.default_rng(seed)``."""
    from stripes.metrics import binarize, extract_notes

    if seed is None:
        return binarize(probs, threshold, merge)
    rng = np.random.default_rng(seed)
    cand = binarize(probs, threshold / 2, merge)
    out = np.zeros_like(cand)
    for pitch, on, off in extract_notes(cand):
        p = float(np.mean(probs[on:off, pitch]))
        if rng.random() < min(1.0, p / max(threshold, 1e-6)):
            out[on:off, pitch] = True
    return out
