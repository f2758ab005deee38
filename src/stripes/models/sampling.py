"""Sampling accompaniments from an :class:`Accompanist`, tick by tick on the streaming (cached) path.

Each tick: the number of onsets K from the count head (temperature), then K distinct pitches drawn jointly
from the onset head's softmax (temperature, nucleus ``top_p``) without replacement (Plackett-Luce, as
Gumbel-top-k), then for each pitch sounding before and not struck again whether it is held (Bernoulli of
the hold head, same temperature). The piano of that tick is fed back as the next tick's input through the
model's cache: O(1) time and memory per tick with linear attention.

``keep`` (B, T) marks ticks whose accompaniment is given (``onset``/``frame`` rolls): they are fed as they
are (a leading run in one prefill call) and never resampled, which is how bars are regenerated around kept
ones. The returned ``nll`` (B,) is the model's negative log-likelihood (temperature 1) of the whole result,
given and sampled ticks alike, accumulated step by step; it equals :meth:`Accompanist.score` of one
teacher-forced pass over the same rolls.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from stripes.errors import ConfigError, ModelError
from stripes.models.accompanist import K_MAX, N_PITCH, Accompanist


@dataclass(frozen=True)
class SamplerSettings:
    """Temperature (> 0) of all three heads and the nucleus mass ``top_p`` in (0, 1] of the pitch head."""

    temperature: float = 1.0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")


def _nucleus(z: torch.Tensor, top_p: float) -> torch.Tensor:
    """Logits z (B, P) with everything outside the smallest set of mass >= top_p set to -inf."""
    if top_p >= 1.0:
        return z
    probs, order = torch.softmax(z, dim=-1).sort(dim=-1, descending=True)
    outside = probs.cumsum(-1) - probs >= top_p  # the mass before this pitch already reaches top_p
    return z.masked_fill(torch.zeros_like(outside).scatter(-1, order, outside), float("-inf"))


def draw_tick(
    logits: dict[str, torch.Tensor], frame_prev: torch.Tensor, settings: SamplerSettings,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One tick for a batch: logits (B, ·) of the three heads, frame_prev (B, 128) bool → onset, frame."""
    t = settings.temperature
    count_p = _on_cpu(torch.softmax(_tempered(logits["count"], t), -1))
    count = torch.multinomial(count_p, 1, generator=generator)
    k = _to_device(count.squeeze(-1), frame_prev.device)
    z = _nucleus(_tempered(logits["onset"], t), settings.top_p)
    u = _to_device(torch.rand(z.shape, generator=generator).clamp_(1e-12, 1.0), z.device)
    keys = z - torch.log(-torch.log(u))  # Gumbel-top-k: K draws without replacement from softmax(z)
    top = keys.topk(K_MAX, dim=-1)
    if settings.top_p < 1.0:  # the nucleus may hold fewer than K pitches
        k = torch.minimum(k, torch.isfinite(top.values).sum(-1))
    chosen = torch.arange(K_MAX, device=z.device)[None] < k[:, None]
    onset = torch.zeros_like(frame_prev).scatter(-1, top.indices, chosen)
    hold_p = torch.sigmoid(_tempered(logits["hold"], t))
    u_hold = _to_device(torch.rand(hold_p.shape, generator=generator), hold_p.device)
    held = (u_hold < hold_p) & frame_prev & ~onset
    return onset, onset | held


def _tempered(z: torch.Tensor, t: float) -> torch.Tensor:
    """Logits in float32 at least, divided by the temperature (untouched at t = 1: the same numbers)."""
    z = z if z.dtype in (torch.float32, torch.float64) else z.float()
    return z if t == 1.0 else z / t


def _on_cpu(x: torch.Tensor) -> torch.Tensor:
    return x if x.device.type == "cpu" else x.cpu()


def _to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    return x if x.device == device else x.to(device)


@torch.no_grad()
def sample(
    model: Accompanist,
    x: torch.Tensor,
    pos: torch.Tensor,
    *,
    seed: int = 0,
    settings: SamplerSettings | None = None,
    onset: torch.Tensor | None = None,
    frame: torch.Tensor | None = None,
    keep: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Sample piano rolls for melodies x (B, T, 256) at positions pos (B, T, C).

    Parameters
    ----------
    model : Accompanist
        Put in eval mode here (stochastic PEs use their fixed noise; no dropout).
    seed : int
        Seeds every random draw: the same seed, inputs and settings give the same rolls.
    settings : SamplerSettings, optional
        Temperature and nucleus mass (defaults: 1.0, 1.0).
    onset, frame, keep : Tensor, optional
        Given piano rolls (B, T, 128) and the ticks (B, T) bool where they are kept (not sampled).

    Returns
    -------
    dict
        ``onset``, ``frame`` (B, T, 128) bool and ``nll`` (B,) float64 nats, the model's negative
        log-likelihood of the returned rolls.
    """
    settings = settings or SamplerSettings()
    if x.dim() != 3 or x.shape[-1] != 256 or pos.shape[:2] != x.shape[:2]:
        raise ModelError(f"x must be (B, T, 256) and pos (B, T, C), got {tuple(x.shape)}, {tuple(pos.shape)}")
    b, t_len = x.shape[:2]
    device = x.device
    empty = torch.zeros(b, t_len, N_PITCH, dtype=torch.bool, device=device)
    given_on = empty if onset is None else onset.bool()
    given_fr = torch.zeros_like(given_on) if frame is None else frame.bool()
    keep = torch.zeros(b, t_len, dtype=torch.bool, device=device) if keep is None else keep.bool()
    if keep.any() and (onset is None or frame is None):
        raise ModelError("keep marks given ticks: pass the onset and frame rolls they come from")
    model.eval()
    gen = torch.Generator().manual_seed(int(seed))
    cache = model.init_cache(b)
    out_on, out_fr = given_on.clone(), given_fr.clone()
    nll = torch.zeros(b, dtype=torch.float64, device=device)
    prev_on = torch.zeros(b, 1, N_PITCH, dtype=torch.bool, device=device)
    prev_fr = torch.zeros_like(prev_on)
    start = 0
    lead = int(keep.all(dim=0).long().cumprod(0).sum())  # ticks kept in every sequence, from the start
    if lead > 0:  # one prefill call for the kept prefix
        sl = slice(0, lead)
        logits = model(x[:, sl], pos[:, sl], _prev(given_on[:, sl], prev_on), _prev(given_fr[:, sl], prev_fr),
                       cache=cache)
        frame_prev = _prev(given_fr[:, sl], prev_fr)
        nll += model.score(logits, given_on[:, sl], given_fr[:, sl], frame_prev)["nll"].double().sum(1)
        prev_on, prev_fr = given_on[:, lead - 1 : lead], given_fr[:, lead - 1 : lead]
        start = lead
    steps: list[dict[str, torch.Tensor]] = []
    first_prev_fr = prev_fr
    keeps_later = bool(keep[:, start:].any())
    for t in range(start, t_len):
        sl = slice(t, t + 1)
        logits = model(x[:, sl], pos[:, sl], prev_on, prev_fr, cache=cache)
        steps.append(logits)
        on_t, fr_t = draw_tick({k: v[:, 0] for k, v in logits.items()}, prev_fr[:, 0], settings, gen)
        if keeps_later:
            kept = keep[:, t, None]
            on_t = torch.where(kept, given_on[:, t], on_t)
            fr_t = torch.where(kept, given_fr[:, t], fr_t)
        out_on[:, t], out_fr[:, t] = on_t, fr_t
        prev_on, prev_fr = on_t[:, None], fr_t[:, None]
    if steps:  # the sampled ticks scored in one call (the same per-tick terms as scoring each step)
        logits = {k: torch.cat([s[k] for s in steps], dim=1) for k in steps[0]}
        sl = slice(start, t_len)
        frame_prev = _prev(out_fr[:, sl], first_prev_fr)
        nll += model.score(logits, out_on[:, sl], out_fr[:, sl], frame_prev)["nll"].double().sum(1)
    return {"onset": out_on, "frame": out_fr, "nll": nll}


def _prev(roll: torch.Tensor, before: torch.Tensor) -> torch.Tensor:
    """The rows one tick earlier, the first one taken from ``before`` (B, 1, 128)."""
    return torch.cat([before, roll[:, :-1]], dim=1)
