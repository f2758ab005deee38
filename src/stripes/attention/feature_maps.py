"""Feature maps phi for kernelized (linear) attention: FAVOR+, elu+1, relu, identity.

Every map takes (B, T, H, D) and returns (B, T, H, M). Random features (FAVOR+) live in a buffer, so they are
saved in the state dict and move with ``.to(device)``; they are redrawn only in training mode and only when
:meth:`FeatureMap.maybe_redraw` is called (the attention layer calls it once per forward, so q and k of one
forward always share the same draw).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from stripes.errors import ConfigError
from stripes.pe.base import autocast_off

RedrawPolicy = str | float


def _check_input(x: torch.Tensor, in_dim: int) -> None:
    if x.dim() < 2 or x.shape[-1] != in_dim:
        raise ConfigError(f"feature map expects (B, T, H, {in_dim}) inputs, got shape {tuple(x.shape)}")


def _make_generator(seed: int | torch.Generator | None) -> torch.Generator | None:
    if seed is None:
        return None
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed must be an int, a torch.Generator or None, got {seed!r}")
    return torch.Generator().manual_seed(seed)


def _parse_redraw(redraw: RedrawPolicy) -> float:
    """Return the redraw probability per training forward: 0 = fixed, 1 = every step."""
    if isinstance(redraw, str):
        table = {"fixed": 0.0, "never": 0.0, "step": 1.0, "always": 1.0}
        if redraw not in table:
            raise ConfigError(f"redraw must be 'fixed', 'step' or a probability in [0, 1], got {redraw!r}")
        return table[redraw]
    if isinstance(redraw, bool) or not isinstance(redraw, (int, float)) or not 0.0 <= float(redraw) <= 1.0:
        raise ConfigError(f"redraw must be 'fixed', 'step' or a probability in [0, 1], got {redraw!r}")
    return float(redraw)


def orthogonal_gaussian_matrix(
    n_rows: int, n_cols: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """(n_rows, n_cols) random matrix with orthogonal rows inside each block of ``n_cols`` rows.

    Each square Gaussian block is orthogonalised by QR (on the CPU, in float64) and its rows are rescaled by
    independent chi(n_cols) norms, so every row is marginally N(0, I) (FAVOR+ orthogonal random features).
    """
    blocks = []
    remaining = n_rows
    while remaining > 0:
        g = torch.randn(n_cols, n_cols, generator=generator, dtype=torch.float64)
        q, r = torch.linalg.qr(g)
        q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)  # unique QR -> Haar-distributed q
        blocks.append(q.T[: min(remaining, n_cols)])
        remaining -= n_cols
    w = torch.cat(blocks, dim=0)
    norms = torch.randn(n_rows, n_cols, generator=generator, dtype=torch.float64).norm(dim=1, keepdim=True)
    return (w * norms).to(dtype)


class FeatureMap(nn.Module):
    """Base class: ``phi(x, role, key_padding_mask)`` maps (B, T, H, in_dim) to (B, T, H, out_dim).

    ``role`` is "query", "key" or None and ``key_padding_mask`` (B, T) bool marks padded keys; only FAVOR+
    uses them (for its stabilisers, which must ignore padded keys).
    """

    in_dim: int
    out_dim: int

    def maybe_redraw(self) -> bool:
        """Apply the redraw policy (training mode only). Returns True if new features were drawn."""
        return False

    def redraw_(self) -> None:
        """Draw new random features now (no-op for deterministic maps)."""

    def key_features(
        self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Key features for :func:`stripes.attention.linear_attention`: (phi (B, T, H, M), log scale or None).

        The features of key n are ``phi[n] * exp(log_scale[n])``; maps without a log scale return None.
        Padded keys need no care here: the attention drops them (a select).
        """
        return self(x, role="key", key_padding_mask=key_padding_mask), None

    def forward(
        self, x: torch.Tensor, role: str | None = None, key_padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


class _ElementwiseFeatureMap(FeatureMap):
    """A deterministic elementwise map, M = D; subclasses set ``_fn``."""

    _fn: staticmethod

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.in_dim = self.out_dim = in_dim

    def forward(
        self, x: torch.Tensor, role: str | None = None, key_padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        _check_input(x, self.in_dim)
        return self._fn(x)


class EluFeatureMap(_ElementwiseFeatureMap):
    """phi(x) = elu(x) + 1 (Katharopoulos et al. 2020), M = D."""

    _fn = staticmethod(lambda x: F.elu(x) + 1.0)


class ReluFeatureMap(_ElementwiseFeatureMap):
    """phi(x) = relu(x), M = D."""

    _fn = staticmethod(F.relu)


class IdentityFeatureMap(_ElementwiseFeatureMap):
    """phi(x) = x, M = D (the kernel is the plain dot product; the denominator may vanish)."""

    _fn = staticmethod(lambda x: x)


class FavorFeatureMap(FeatureMap):
    """FAVOR+ positive orthogonal random features (Choromanski et al. 2021), estimating exp(q.k / sqrt(D)).

    x <- x * scale (default D^-1/4, i.e. softmax temperature 1/sqrt(D)); with M/2 orthogonal rows w_i,
    phi(x) = [exp(w_i.x - |x|^2/2 - c), exp(-w_i.x - |x|^2/2 - c)]_i / sqrt(M)  (antithetic pairs), so that
    E[phi(x).phi(y)] = exp(x.y) when c = 0.

    Stabilisers c (both cancel exactly in the attention ratio phi(q).S / phi(q).z, up to eps):
    - role="query": c = max over the M exponents of that token (per token);
    - role="key": c = max over the whole sequence and all features per (batch, head), detached, when
      ``stabilize_keys`` is True. This is a per-sequence constant, so it uses future keys *numerically* but
      not in value; for token-by-token generation with :func:`linear_attention_step` build the map with
      ``stabilize_keys=False`` so keys get the same features in both modes.
    - role=None: no stabiliser (unbiased kernel estimate).
    The exponents are computed in float32 at least, also under autocast.
    """

    omega: torch.Tensor

    def __init__(
        self,
        in_dim: int,
        n_features: int | None = None,
        redraw: RedrawPolicy = "fixed",
        seed: int | torch.Generator | None = None,
        scale: float | None = None,
        stabilize_keys: bool = True,
    ) -> None:
        super().__init__()
        if in_dim < 1:
            raise ConfigError(f"feature map input dim must be >= 1, got {in_dim}")
        n_features = 2 * in_dim if n_features is None else n_features
        bad = isinstance(n_features, bool) or not isinstance(n_features, int)
        if bad or n_features < 2 or n_features % 2:
            raise ConfigError(f"FAVOR+ needs an even number of features >= 2, got {n_features!r}")
        self.in_dim = in_dim
        self.out_dim = n_features
        self.redraw_prob = _parse_redraw(redraw)
        self.scale = in_dim**-0.25 if scale is None else float(scale)
        self.stabilize_keys = stabilize_keys
        self._generator = _make_generator(seed)
        self.register_buffer("omega", torch.empty(n_features // 2, in_dim))
        self.redraw_()

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, n_features={self.out_dim}, redraw_prob={self.redraw_prob}"

    @torch.no_grad()
    def redraw_(self) -> None:
        w = orthogonal_gaussian_matrix(self.out_dim // 2, self.in_dim, self._generator)
        self.omega.copy_(w.to(self.omega.device, self.omega.dtype))

    def maybe_redraw(self) -> bool:
        if not self.training or self.redraw_prob <= 0.0:
            return False
        if self.redraw_prob < 1.0:
            u = torch.rand((), generator=self._generator).item()
            if u >= self.redraw_prob:
                return False
        self.redraw_()
        return True

    def _exponents(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x in float32 at least, and u = [w_i.x, -w_i.x]_i (..., M) with w scaled: one matmul (call with
        autocast off)."""
        x = x.to(torch.promote_types(x.dtype, torch.float32))
        return x, x @ self._projection(x.dtype)

    def _projection(self, dtype: torch.dtype) -> torch.Tensor:
        """[w, -w]^T (in_dim, M) with w = omega * scale, kept until omega changes (a redraw, a move): the
        same matrix every call, built once per draw instead of once per call (generation calls it per
        token). Not kept while compiling, nor across inference mode (its tensors cannot enter autograd)."""
        if torch.compiler.is_compiling():
            w = self.omega.to(dtype) * self.scale
            return torch.cat([w, -w], dim=0).T
        key = (self.omega._version, self.omega.data_ptr(), self.omega.device, dtype, self.scale,
               torch.is_inference_mode_enabled())
        cached = getattr(self, "_proj_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        w = self.omega.to(dtype) * self.scale
        proj = torch.cat([w, -w], dim=0).T
        self._proj_cache = (key, proj)
        return proj

    def key_features(
        self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Causally safe key features: phi (B, T, H, M) with max 1/sqrt(M) per token, and its log scale a.

        The unstabilised FAVOR+ key features are ``phi * exp(a)[..., None]``, a = max_i(w_i.x) - |x|^2/2 per
        token (B, T, H). :func:`stripes.attention.linear_attention` combines them with a running maximum of a,
        so no future key sets a past output's stabiliser, and large activations neither overflow nor make
        rows collapse to zero (the per-token max is detached, as a stabiliser; |x|^2/2 keeps its gradient).
        """
        _check_input(x, self.in_dim)
        with autocast_off(x.device.type):
            x, u = self._exponents(x)
            top = u.detach().amax(dim=-1, keepdim=True)
            phi = torch.exp(u - (top + 0.5 * math.log(self.out_dim)))
            log_scale = (top - 0.5 * (self.scale**2) * (x * x).sum(dim=-1, keepdim=True)).squeeze(-1)
        return phi, log_scale

    def forward(
        self, x: torch.Tensor, role: str | None = None, key_padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x (B, T, H, D) -> (B, T, H, M) positive features, dtype promote(x.dtype, float32).

        ``key_padding_mask`` (B, T) bool, True = pad: padded keys do not enter the key stabiliser.
        """
        _check_input(x, self.in_dim)
        if role not in (None, "query", "key"):
            raise ConfigError(f"role must be 'query', 'key' or None, got {role!r}")
        if role == "key" and self.stabilize_keys and x.dim() != 4:
            raise ConfigError(f"key features need (B, T, H, D) inputs, got shape {tuple(x.shape)}")
        with autocast_off(x.device.type):
            x, u = self._exponents(x)
            half_log_m = 0.5 * math.log(self.out_dim)
            if role == "query":
                # per-token constants cancel in phi(q).S / phi(q).z, so |x|^2/2 is absorbed by the max
                shift = u.detach().amax(dim=-1, keepdim=True)
            else:
                shift = 0.5 * (self.scale**2) * (x * x).sum(dim=-1, keepdim=True)  # |x|^2 / 2
                if role == "key" and self.stabilize_keys:
                    top = u.detach().amax(dim=-1, keepdim=True) - shift.detach()  # (B, T, H, 1)
                    if key_padding_mask is not None:
                        if key_padding_mask.shape != x.shape[:2] or key_padding_mask.dtype != torch.bool:
                            raise ConfigError(
                                f"key_padding_mask must be a bool tensor of shape {tuple(x.shape[:2])}, got "
                                f"{key_padding_mask.dtype} {tuple(key_padding_mask.shape)}"
                            )
                        top = top.masked_fill(key_padding_mask[:, :, None, None], float("-inf"))
                    top = top.amax(dim=1, keepdim=True)
                    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))  # all keys padded
                    shift = shift + top  # one constant per (batch, head): max over the sequence and features
            # FAVOR+ positive random features: phi(x) = exp(w.x - |x|^2/2 - c) / sqrt(M)
            return torch.exp(u - (shift + half_log_m))

FEATURE_MAPS = ("favor", "elu", "relu", "identity")


def build_feature_map(
    name: str,
    in_dim: int,
    n_features: int | None = None,
    redraw: RedrawPolicy = "fixed",
    seed: int | torch.Generator | None = None,
    **options: object,
) -> FeatureMap:
    """Build a feature map by name ('favor', 'elu', 'relu', 'identity').

    ``n_features`` (M), ``redraw`` ('fixed', 'step' or a probability per training forward) and ``seed`` (int
    or torch.Generator) apply to 'favor'; ``options`` go to :class:`FavorFeatureMap` (``scale``,
    ``stabilize_keys``). Deterministic maps have M = in_dim and reject a different ``n_features``.
    """
    if isinstance(in_dim, bool) or not isinstance(in_dim, int) or in_dim < 1:
        raise ConfigError(f"feature map input dim must be a positive int, got {in_dim!r}")
    if name == "favor":
        return FavorFeatureMap(in_dim, n_features, redraw=redraw, seed=seed, **options)  # type: ignore[arg-type]
    simple = {"elu": EluFeatureMap, "relu": ReluFeatureMap, "identity": IdentityFeatureMap}
    if name not in simple:
        raise ConfigError(f"unknown feature map {name!r}; choose one of {', '.join(FEATURE_MAPS)}")
    if options:
        raise ConfigError(f"feature map {name!r} takes no options, got {sorted(options)}")
    if n_features is not None and n_features != in_dim:
        raise ConfigError(f"feature map {name!r} has M = in_dim = {in_dim}; got n_features={n_features}")
    _parse_redraw(redraw)
    return simple[name](in_dim)
