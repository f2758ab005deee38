"""The protocol shared by every positional encoding (PE) and the input checks.

Shapes: q, k are (B, T, H, D); positions are float (B, T, C). A q/k-level PE maps q, k to
(B, T, H, out_dim); ``scores`` returns (B, H, Tq, Tk) = q_out · k_out.

Precision: positions, angles and codes are computed in ``compute_dtype(q.dtype)`` (float32 at least) with
autocast disabled, and the outputs are cast back to q's dtype. In bf16/fp16 the labels themselves would be
rounded (bf16 holds integers exactly only up to 256) and angles f·p of size ~10³ would lose all accuracy.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch
from torch import Tensor, nn

from stripes.errors import ConfigError, DataError, ModelError, ModelTypeError


class PEInputError(ModelError, DataError):
    """Tensors of the wrong shape, dtype or with non-finite values were given to a positional encoding."""


class PETypeError(PEInputError, ModelTypeError):
    """A non-tensor, or a tensor of the wrong kind (integer q/k, bool positions), given to a PE."""


def check_dims(head_dim: int, n_heads: int, context_dim: int, *, even: bool = False) -> None:
    """Validate the sizes a PE is built with (raises ConfigError)."""
    for name, value in (("head_dim", head_dim), ("n_heads", n_heads), ("context_dim", context_dim)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if even and head_dim % 2:
        raise ConfigError(f"head_dim must be even for rotation-based PEs, got {head_dim}")


def _check_finite(pos: Tensor, name: str) -> None:
    """Raise PEInputError naming the first non-finite entry of ``pos`` (B, T, C); skipped while compiling."""
    if torch.compiler.is_compiling():
        return
    bad = ~torch.isfinite(pos)
    if bool(bad.any()):
        b, t, c = (int(i) for i in bad.nonzero()[0])
        n_rows = int(bad.any(dim=-1).sum())
        raise PEInputError(
            f"{name} holds non-finite values (NaN/inf) at {n_rows} row(s), first at batch {b}, step {t}, "
            f"context {c}: {float(pos[b, t, c])}. Positions of valid steps must be finite; give padded steps "
            "any finite value (AttentionLayer with key_padding_mask does this for you)"
        )


def as_positions(pos: Tensor, context_dim: int, name: str = "pos", check_finite: bool = True) -> Tensor:
    """Positions as a float (B, T, C) tensor, without knowing B and T.

    Accepts (B, T, C), (T, C) (read as one sequence, B = 1) and, when ``context_dim == 1``, (B, T).
    The last dim must equal ``context_dim``; values must be real and finite (PEInputError otherwise).
    Integer positions are converted to float32.
    """
    if not isinstance(pos, Tensor):
        raise PETypeError(f"{name} must be a tensor of shape (B, T, C), got {type(pos).__name__}")
    if pos.dtype == torch.bool or pos.is_complex():
        raise PETypeError(f"{name} must be real-valued, got {pos.dtype}")
    if pos.dim() == 2:
        pos = pos.unsqueeze(0) if pos.shape[-1] == context_dim else pos.unsqueeze(-1)
    if pos.dim() != 3 or pos.shape[-1] != context_dim:
        raise PEInputError(
            f"{name} must have shape (B, T, C={context_dim}) (or (T, {context_dim})"
            + (", or (B, T)" if context_dim == 1 else "")
            + f"), got {tuple(pos.shape)}: this PE was built with context_dim={context_dim}"
        )
    if not pos.is_floating_point():
        pos = pos.to(torch.float32)
    if check_finite:
        _check_finite(pos, name)
    return pos


def check_positions(
    pos: Tensor, batch: int, length: int, context_dim: int, name: str, dtype: torch.dtype
) -> Tensor:
    """Return ``pos`` as (B, T, C) in ``dtype``.

    Accepts (B, T, C), (1, T, C) and (T, C) (broadcast over the batch) and, when C == 1, (B, T). Raises
    PEInputError naming the problem for a wrong shape, a wrong C, a non-real dtype or a non-finite value.
    """
    if context_dim == 1 and isinstance(pos, Tensor) and tuple(pos.shape) == (batch, length):
        pos = pos.unsqueeze(-1)
    pos = as_positions(pos, context_dim, name)
    if pos.shape[1] != length or pos.shape[0] not in (1, batch):
        raise PEInputError(
            f"{name} must have shape (B={batch}, T={length}, C={context_dim}) (or (1, T, C) / (T, C)), "
            f"got {tuple(pos.shape)}"
        )
    if pos.shape[0] != batch:
        pos = pos.expand(batch, -1, -1)
    return pos.to(dtype)


def autocast_off(device_type: str) -> AbstractContextManager:
    """A context with autocast off on ``device_type``: PEs and the attention kernels compute in float32 at
    least. A no-op context when autocast is not on there (entering ``torch.autocast`` costs microseconds,
    paid several times per generated token)."""
    if not torch.compiler.is_compiling():
        try:
            on = torch.is_autocast_enabled(device_type)
        except TypeError:  # torch < 2.4: no device argument
            on = torch.is_autocast_enabled() if device_type == "cuda" else torch.is_autocast_cpu_enabled()
        if not on:
            return nullcontext()
    return torch.autocast(device_type=device_type, enabled=False)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype PEs compute in: ``dtype`` promoted to float32 at least (bf16/fp16 → float32)."""
    return torch.promote_types(dtype, torch.float32)


def check_qk(
    q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor | None, n_heads: int, head_dim: int, context_dim: int
) -> tuple[Tensor, Tensor]:
    """Check q (B, Tq, H, D), k (B, Tk, H, D) and positions; return pos_q, pos_k as (B, T, C).

    Positions come back in ``compute_dtype(q.dtype)`` (float32 at least), never in bf16/fp16.
    """
    for name, x in (("q", q), ("k", k)):
        if not isinstance(x, Tensor) or x.dim() != 4:
            raise PETypeError(f"{name} must be a 4-d tensor (B, T, H, D), got {getattr(x, 'shape', x)!r}")
        if not x.is_floating_point():
            raise PETypeError(f"{name} must be floating point, got {x.dtype}")
        if tuple(x.shape[2:]) != (n_heads, head_dim):
            raise PEInputError(
                f"{name} must have H={n_heads}, D={head_dim} in (B, T, H, D), got {tuple(x.shape)}"
            )
    if q.shape[0] != k.shape[0]:
        raise PEInputError(f"q and k batch sizes differ: {q.shape[0]} vs {k.shape[0]}")
    if q.dtype != k.dtype:
        raise PEInputError(f"q and k dtypes differ: {q.dtype} vs {k.dtype}")
    if pos_k is None:
        if q.shape[1] != k.shape[1]:
            raise PEInputError("pos_k is required when q and k have different lengths")
        pos_k = pos_q
    dtype = compute_dtype(q.dtype)
    same = pos_k is pos_q and q.shape[:2] == k.shape[:2]  # self-attention: check (and convert) once
    pos_q = check_positions(pos_q, q.shape[0], q.shape[1], context_dim, "pos_q", dtype)
    pos_k = pos_q if same else check_positions(pos_k, k.shape[0], k.shape[1], context_dim, "pos_k", dtype)
    return pos_q, pos_k


class PositionalEncoding(nn.Module):
    """Base class of every PE that :func:`stripes.pe.build_pe` returns.

    Attributes
    ----------
    kind : str
        ``"qk"`` (maps q, k; see :class:`QKPositionalEncoding`), ``"input"`` (``embed(pos)`` added to the
        model input) or ``"bias"`` (``bias(pos_q, pos_k)`` added to softmax logits).
    context_dim : int
        Width C of the positions (B, T, C): 1 for scalar labels (TIME, REP, KEY), 12 for chroma (BIN).
    description : str
        One line naming the method and the paper equation.
    stochastic : bool
        True when training forwards draw fresh noise (SPE, F-StrIPE:SFF); eval is deterministic.
    """

    kind: str = ""
    context_dim: int = 1
    description: str = ""
    stochastic: bool = False


class QKPositionalEncoding(PositionalEncoding):
    """Base class of q/k-level PEs: ``q_out, k_out = pe(q, k, pos_q, pos_k=None)``.

    Parameters
    ----------
    head_dim : int
        D, the per-head size of q and k.
    n_heads : int
        H.
    context_dim : int
        C, the width of the positions.

    Attributes
    ----------
    out_dim : int
        Size of q_out, k_out (D for RoPE/F-StrIPE, D/2 for RoPEPool, R for SPE/SFF...). Attention on them
        keeps the temperature 1/sqrt(head_dim): q_out · k_out approximates the PE-enriched q · k.

    Methods
    -------
    forward(q, k, pos_q, pos_k=None)
        q (B, Tq, H, D), k (B, Tk, H, D), positions (B, T, C), (1, T, C) or (T, C) (and (B, T) when C = 1)
        → q_out (B, Tq, H, out_dim), k_out (B, Tk, H, out_dim). Each output row depends only on its own
        q/k row and position (which is what lets a cache stream them token by token).
    scores(q, k, pos_q, pos_k=None)
        (B, H, Tq, Tk) = q_out · k_out, the logits before any feature map.
    kernel_scores(q, k, pos_q, pos_k=None)
        Where defined (RoPE, RoPEPool, F-StrIPE₁, F-StrIPE), the paper's closed form of the same scores.

    Subclasses implement ``_encode(q, k, pos_q, pos_k)`` on checked inputs (q, k and positions (B, T, C)
    all in ``compute_dtype(q.dtype)``, autocast off) and set ``out_dim``, ``description``.
    """

    kind = "qk"

    def __init__(self, head_dim: int, n_heads: int, context_dim: int = 1) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.n_heads = n_heads
        self.context_dim = context_dim
        self.out_dim = head_dim

    def forward(
        self, q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """q (B, Tq, H, D), k (B, Tk, H, D), pos (B, T, C) → q_out (B, Tq, H, out), k_out (B, Tk, H, out)."""
        pos_q, pos_k = check_qk(q, k, pos_q, pos_k, self.n_heads, self.head_dim, self.context_dim)
        return self.encode_checked(q, k, pos_q, pos_k)

    def encode_checked(self, q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`forward` after its checks, for a caller that has made them: q (B, Tq, H, D),
        k (B, Tk, H, D), pos_q (B, Tq, C), pos_k (B, Tk, C) finite, in ``compute_dtype(q.dtype)`` (the
        attention layer, which checks its positions once per call)."""
        dtype, work = q.dtype, pos_q.dtype
        with autocast_off(q.device.type):
            q_out, k_out = self._encode(q.to(work), k.to(work), pos_q, pos_k)
        return q_out.to(dtype), k_out.to(dtype)

    def _encode(self, q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def _checked(
        self, q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Checked q, k, pos_q, pos_k, all in ``compute_dtype(q.dtype)`` (for the closed-form kernels)."""
        pos_q, pos_k = check_qk(q, k, pos_q, pos_k, self.n_heads, self.head_dim, self.context_dim)
        return q.to(pos_q.dtype), k.to(pos_q.dtype), pos_q, pos_k

    def scores(self, q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor | None = None) -> Tensor:
        """Attention logits before any feature map: (B, H, Tq, Tk) = q_out · k_out."""
        q_out, k_out = self(q, k, pos_q, pos_k)
        return torch.einsum("bmhe,bnhe->bhmn", q_out, k_out)

    def extra_repr(self) -> str:
        return (
            f"head_dim={self.head_dim}, n_heads={self.n_heads}, "
            f"context_dim={self.context_dim}, out_dim={self.out_dim}"
        )
