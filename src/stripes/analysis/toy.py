"""Toy kernel study of P1 §III-E (Fig. 2–3): RoPE, F-StrIPE₁ and RoPEPool on one unit 2-D chunk.

Recipe (docs/papers.md §6.6): N = 5 contexts C_k = kπ/(N+1); P/N points per context with content angle
ψ ~ N(C_k, σ²) and context angle ξ = C_k; the query is the median-ψ point of the middle context; keys
are ordered by descending ψ (the orientation of P1 Fig. 3); f ∈ linspace(0, 1, 41). Each heat map is
min–max normalised over the whole map (one normalisation per map, never per row).

Asymmetry: for every key j, its mirror image about the query, (2ψ_q − ψ_j, 2ξ_q − ξ_j), is a key at the
same distance on the other side; asymmetry = mean_{f, j} |a(j) − a(mirror j)| / max |a| over the map.
It is 0 (to rounding) for RoPE and F-StrIPE₁, whose scores depend only on ψ_q − ψ_j and ξ_q − ξ_j, and
clearly positive for RoPEPool, whose score depends on the query and the key separately.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from stripes.fileio import atomic_path

METHODS = ("rope", "fstripe1", "ropepool")
TITLES = {"rope": "RoPE (eq. 24)", "fstripe1": "F-StrIPE$_1$ (eq. 25)", "ropepool": "RoPEPool (eq. 26)"}


def rope_toy(psi_q: float, xi_q: float, psi_k: np.ndarray, xi_k: np.ndarray, f: np.ndarray) -> np.ndarray:
    """(n_f, n_keys) scores. # P1 eq. (24): a = cos((ψ_q − ψ_k) + f (ξ_q − ξ_k))"""
    return np.cos((psi_q - psi_k)[None, :] + f[:, None] * (xi_q - xi_k)[None, :])


def fstripe1_toy(psi_q: float, xi_q: float, psi_k: np.ndarray, xi_k: np.ndarray, f: np.ndarray) -> np.ndarray:
    """(n_f, n_keys) scores. # P1 eq. (25): a = cos(ψ_q − ψ_k) · cos(f (ξ_q − ξ_k))"""
    return np.cos(psi_q - psi_k)[None, :] * np.cos(f[:, None] * (xi_q - xi_k)[None, :])


def ropepool_toy(psi_q: float, xi_q: float, psi_k: np.ndarray, xi_k: np.ndarray, f: np.ndarray) -> np.ndarray:
    """(n_f, n_keys) scores. # P1 eq. (26): a = 2 cos(ψ_q + f ξ_q − π/4) · cos(ψ_k + f ξ_k − π/4)"""
    quarter = math.pi / 4
    return (
        2
        * np.cos(psi_q + f[:, None] * xi_q - quarter)
        * np.cos(psi_k[None, :] + f[:, None] * xi_k[None, :] - quarter)
    )


TOY_KERNELS = {"rope": rope_toy, "fstripe1": fstripe1_toy, "ropepool": ropepool_toy}


def make_toy_data(
    seed: int = 0, n_contexts: int = 5, per_context: int = 5, sigma: float = 0.08
) -> dict[str, Any]:
    """The Fig. 2 data set: content angles ψ, context angles ξ, context index, and the query index."""
    rng = np.random.default_rng(seed)
    centres = np.arange(1, n_contexts + 1) * math.pi / (n_contexts + 1)
    context = np.repeat(np.arange(n_contexts), per_context)
    psi = rng.normal(centres[context], sigma)
    xi = centres[context].astype(float)
    order = np.argsort(-psi, kind="stable")  # descending ψ, as on the unit circle of Fig. 2 left to right
    psi, xi, context = psi[order], xi[order], context[order]
    middle = np.flatnonzero(context == n_contexts // 2)
    query = int(middle[np.argsort(psi[middle])[len(middle) // 2]])
    return {"psi": psi, "xi": xi, "context": context, "centres": centres, "query": query, "sigma": sigma}


def asymmetry(kernel, psi_q: float, xi_q: float, psi_k: np.ndarray, xi_k: np.ndarray, f: np.ndarray) -> float:
    """Mean |a(key) − a(mirror key)| over all f and keys, divided by max |a| of the map."""
    a = kernel(psi_q, xi_q, psi_k, xi_k, f)
    mirrored = kernel(psi_q, xi_q, 2 * psi_q - psi_k, 2 * xi_q - xi_k, f)
    return float(np.abs(a - mirrored).mean() / np.abs(a).max())


def _normalise(a: np.ndarray) -> np.ndarray:
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def _atomic_write(path: Path, write) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        write(fh)


def _heatmap_figure(maps: dict[str, np.ndarray], f: np.ndarray, data: dict[str, Any]):
    from matplotlib.figure import Figure

    n_keys = maps["rope"].shape[1]
    query, context = data["query"], data["context"]
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    axes = fig.subplots(1, 3, sharey=True)
    for ax, name in zip(axes, METHODS):
        im = ax.imshow(
            maps[name],
            aspect="auto",
            origin="lower",
            cmap="magma",
            vmin=0.0,
            vmax=1.0,
            extent=(-0.5, n_keys - 0.5, f[0], f[-1]),
            interpolation="nearest",
        )
        ax.set_title(TITLES[name])
        ax.set_xlabel("keys (descending content angle ψ)", labelpad=10)
        ax.set_xticks([])
        ax.plot([query], [f[-1]], marker="*", color="cyan", markersize=12, clip_on=False, zorder=5)
        for group in np.unique(context):  # blue: the query's context; green: the other contexts
            idx = np.flatnonzero(context == group)
            colour = "tab:blue" if group == context[query] else "tab:green"
            ax.hlines(
                -0.02,
                idx.min() - 0.35,
                idx.max() + 0.35,
                colors=colour,
                lw=3,
                transform=ax.get_xaxis_transform(),
                clip_on=False,
            )
    axes[0].set_ylabel("frequency f")
    axes[0].set_yticks(np.arange(0, 1.001, 0.125))
    fig.colorbar(im, ax=axes, label="normalised score $a_{qj}$")
    return fig


def _data_figure(data: dict[str, Any]):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.8), layout="constrained")
    ax = fig.subplots()
    t = np.linspace(0, math.pi, 200)
    ax.plot(np.cos(t), np.sin(t), color="0.7", lw=1)
    colours = [f"C{c}" for c in data["context"]]
    for k, c in enumerate(data["centres"]):
        ax.plot([0, 1.15 * math.cos(c)], [0, 1.15 * math.sin(c)], color=f"C{k}", lw=1, ls="--")
        ax.annotate(f"$C_{k + 1}$", (1.22 * math.cos(c), 1.22 * math.sin(c)), ha="center", va="center")
    ax.scatter(np.cos(data["psi"]), np.sin(data["psi"]), c=colours, s=30, zorder=3)
    q = data["query"]
    ax.scatter([math.cos(data["psi"][q])], [math.sin(data["psi"][q])], marker="*", s=250, c="k", zorder=4)
    ax.set_aspect("equal")
    ax.set_xlim(-1.35, 1.35)
    ax.set_ylim(-0.1, 1.35)
    ax.set_title(f"Toy data: content angle ψ ~ N(C_k, {data['sigma']:g}²), context ξ = C_k")
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


def run_toy_study(out_dir: Path, seed: int = 0) -> dict:
    """Compute the three toy heat maps and write them (PNG, .npz, JSON) and the data figure into out_dir.

    Returns {"asymmetry": {method: float}, "seed", "n_keys", "query", "files": {...}, ...}.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = make_toy_data(seed)
    f = np.linspace(0.0, 1.0, 41)
    q = data["query"]
    psi_q, xi_q = float(data["psi"][q]), float(data["xi"][q])
    raw = {m: TOY_KERNELS[m](psi_q, xi_q, data["psi"], data["xi"], f) for m in METHODS}
    norm = {m: _normalise(raw[m]) for m in METHODS}
    asym = {m: asymmetry(TOY_KERNELS[m], psi_q, xi_q, data["psi"], data["xi"], f) for m in METHODS}

    files = {
        "heatmaps": out_dir / "toy_heatmaps.png",
        "data": out_dir / "toy_data.png",
        "arrays": out_dir / "toy_arrays.npz",
        "summary": out_dir / "toy_summary.json",
    }
    arrays = {"f": f, "psi": data["psi"], "xi": data["xi"], "context": data["context"], "query": np.array(q)}
    arrays.update({f"{m}_raw": raw[m] for m in METHODS})
    arrays.update({f"{m}_norm": norm[m] for m in METHODS})
    _atomic_write(files["arrays"], lambda fh: np.savez(fh, **arrays))
    heat = _heatmap_figure(norm, f, data)
    _atomic_write(files["heatmaps"], lambda fh: heat.savefig(fh, format="png", dpi=120))
    dfig = _data_figure(data)
    _atomic_write(files["data"], lambda fh: dfig.savefig(fh, format="png", dpi=120))

    result = {
        "seed": int(seed),
        "n_keys": int(len(data["psi"])),
        "query": q,
        "sigma": data["sigma"],
        "frequencies": [float(f[0]), float(f[-1]), int(len(f))],
        "normalisation": "min-max over each whole heat map",
        "asymmetry": asym,
        "files": {k: str(v) for k, v in files.items()},
    }
    text = json.dumps(result, indent=2) + "\n"
    _atomic_write(files["summary"], lambda fh: fh.write(text.encode()))
    return result
