"""Finished run folders as data: labels (paper names of methods and contexts), :class:`Run`, collection,
learning-rate selection and **every choice a report makes, on validation only**.

A run folder holds ``config.json`` (the resolved config), ``log.csv`` (per-epoch validation BCE) and
``metrics_{bars}.json`` (test metrics written by :mod:`stripes.experiments.evaluate`). Choices between
runs of one table (learning rate, best RoPE variant per context, best method per context) use the mean
over seeds of each run's best validation BCE (:attr:`Run.val_bce`), never a test score.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stripes.errors import DataError

METRICS = ("cs", "ssmd", "gs", "ndd")
HIGHER = {"cs": True, "ssmd": False, "gs": True, "ndd": False,
          "bce": False, "onset_f1": True, "frame_f1": True}
# threshold-free test BCE and note-level F1 (at the selected binarization); shown x100
EXTRA_COLUMNS: tuple[tuple[str, int], ...] = tuple(
    (m, b) for m in ("bce", "onset_f1", "frame_f1") for b in (16, 64))
EXTRA_NAMES = {"bce": "BCE×100", "onset_f1": "onset F1 %", "frame_f1": "frame F1 %"}
P1_CONTEXTS = ("TIME", "REP", "KEY", "BIN")
ROPES = ("RoPE(A)", "RoPE(B)", "RoPE(C)")
P1_T3_OTHERS = ("F-StrIPE₁", "RoPEPool")
P2_METHODS = ("NoPE", "S S-RPE", "SPE", "F-StrIPE", "F-StrIPE:M", "F-StrIPE:C", "F-StrIPE:P", "F-StrIPE:SFF",
              "F-StrIPE:SFF:C")
SETTINGS = {
    "at_selected": "binarization selected on validation (onset F1)",
    "at_0.5": "fixed 0.5 threshold (comparable to P1)",
}
ALPHA = 0.05
_P2_LEVELS = {"melody": "M", "m": "M", "chord": "C", "c": "C", "phrase": "P", "p": "P"}


# ------------------------------------------------------------------------------------------------ labels


def _contexts(cfg: dict[str, Any]) -> list[str]:
    c = cfg.get("context", "time")
    return [c] if isinstance(c, str) else list(c)


def context_label(cfg: dict[str, Any]) -> str:
    """``"bin"`` -> ``"BIN"``; several contexts -> ``"MELODY+CHORD+PHRASE"``; a learned context (question 2,
    ``model.context_learner``) -> ``"BIN:linear"``."""
    label = "+".join(c.upper() for c in _contexts(cfg))
    learner = cfg.get("model", {}).get("context_learner", "none")
    return label if learner in (None, "none") else f"{label}:{learner}"


def method_label(cfg: dict[str, Any]) -> str:
    """Paper name of a run's method from its resolved config (pe, pe_options, context)."""
    pe = cfg.get("pe", "")
    opts = cfg.get("model", {}).get("pe_options", {}) or {}
    if pe == "rope":
        return f"RoPE({opts.get('variant', 'C')})"
    if pe in ("fstripe", "fstripe_sff"):
        levels = [_P2_LEVELS.get(c.lower()) for c in _contexts(cfg)]
        base = "F-StrIPE" if pe == "fstripe" else "F-StrIPE:SFF"
        if None in levels:
            return f"{base}[{context_label(cfg)}]"
        if sorted(levels, key="MCP".index) == ["M", "C", "P"]:  # type: ignore[arg-type]
            return base
        return f"{base}:{''.join(sorted(levels, key='MCP'.index))}"  # type: ignore[arg-type]
    names = {"nope": "NoPE", "srpe": "S S-RPE", "spe": "SPE", "fstripe1": "F-StrIPE₁", "ropepool": "RoPEPool",
             "ape": "APE", "sape": "S-APE"}
    return names.get(pe, pe)


def cli_method(cfg: dict[str, Any]) -> str:
    """A run's method as the CLI spells it: ``ropepool``, ``rope_c``, ``fstripe1``, ``fstripe``, ..."""
    pe = str(cfg.get("pe", ""))
    if pe == "rope":
        opts = cfg.get("model", {}).get("pe_options", {}) or {}
        return f"rope_{str(opts.get('variant', 'C')).lower()}"
    return pe


# ------------------------------------------------------------------------------------------------- runs


@dataclass
class Run:
    """One finished (or partly evaluated) run folder."""

    path: Path
    config: dict[str, Any]
    metrics: dict[int, dict[str, Any]]
    val_bce: float | None = None
    pianorolls: list[Path] = field(default_factory=list)
    train_cost: tuple[int | None, float | None] = (None, None)  # (steps, seconds) from log.csv

    @property
    def method(self) -> str:
        return method_label(self.config)

    @property
    def context(self) -> str:
        return context_label(self.config)

    @property
    def lr(self) -> float:
        return float(self.config.get("train", {}).get("lr", float("nan")))

    @property
    def seed(self) -> int:
        return int(self.config.get("seed", 0))

    @property
    def task(self) -> str:
        """``harmonize`` (P1's task), ``melody`` (question 4: the melody from the piano) or ``accompany``."""
        return str(self.config.get("task", "harmonize"))


def _train_cost(log: Path) -> tuple[int | None, float | None]:
    """(last step, summed epoch seconds) of a training log; None for what it does not record."""
    try:
        with open(log, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError:
        return None, None
    try:
        steps: int | None = int(float(rows[-1]["step"]))
    except (KeyError, ValueError, IndexError, TypeError):
        steps = None
    try:
        secs: float | None = float(sum(float(r["seconds"]) for r in rows)) if rows else None
    except (KeyError, ValueError, TypeError):
        secs = None
    return steps, secs


def _best_val_bce(log: Path) -> float | None:
    try:
        with open(log, newline="") as fh:
            vals = [float(r["val_bce"]) for r in csv.DictReader(fh) if r.get("val_bce") not in (None, "")]
    except (OSError, KeyError, ValueError):
        return None
    vals = [v for v in vals if math.isfinite(v)]
    return min(vals) if vals else None


def load_run(path: str | os.PathLike) -> Run | None:
    """A run from its folder, or None when it has no metrics yet. Malformed files raise DataError."""
    p = Path(path)
    try:
        config = json.loads((p / "config.json").read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{p / 'config.json'} is not valid JSON: {exc}") from exc
    try:  # one spelling per config (older runs: new keys take their defaults)
        from stripes.config import RunConfig

        config = RunConfig.from_dict(config).to_dict()
    except Exception:  # noqa: BLE001 - a config of another version is compared as written
        pass
    metrics: dict[int, dict[str, Any]] = {}
    for f in sorted(p.glob("metrics_*.json")):
        stem = f.stem.split("_", 1)[1]
        if not stem.isdigit():
            continue
        try:
            m = json.loads(f.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{f} is not valid JSON: {exc}") from exc
        if "at_selected" not in m or "at_0.5" not in m:
            raise DataError(f"{f} lacks 'at_selected' / 'at_0.5' (not a metrics file of stripes.evaluate)")
        metrics[int(stem)] = m
    if not metrics:
        return None
    pngs = sorted(p.glob("examples_*/*.png"))
    return Run(p, config, metrics, _best_val_bce(p / "log.csv"), pngs, _train_cost(p / "log.csv"))


def collect_runs(paths: Sequence[str | os.PathLike]) -> list[Run]:
    """Runs found in ``paths``: each a run folder or a folder holding run folders (two levels deep)."""
    found: dict[Path, Run] = {}
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise DataError(f"no such run folder: {p}")
        cands = [p] if (p / "config.json").is_file() else sorted(
            {c.parent for pat in ("*/config.json", "*/*/config.json") for c in p.glob(pat)})
        for c in cands:
            r = load_run(c)
            if r is not None:
                found[c.resolve()] = r
    return list(found.values())


# the files that make a run folder reportable and resumable-by-skip, without its checkpoints
RECORD_FILES = ("config.json", "log.csv", "status.json", "sweep_run.json", "DONE")


def export_runs(runs: Sequence[Run], dest: str | os.PathLike, pngs: bool = True) -> list[Path]:
    """Copy the record of each run (config, log, metrics_<bars>.json, status, DONE; with ``pngs`` its example
    pianorolls) into ``dest/<run name>/``, without checkpoints or per-window CSVs: a folder small enough to
    commit, that ``stripes report`` reads and that a sweep skips as finished. Each run is written to a
    temporary folder first and then renamed, so an interrupted export leaves no half-copied run. Returns
    the new run folders."""
    import shutil

    root = Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    names = [r.path.name for r in runs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DataError(f"two runs share the folder name {dup[0]}: export them to separate folders")
    out = []
    for r in runs:
        files = [r.path / f for f in RECORD_FILES if (r.path / f).is_file()]
        files += [f for f in sorted(r.path.glob("metrics_*.json")) if f.stem.split("_", 1)[1].isdigit()]
        files += sorted(r.path.glob("metrics_*_positions.json"))  # question 3: BCE per bar (eval.positions)
        if pngs:
            files += r.pianorolls
        target = root / r.path.name
        if target.resolve() == r.path.resolve():  # re-reporting from the exported copy
            out.append(target)
            continue
        tmp = root / f".{r.path.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        for f in files:
            rel = f.relative_to(r.path)
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, tmp / rel)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
        out.append(target)
    return out


def check_cells(runs: Sequence[Run]) -> None:
    """Refuse to pool runs that are not seeds of one experiment: within a (context, method) cell every run
    must have the same config apart from ``seed`` and ``train.lr``, and no (cell, lr, seed) may appear twice.
    Raises DataError naming the folders and the differing keys."""
    from stripes.config import config_diff

    def key(cfg: dict[str, Any]) -> dict[str, Any]:
        k = json.loads(json.dumps(cfg))
        k.pop("seed", None)
        k.get("train", {}).pop("lr", None)
        return k

    cells: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for r in runs:
        cells[(r.context, r.method)].append(r)
    for (ctx, m), rs in cells.items():
        ref = key(rs[0].config)
        for r in rs[1:]:
            diff = config_diff(ref, key(r.config))
            if diff:
                raise DataError(f"{ctx} {m}: {rs[0].path} and {r.path} differ beyond seed and lr "
                                f"({'; '.join(diff[:4])}); report them separately")
        seen: dict[tuple[float, int], Path] = {}
        for r in rs:
            if (r.lr, r.seed) in seen:
                first = seen[(r.lr, r.seed)]
                raise DataError(f"{ctx} {m}: seed {r.seed} (lr {r.lr:g}) appears twice: {first} and "
                                f"{r.path}; remove one")
            seen[(r.lr, r.seed)] = r.path


def select_lr(runs: Sequence[Run]) -> tuple[list[Run], dict[tuple[str, str], float]]:
    """Per (context, method) keep the runs of the learning rate with the lowest mean validation BCE (ties or
    no log: the lr with most seeds, then the smallest). Returns the kept runs and the chosen lr per group."""
    groups: dict[tuple[str, str], dict[float, list[Run]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        groups[(r.context, r.method)][r.lr].append(r)
    kept: list[Run] = []
    chosen: dict[tuple[str, str], float] = {}
    for key, by_lr in groups.items():
        def score(lr: float, by_lr: dict[float, list[Run]] = by_lr) -> tuple[float, int, float]:
            vals = [r.val_bce for r in by_lr[lr] if r.val_bce is not None]
            return (float(np.mean(vals)) if vals else math.inf, -len(by_lr[lr]), lr)

        best = min(by_lr, key=score)
        chosen[key] = best
        kept.extend(sorted(by_lr[best], key=lambda r: r.seed))
    return kept, chosen


def scores(runs: Sequence[Run], setting: str, metric: str, bars: int) -> list[float]:
    """Per-seed values of one metric (runs lacking that evaluation are skipped). ``"bce"`` is threshold-free:
    it is read from the top level of the metrics whatever ``setting`` says."""
    out = []
    for r in runs:
        m = r.metrics.get(bars)
        if m is None:
            continue
        src = m if metric == "bce" else m.get(setting, {})
        if metric in src:
            out.append(float(src[metric]))
    return out


# ------------------------------------------------------------------------------------ validation choices

VALIDATION_SCORE = "mean validation BCE (best epoch of log.csv)"


def mean_val_bce(runs: Sequence[Run]) -> float:
    """Mean over runs of the best validation BCE (inf when no run has a training log)."""
    vals = [r.val_bce for r in runs if r.val_bce is not None]
    return float(np.mean(vals)) if vals else math.inf


def best_on_validation(groups: dict[tuple[str, str], list[Run]], ctx: str,
                       methods: Sequence[str]) -> str | None:
    """Of ``methods`` run in context ``ctx``, the one with the lowest :func:`mean_val_bce` (first on ties);
    None when none was run. Test scores play no part."""
    cands = [m for m in methods if groups.get((ctx, m))]
    if not cands:
        return None
    return min(cands, key=lambda m: mean_val_bce(groups[(ctx, m)]))
