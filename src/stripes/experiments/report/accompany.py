"""Report of generative runs (``task = "accompany"``): P1's PE comparison in generation.

Each run folder holds ``config.json`` and ``metrics_accompany_{bars}.json`` (written by ``stripes evaluate``,
:func:`stripes.experiments.accompany.evaluate_accompanist`: the sampler settings chosen on validation, the
teacher-forced test NLL, P1's metrics and the texture table against the human piano). The report gives, per
(method, context) cell and window length, mean ± sample std over seeds of the test NLL, the texture's mean
overlapping area (OA) with the human piano, the chord-tone share of the onsets, notes and onset times per bar,
the mean note length, P1's CS, SSMD, GS, NDD and the note-onset F1; then P1's two comparisons, BIN vs TIME
(per method) and RoPEPool vs RoPE (per context), each metric tested with the report's test
(:func:`stripes.analysis.stats.compare`: Levene, then Student's or Welch's two-sided t-test over seeds).
For the texture figures whose ideal is the human value (notes, onset times per bar, note length) the test is
on the distance to the human piano.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stripes.errors import DataError
from stripes.experiments.report.runs import context_label, method_label
from stripes.fileio import atomic_write_text

# (key, label, direction): "low" lower is better, "high" higher is better, "human" closer to the human piano
METRICS: tuple[tuple[str, str, str], ...] = (
    ("test_nll", "test NLL (nats/tick)", "low"),
    ("mean_oa", "mean OA", "high"),
    ("chord_tone_share", "chord-tone share", "high"),
    ("notes_per_bar", "notes/bar", "human"),
    ("onset_times_per_bar", "onset times/bar", "human"),
    ("mean_note_length", "note length (q)", "human"),
    ("cs", "CS", "high"),
    ("ssmd", "SSMD", "low"),
    ("gs", "GS", "high"),
    ("ndd", "NDD", "low"),
    ("onset_f1", "onset F1", "high"),
)
RECORD_FILES = ("config.json", "log.csv", "status.json", "DONE")
PROTOCOL = """\
Each run is evaluated by `stripes evaluate RUN --bars N`: the sampler settings (temperature, top_p) are chosen
on validation windows by the texture's mean overlapping area (OA) with the human piano, then every test window
is sampled once (seed 0) and compared with the human piano of the test songs (Yang & Lerch 2020 features);
the test NLL is teacher-forced. Cells: mean ± sample std over seeds. Comparisons: Levene, then Student's or
Welch's two-sided t-test over seeds (the report's test); for notes/bar, onset times/bar and note length, whose
ideal is the human value, the test is on each run's distance to the human piano. "not separable": p >= 0.05.
"""


@dataclass
class AccRun:
    """One evaluated generative run: its folder, cell, seed and per-bars metric values."""

    path: Path
    method: str
    context: str
    seed: int
    values: dict[int, dict[str, float]] = field(default_factory=dict)
    human: dict[int, dict[str, float]] = field(default_factory=dict)
    settings: dict[int, str] = field(default_factory=dict)
    heads: dict[str, float] = field(default_factory=dict)  # validation NLL per head, best epoch (log.csv)


HEADS = (("val_nll", "all"), ("val_count_nll", "count (when)"), ("val_onset_nll", "onset (which pitches)"),
         ("val_hold_nll", "hold (how long)"))


def _heads(log: Path) -> dict[str, float]:
    """The validation NLL of each head at the epoch of the lowest total (``log.csv``); {} without a log."""
    if not log.is_file():
        return {}
    rows = [r for r in csv.DictReader(log.open()) if r.get("val_nll")]
    if not rows:
        return {}
    best = min(rows, key=lambda r: float(r["val_nll"]))
    return {k: float(best[k]) for k, _ in HEADS if best.get(k)}


def _values(m: dict[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    rows = m["texture"]["rows"]
    s, h = rows["sampled"], rows["human"]
    keys = ("mean_oa", "chord_tone_share", "notes_per_bar", "onset_times_per_bar", "mean_note_length")
    vals = {k: float(s[k]) for k in keys}
    vals.update(test_nll=float(m["test_nll"]),
                **{k: float(m["metrics"][k]) for k in ("cs", "ssmd", "gs", "ndd", "onset_f1")})
    return vals, {k: float(h[k]) for k in keys}


def collect_accompany_runs(paths: Sequence[str | os.PathLike]) -> list[AccRun]:
    """Every folder under ``paths`` (a run folder or a folder of them) whose config has task "accompany" and
    that holds at least one ``metrics_accompany_*.json``. Raises DataError when there is none."""
    found: list[AccRun] = []
    for p in paths:
        root = Path(p)
        if not root.is_dir():
            raise DataError(f"{root}: not a folder of runs")
        is_run = (root / "config.json").is_file()
        cands = [root] if is_run else sorted(d for d in root.iterdir() if d.is_dir())
        for d in cands:
            metrics = sorted(d.glob("metrics_accompany_*.json"))
            if not (d / "config.json").is_file() or not metrics:
                continue
            try:
                cfg = json.loads((d / "config.json").read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise DataError(f"{d / 'config.json'}: unreadable ({exc})") from None
            if cfg.get("task") != "accompany":
                continue
            method = method_label(cfg)
            if cfg.get("model", {}).get("pos_input"):  # the positions also read as input features
                method += " + chroma input"
            run = AccRun(d, method, context_label(cfg), int(cfg.get("seed", 0)), heads=_heads(d / "log.csv"))
            for f in metrics:
                try:
                    m = json.loads(f.read_text())
                    bars = int(m["bars"])
                    run.values[bars], run.human[bars] = _values(m)
                except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                    raise DataError(f"{f}: not an accompaniment metrics file ({exc})") from None
                st = m.get("settings", {})
                run.settings[bars] = f"T {st.get('temperature', '?')}, top_p {st.get('top_p', '?')}"
            found.append(run)
    if not found:
        raise DataError(f"no evaluated accompaniment runs (task accompany + metrics_accompany_*.json) under "
                        f"{', '.join(str(p) for p in paths)}")
    seen: dict[tuple[str, str, int], Path] = {}
    for r in found:
        key = (r.method, r.context, r.seed)
        if key in seen:
            raise DataError(f"two runs of {r.method} + {r.context} seed {r.seed}: {seen[key]} and {r.path}")
        seen[key] = r.path
    return found


def _score(run: AccRun, bars: int, key: str, direction: str) -> float:
    """The value compared: the metric, or its distance to the human piano's for 'human' metrics."""
    v = run.values[bars][key]
    return abs(v - run.human[bars][key]) if direction == "human" else v


def compare_cells(a: list[AccRun], b: list[AccRun], bars: int) -> list[dict[str, Any]]:
    """Per metric: means of cell a and b, the p-value of the report's test, and which is better (or
    "not separable" at p >= 0.05, "too few seeds" under 2 a side)."""
    from stripes.analysis.stats import compare

    a = [r for r in a if bars in r.values]
    b = [r for r in b if bars in r.values]
    if not a or not b:  # a cell not evaluated at this length: nothing to compare
        return []
    out = []
    for key, label, direction in METRICS:
        xa = [_score(r, bars, key, direction) for r in a]
        xb = [_score(r, bars, key, direction) for r in b]
        row: dict[str, Any] = {"metric": label, "a": float(np.mean([r.values[bars][key] for r in a])),
                               "b": float(np.mean([r.values[bars][key] for r in b])), "p": float("nan")}
        if len(xa) < 2 or len(xb) < 2:
            row["verdict"] = "too few seeds"
        else:
            row["p"] = compare(xa, xb)["p"]
            better_a = np.mean(xa) > np.mean(xb) if direction == "high" else np.mean(xa) < np.mean(xb)
            row["verdict"] = ("not separable" if not row["p"] < 0.05
                              else ("first ahead" if better_a else "second ahead"))
        out.append(row)
    return out


def _fmt(x: float, key: str) -> str:
    return f"{x:.4f}" if key == "test_nll" else f"{x:.3f}" if key in ("mean_oa", "chord_tone_share",
                                                                        "onset_f1") else f"{x:.2f}"


def _cells(runs: list[AccRun]) -> dict[tuple[str, str], list[AccRun]]:
    cells: dict[tuple[str, str], list[AccRun]] = defaultdict(list)
    for r in runs:
        cells[(r.method, r.context)].append(r)
    return dict(sorted(cells.items()))


def _table(cells: dict[tuple[str, str], list[AccRun]], bars: int) -> list[str]:
    head = "| method | context | seeds | " + " | ".join(label for _, label, _ in METRICS) + " |"
    lines = [head, "|" + "---|" * (3 + len(METRICS))]
    human: dict[str, list[float]] = defaultdict(list)
    for (method, ctx), rs in cells.items():
        rs = [r for r in rs if bars in r.values]
        if not rs:
            continue
        cols = []
        for key, _, _ in METRICS:
            xs = [r.values[bars][key] for r in rs]
            sd = f" ± {_fmt(float(np.std(xs, ddof=1)), key)}" if len(xs) > 1 else ""
            cols.append(_fmt(float(np.mean(xs)), key) + sd)
        for r in rs:
            for k, v in r.human[bars].items():
                human[k].append(v)
        lines.append(f"| {method} | {ctx} | {len(rs)} | " + " | ".join(cols) + " |")
    if human:
        cols = [_fmt(float(np.mean(human[k])), k) if k in human else "" for k, _, _ in METRICS]
        lines.append("| human piano | (reference) | | " + " | ".join(cols) + " |")
    return lines


def _comparisons(cells: dict[tuple[str, str], list[AccRun]], bars: int) -> list[str]:
    pairs = []
    for method in sorted({m for m, _ in cells}):
        if (method, "BIN") in cells and (method, "TIME") in cells:
            pairs.append((f"{method}: BIN vs TIME", cells[(method, "BIN")], cells[(method, "TIME")]))
    for ctx in sorted({c for _, c in cells}):
        ropes = sorted(m for m, c in cells if c == ctx and m.startswith("RoPE("))
        if ("RoPEPool", ctx) in cells:
            for rope in ropes:
                pairs.append((f"{ctx}: RoPEPool vs {rope}", cells[("RoPEPool", ctx)], cells[(rope, ctx)]))
    lines: list[str] = []
    for title, a, b in pairs:
        rows = compare_cells(a, b, bars)
        if not rows:
            continue
        first, second = title.split(": ", 1)[1].split(" vs ")
        lines += [f"**{title}** ({bars} bars)", "", f"| metric | {first} | {second} | p | verdict |",
                  "|---|---|---|---|---|"]
        for (key, _, _), r in zip(METRICS, rows):
            verdict = r["verdict"].replace("first", first).replace("second", second)
            p = "" if r["p"] != r["p"] else f"{r['p']:.2g}"
            lines.append(f"| {r['metric']} | {_fmt(r['a'], key)} | {_fmt(r['b'], key)} | {p} | {verdict} |")
        lines.append("")
    return lines


def _heads_section(cells: dict[tuple[str, str], list[AccRun]]) -> list[str]:
    """Validation NLL per head (count: when notes start; onset: which pitches; hold: how long), mean ± sd
    over seeds, and the report's test between the cells of P1's two comparisons."""
    from stripes.analysis.stats import compare

    have = {k: [r for r in rs if r.heads] for k, rs in cells.items()}
    if not any(have.values()):
        return []
    lines = ["## Validation NLL by head (nats/tick, best epoch of `log.csv`)", "",
             "| method | context | seeds | " + " | ".join(label for _, label in HEADS) + " |",
             "|" + "---|" * (3 + len(HEADS))]
    for (method, ctx), rs in have.items():
        if rs:
            cols = []
            for key, _ in HEADS:
                xs = [r.heads[key] for r in rs if key in r.heads]
                cols.append(f"{np.mean(xs):.4f} ± {np.std(xs, ddof=1):.4f}" if len(xs) > 1
                            else (f"{xs[0]:.4f}" if xs else ""))
            lines.append(f"| {method} | {ctx} | {len(rs)} | " + " | ".join(cols) + " |")
    lines.append("")
    methods, contexts = sorted({m for m, _ in have}), sorted({c for _, c in have})
    pairs = [((m, "BIN"), (m, "TIME")) for m in methods]
    pairs += [(("RoPEPool", c), (m, c)) for c in contexts for m in methods if m.startswith("RoPE(")]
    for a, b in pairs:
        ra, rb = have.get(a, []), have.get(b, [])
        if len(ra) < 2 or len(rb) < 2:
            continue
        ps = []
        for key, label in HEADS:
            xa = [r.heads[key] for r in ra if key in r.heads]
            xb = [r.heads[key] for r in rb if key in r.heads]
            if len(xa) > 1 and len(xb) > 1:
                ps.append(f"{label} p = {compare(xa, xb)['p']:.2g}")
        lines.append(f"- {a[0]} + {a[1]} vs {b[0]} + {b[1]}: " + "; ".join(ps))
    return [*lines, ""]


def write_accompany_runs_csv(runs: list[AccRun], path: Path, table: str = "") -> None:
    """One row per (run, bars): cell, seed, the sampler settings and every metric."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["table", "run", "method", "context", "seed", "bars", "settings", *[k for k, _, _ in METRICS]])
    for r in sorted(runs, key=lambda r: (r.method, r.context, r.seed)):
        for bars in sorted(r.values):
            w.writerow([table, r.path.name, r.method, r.context, r.seed, bars, r.settings.get(bars, ""),
                        *[repr(r.values[bars][k]) for k, _, _ in METRICS]])
    atomic_write_text(path, buf.getvalue())


def copy_accompany_records(runs: list[AccRun], dest: Path) -> None:
    """Each run's record (config, log, status, DONE, metrics_accompany_*.json; no checkpoints) into
    ``dest/<run name>/``, written beside and renamed so an interrupted copy leaves no half run."""
    dest.mkdir(parents=True, exist_ok=True)
    for r in runs:
        target = dest / r.path.name
        if target.resolve() == r.path.resolve():
            continue
        tmp = dest / f".{r.path.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        files = [r.path / f for f in RECORD_FILES if (r.path / f).is_file()]
        for f in [*files, *sorted(r.path.glob("metrics_accompany_*.json"))]:
            shutil.copy2(f, tmp / f.name)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)


def make_accompany_report(paths: Sequence[str | os.PathLike], out: str | os.PathLike, table: str = "",
                          copy_runs: bool = False) -> Path:
    """``out/report.md`` and ``out/runs.csv`` from the generative runs under ``paths`` (with ``copy_runs``
    also their records in ``out/runs``). Returns the report's path."""
    runs = collect_accompany_runs(paths)
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    cells = _cells(runs)
    lines = ["# Generation: P1's PE comparison with sampled accompaniments", "", PROTOCOL]
    for bars in sorted({b for r in runs for b in r.values}):
        lines += [f"## {bars} bars", "", *_table(cells, bars), "", *_comparisons(cells, bars)]
    lines += _heads_section(cells)
    path = root / "report.md"
    atomic_write_text(path, "\n".join(lines).rstrip() + "\n")
    write_accompany_runs_csv(runs, root / "runs.csv", table)
    if copy_runs:
        copy_accompany_records(runs, root / "runs")
    return path
