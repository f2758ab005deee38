"""The main job: data, two ``quick`` trainings (RoPEPool + BIN and a baseline), evaluation at 16 and 64
bars, a table of the results, and a predicted song as MIDI and PNG."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from stripes.errors import DataError
from stripes.fileio import atomic_write_bytes


def ensure_data(data_root: str | Path | None = None) -> Path:
    """Data root with POP909; fetched through :mod:`stripes.data` when it is not there yet."""
    from stripes import data

    root = Path(data.resolve_data_root(data_root))
    if (root / "POP909").is_dir():
        return root
    fetch = getattr(data, "fetch_data", None) or getattr(data, "fetch", None)
    if fetch is None:
        raise DataError(f"no POP909 data at {root} and stripes.data offers no fetch function")
    print(f"fetching POP909 and annotations into {root} ...", flush=True)
    fetch(root)
    return root


def results_table(rows: list[tuple[str, int, dict[str, Any]]]) -> str:
    """Plain-text table: model, bars, CS, SSMD, GS, NDD, onset F1 (selected binarization), BCE."""
    cols = ["CS", "SSMD", "GS", "NDD", "onF1", "CS@.5"]
    head = f"{'model':<18} {'bars':>4} " + " ".join(f"{c:>6}" for c in cols) + f" {'BCE':>7}"
    lines = [head, "-" * len(head)]
    for name, bars, r in rows:
        s, f = r["at_selected"], r["at_0.5"]
        lines.append(
            f"{name:<18} {bars:>4} {s['cs']:>6.2f} {s['ssmd']:>6.2f} {s['gs']:>6.2f} {s['ndd']:>6.2f} "
            f"{s['onset_f1']:>6.3f} {f['cs']:>6.2f} {r['bce']:>7.4f}"
        )
    return "\n".join(lines)


def run_demo(
    out: str | Path = "runs/demo",
    data_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    profile: str = "quick",
    baseline: str = "nope",
    overrides: list[str] | None = None,
) -> list[tuple[str, int, dict[str, Any]]]:
    """Train and evaluate RoPEPool+BIN and ``baseline``+BIN; returns (name, bars, metrics) rows."""
    from stripes.config import load_run_config
    from stripes.experiments.evaluate import evaluate_run
    from stripes.train import train

    t0 = time.perf_counter()
    out = Path(out)
    root = ensure_data(data_root)
    rows: list[tuple[str, int, dict[str, Any]]] = []
    for pe in ("ropepool", baseline):
        name = f"{pe}+bin"
        config = load_run_config(
            profile, overrides=[f"pe={pe!r}".replace("'", '"'), 'context="bin"', *(overrides or [])]
        )
        run_dir = out / name.replace("+", "_")
        print(f"== training {name} ({profile} profile) -> {run_dir}", flush=True)
        resume = (run_dir / "checkpoints" / "last.pt").is_file()
        train(config, run_dir, resume=resume, data_root=root, cache_dir=cache_dir)
        for bars in (16, 64):
            print(f"== evaluating {name} at {bars} bars", flush=True)
            rows.append((name, bars, evaluate_run(run_dir, bars, data_root=root, cache_dir=cache_dir)))
    print()
    print(results_table(rows))
    print("(CS, SSMD, GS, NDD, onset F1 at the validation-selected binarization; CS@.5 at threshold 0.5)")
    first = out / "ropepool_bin" / "examples_64"
    for src in sorted(first.glob("*.mid"))[:1] + sorted(first.glob("*.png"))[:1]:
        dst = out / f"predicted_song{src.suffix}"
        atomic_write_bytes(dst, src.read_bytes())
        print(f"predicted song: {dst}")
    harmonize_example(out / "harmonized", fallback_run=out / "ropepool_bin")
    print(f"demo done in {time.perf_counter() - t0:.0f} s; runs in {out}")
    return rows


def harmonize_example(out_dir: Path, fallback_run: Path | None = None) -> list[Path]:
    """Harmonize the melody that ships with stripes (``examples/morning_walk.mid``, with its chord file) with
    the shipped model (else ``fallback_run``); writes MIDI, PNG, chords and WAV into ``out_dir``."""
    from stripes.apps.harmonize.model import SHIPPED_MODEL
    from stripes.apps.harmonize.pipeline import Options, harmonize_files

    examples = Path(__file__).parent / "harmonize" / "examples"
    melody = examples / "morning_walk.mid"
    checkpoint = None if SHIPPED_MODEL.is_file() or fallback_run is None else str(fallback_run)
    opts = Options(out_dir=Path(out_dir), chords=str(examples / "morning_walk.chords.txt"),
                   checkpoint=checkpoint, wav=True)
    print(f"== harmonizing the example melody {melody.name} -> {out_dir}", flush=True)
    (res,) = harmonize_files([melody], opts)
    if res.error:
        raise DataError(res.error)
    for path in res.outputs:
        print(f"harmonized: {path}")
    return res.outputs
