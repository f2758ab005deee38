"""Evaluation metrics on binary pianorolls (numpy, time-major (T, 128), 16 ticks per quarter).

``compute_metrics(pred_bin, target_bin)`` is the one entry point used by evaluation; the individual
metrics, their official-code variants, binarization and BCE helpers are exported as well. Texture against
the human piano (Yang & Lerch 2020 feature distributions, ``texture_table``) and the rule baseline
(``rule_accompaniment``) are in :mod:`stripes.metrics.texture` and :mod:`stripes.metrics.baselines`.
See docs/metrics.md for the definitions.
"""

from __future__ import annotations

import numpy as np

from stripes.errors import DataError
from stripes.metrics._common import as_roll, check_pair, onsets
from stripes.metrics.baselines import rule_accompaniment
from stripes.metrics.bce import bce_logits_mean, bce_logits_per_position
from stripes.metrics.binarize import binarize, fill_gaps
from stripes.metrics.notes import extract_notes, frame_prf, onset_prf, prf
from stripes.metrics.structure import (
    chroma_similarity,
    grooving_pattern,
    grooving_similarity,
    half_measure_chroma,
    note_density,
    note_density_distance,
    note_density_distance_ratio,
    p3_grooving,
    p3_note_density,
    p3_ssm_distance,
    ssm,
    ssm_distance,
)
from stripes.metrics.texture import (
    chord_tone_share,
    compare_sets,
    feature_matrix,
    format_texture_table,
    notes_from_rolls,
    texture_table,
    window_features,
)

METRIC_KEYS = ("cs", "ssmd", "gs", "ndd", "frame_p", "frame_r", "frame_f1", "onset_p", "onset_r", "onset_f1")
HIGHER_IS_BETTER = {
    "cs": True,
    "ssmd": False,
    "gs": True,
    "ndd": False,
    "frame_p": True,
    "frame_r": True,
    "frame_f1": True,
    "onset_p": True,
    "onset_r": True,
    "onset_f1": True,
}


def compute_metrics(
    pred_bin: np.ndarray,
    target_bin: np.ndarray,
    *,
    ssmd_scale: float = 50.0,
    onset_tolerance: int = 1,
    matching: str = "bipartite",
) -> dict[str, float]:
    """All metrics of one window: binary (T, 128) prediction and target -> dict with ``METRIC_KEYS``.

    SSMD uses P1's x50 scale by default (``ssmd_scale=100`` for P2).
    """
    p, t = check_pair(pred_bin, target_bin)
    fp, fr, ff = frame_prf(p, t)
    op, orc, of = onset_prf(p, t, onset_tolerance=onset_tolerance, matching=matching)
    return {
        "cs": chroma_similarity(p, t),
        "ssmd": ssm_distance(p, t, scale=ssmd_scale),
        "gs": grooving_similarity(p, t),
        "ndd": note_density_distance(p, t),
        "frame_p": fp,
        "frame_r": fr,
        "frame_f1": ff,
        "onset_p": op,
        "onset_r": orc,
        "onset_f1": of,
    }


def compute_metrics_batch(
    pred_bin: np.ndarray, target_bin: np.ndarray, **options: object
) -> dict[str, float]:
    """Mean over windows of ``compute_metrics``: (B, T, 128) pair -> dict (per-window scores, then mean)."""
    p = np.asarray(pred_bin)
    t = np.asarray(target_bin)
    if p.ndim != 3 or p.shape != t.shape or p.shape[0] == 0:
        raise DataError(f"expected two (B, T, 128) arrays of equal shape, B > 0; got {p.shape}, {t.shape}")
    rows = [compute_metrics(p[i], t[i], **options) for i in range(p.shape[0])]  # type: ignore[arg-type]
    return {k: float(np.mean([r[k] for r in rows])) for k in METRIC_KEYS}


def compute_variants(pred_bin: np.ndarray, target_bin: np.ndarray) -> dict[str, float]:
    """Variant scores of one window for cross-checking: P2-scaled SSMD, ratio and onset-count NDD,
    CS without empty units, and the official structurePE code metrics (p3_*)."""
    p, t = check_pair(pred_bin, target_bin)
    return {
        "cs_skip_empty": chroma_similarity(p, t, skip_empty=True),
        "ssmd_x100": ssm_distance(p, t, scale=100.0),
        "ndd_ratio": note_density_distance_ratio(p, t),
        "ndd_onsets": note_density_distance(p, t, count="onsets"),
        "p3_ssmd": p3_ssm_distance(p, t),
        "p3_groove": p3_grooving(p, t),
        "p3_nd": p3_note_density(p, t),
    }


__all__ = [
    "HIGHER_IS_BETTER",
    "METRIC_KEYS",
    "as_roll",
    "bce_logits_mean",
    "bce_logits_per_position",
    "binarize",
    "check_pair",
    "chord_tone_share",
    "chroma_similarity",
    "compare_sets",
    "compute_metrics",
    "compute_metrics_batch",
    "compute_variants",
    "extract_notes",
    "feature_matrix",
    "fill_gaps",
    "format_texture_table",
    "frame_prf",
    "grooving_pattern",
    "grooving_similarity",
    "half_measure_chroma",
    "note_density",
    "note_density_distance",
    "note_density_distance_ratio",
    "notes_from_rolls",
    "onset_prf",
    "onsets",
    "p3_grooving",
    "p3_note_density",
    "p3_ssm_distance",
    "prf",
    "rule_accompaniment",
    "ssm",
    "ssm_distance",
    "texture_table",
    "window_features",
]
