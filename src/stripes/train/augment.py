"""Training-time augmentation of a collated batch: random transposition and bridge dropout.

Used by the ``harmonizer`` profile (melodies of users come in any key and without POP909's bridge track).
Pure function of the batch and a ``torch.Generator``: the same generator state gives the same batch.

Per window ``b`` a semitone shift ``k_b`` is drawn uniformly from ``transpose = (lo, hi)`` (inclusive):

* melody rows ``x[..., 0:128]``, bridge rows ``x[..., 128:256]`` and the piano target ``y`` move up by
  ``k_b`` pitches; notes shifted outside 0..127 are dropped (no octave folding);
* the BIN context (12-dim chroma of the current chord) is rolled by ``k_b`` pitch classes
  (``pos'[..., (c + k) % 12] = pos[..., c]``), so it stays the chroma of the transposed chord;
* contexts that do not depend on pitch (``time``, ``rep``, ``phrase``) are left unchanged; ``key`` (chord
  relative to the song's tonic) is transposition invariant and also unchanged;
* contexts holding absolute pitch or chord identities (``melody``: MIDI pitch per tick, ``chord``: id into
  the chord table) cannot be transposed without the table, so a transposition with them raises
  ``ConfigError`` (use ``transpose=None``).

Then, with probability ``bridge_dropout`` per window, the bridge rows are zeroed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from stripes.errors import ConfigError

N_PITCH = 128
_INVARIANT = {"time", "rep", "phrase", "key"}
_ABSOLUTE = {"melody", "chord", "m", "c"}


def _shift_pitch(roll: torch.Tensor, k: int) -> torch.Tensor:
    """Shift a (T, 128) roll up by k pitches (down for k < 0); rows moved past the range are dropped."""
    if k == 0:
        return roll
    out = torch.zeros_like(roll)
    if k > 0:
        out[:, k:] = roll[:, : N_PITCH - k]
    else:
        out[:, : N_PITCH + k] = roll[:, -k:]
    return out


def _context_names(context_kind: str | Sequence[str]) -> list[str]:
    names = [context_kind] if isinstance(context_kind, str) else list(context_kind)
    return [n.lower() for n in names]


def augment_batch(
    batch: dict[str, torch.Tensor],
    generator: torch.Generator,
    transpose: tuple[int, int] | None,
    bridge_dropout: float,
    context_kind: str | Sequence[str],
) -> dict[str, torch.Tensor]:
    """Return a new batch with x (B, T, 256), y (B, T, 128), pos (B, T, C) augmented (inputs untouched).

    ``transpose``: inclusive range of semitone shifts, e.g. ``(-5, 6)``, or None for no transposition.
    ``bridge_dropout``: probability in [0, 1] of zeroing a window's bridge rows.
    ``context_kind``: the context name(s) stacked in ``pos`` (``"bin"``, ``["bin", "time"]``, ...).
    Other keys of the batch are passed through. Also returns ``"transpose"``: (B,) int64 shifts applied.
    """
    if not 0.0 <= bridge_dropout <= 1.0:
        raise ConfigError(f"bridge_dropout must be in [0, 1], got {bridge_dropout}")
    names = _context_names(context_kind)
    x, y, pos = batch["x"], batch["y"], batch["pos"]
    B = x.shape[0]
    if x.shape[-1] != 2 * N_PITCH or y.shape[-1] != N_PITCH:
        raise ConfigError(
            f"augment_batch expects x (B, T, 256) and y (B, T, 128), got {tuple(x.shape)}, {tuple(y.shape)}"
        )
    shifts = torch.zeros(B, dtype=torch.int64)
    if transpose is not None:
        lo, hi = int(transpose[0]), int(transpose[1])
        if lo > hi:
            raise ConfigError(f"transpose range must have lo <= hi, got {transpose}")
        bad = [n for n in names if n in _ABSOLUTE]
        if bad:
            raise ConfigError(
                f"cannot transpose context(s) {', '.join(bad)} (absolute pitch / chord ids); "
                "use transpose=None"
            )
        unknown = [n for n in names if n != "bin" and n not in _INVARIANT]
        if unknown:
            raise ConfigError(f"unknown context(s) {', '.join(unknown)} for transposition")
        shifts = torch.randint(lo, hi + 1, (B,), generator=generator)
    drop = torch.rand(B, generator=generator) < bridge_dropout
    widths = [12 if n == "bin" else 1 for n in names]
    if sum(widths) != pos.shape[-1]:
        raise ConfigError(f"pos has {pos.shape[-1]} columns but contexts {names} need {sum(widths)}")

    xs, ys, ps = [], [], []
    for b in range(B):
        k = int(shifts[b])
        mel = _shift_pitch(x[b, :, :N_PITCH], k)
        bridge = torch.zeros_like(x[b, :, N_PITCH:]) if drop[b] else _shift_pitch(x[b, :, N_PITCH:], k)
        xs.append(torch.cat([mel, bridge], dim=-1))
        ys.append(_shift_pitch(y[b], k))
        cols, c0 = [], 0
        for name, w in zip(names, widths):
            block = pos[b, :, c0 : c0 + w]
            cols.append(torch.roll(block, shifts=k, dims=-1) if name == "bin" and k else block)
            c0 += w
        ps.append(torch.cat(cols, dim=-1))
    out = dict(batch)
    out.update({"x": torch.stack(xs), "y": torch.stack(ys), "pos": torch.stack(ps), "transpose": shifts})
    return out
