"""P3 S S-RPE ([C3] nn.py): an additive attention bias from sinusoidal embeddings of label differences.

For each context column s: r^s_mn = W_s Sin_{base_s}(l_m − l_n) ∈ R^{d_model}, split into heads the P3
way (``view(..., d_head, H)``: head h owns entries i·H + h), and the logits get
e_mn += Σ_s (q_mh/√d_head)·r^s_mnh. With sin(a−b), cos(a−b) expanded, this is a product of a
(Tq, 2·d_model) and a (Tk, 2·d_model) matrix per level, so no (Tq, Tk, d_model) tensor is built.
If ``bias`` is called without q, a learnable per-head vector u_h (H, d_head) replaces q_mh/√d_head
(a Transformer-XL style content-free positional bias).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from stripes.errors import ConfigError
from stripes.pe.ape import check_d_model, p3_frequencies, resolve_bases
from stripes.pe.base import PEInputError, check_positions, compute_dtype


class SRPE(nn.Module):
    """Structure RPE bias: ``bias(pos_q (B, Tq, C), pos_k (B, Tk, C), q=None) -> (B, H, Tq, Tk)``."""

    kind = "bias"
    stochastic = False
    description = "S-RPE (P3): softmax logit bias q·W Sin(label_m - label_n) per context column"

    def __init__(
        self,
        head_dim: int,
        n_heads: int,
        context_dim: int = 1,
        d_model: int | None = None,
        bases: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        d_model = check_d_model(d_model if d_model is not None else head_dim * n_heads, "srpe")
        if d_model != head_dim * n_heads:
            raise ConfigError(
                f"srpe needs d_model == n_heads * head_dim, got {d_model} vs {n_heads}*{head_dim}"
            )
        self.head_dim, self.n_heads, self.context_dim, self.d_model = head_dim, n_heads, context_dim, d_model
        self.bases = tuple(resolve_bases(bases, context_dim))
        omegas = torch.stack([p3_frequencies(d_model, b) for b in self.bases])
        self.register_buffer("omegas", omegas.float(), persistent=False)  # (C, d_model)
        self.proj = nn.Parameter(torch.randn(context_dim, d_model, d_model) / math.sqrt(d_model))  # W_s
        self.u = nn.Parameter(torch.randn(n_heads, head_dim) * 0.02)

    def bias(self, pos_q: Tensor, pos_k: Tensor | None = None, q: Tensor | None = None) -> Tensor:
        """pos (B, T, C), optional q (B, Tq, H, D) → bias (B, H, Tq, Tk)."""
        out_dtype = q.dtype if q is not None else torch.get_default_dtype()
        # labels (chord ids up to 395) and angles are not representable in bf16/fp16: float32 at least
        dtype = compute_dtype(out_dtype)
        device_type = pos_q.device.type if isinstance(pos_q, Tensor) else "cpu"
        with torch.autocast(device_type=device_type, enabled=False):
            return self._bias(pos_q, pos_k, q, dtype).to(out_dtype)

    def _bias(self, pos_q: Tensor, pos_k: Tensor | None, q: Tensor | None, dtype: torch.dtype) -> Tensor:
        if not isinstance(pos_q, Tensor) or pos_q.dim() not in (2, 3):
            raise PEInputError(f"pos_q must be a (B, T, C) tensor, got {getattr(pos_q, 'shape', pos_q)!r}")
        pos_k = pos_q if pos_k is None else pos_k
        b, tq = pos_q.shape[:2]
        pos_q = check_positions(pos_q, b, tq, self.context_dim, "pos_q", dtype)
        if not isinstance(pos_k, Tensor) or pos_k.dim() not in (2, 3):
            raise PEInputError(f"pos_k must be a (B, T, C) tensor, got {getattr(pos_k, 'shape', pos_k)!r}")
        pos_k = check_positions(pos_k, b, pos_k.shape[1], self.context_dim, "pos_k", dtype)
        h, dh = self.n_heads, self.head_dim
        if q is None:
            qs = self.u.to(dtype).expand(b, tq, h, dh)
        else:
            if q.dim() != 4 or tuple(q.shape) != (b, tq, h, dh):
                raise PEInputError(f"q must have shape (B={b}, Tq={tq}, H={h}, D={dh}), got {tuple(q.shape)}")
            qs = q.to(dtype) / math.sqrt(dh)
        # row i·H + h of W_s belongs to head h: W_s viewed as (d_head, H, d_model)
        w = self.proj.to(dtype).view(self.context_dim, dh, h, self.d_model)
        u = torch.einsum("bmhi,sihj->bmhsj", qs, w)  # (B, Tq, H, C, d_model)
        even = (torch.arange(self.d_model, device=pos_q.device) % 2) == 0
        aq = pos_q.unsqueeze(-1) * self.omegas.to(dtype)  # (B, Tq, C, d_model)
        ak = pos_k.unsqueeze(-1) * self.omegas.to(dtype)
        # Sin(a − b)_j: sin(a−b)ω = sin aω cos bω − cos aω sin bω (even j),
        #               cos(a−b)ω = cos aω cos bω + sin aω sin bω (odd j)
        cq = torch.where(even, torch.sin(aq), torch.cos(aq)).unsqueeze(2)  # coefficient of cos(bω)
        sq = torch.where(even, -torch.cos(aq), torch.sin(aq)).unsqueeze(2)  # coefficient of sin(bω)
        feat_q = torch.cat((u * cq, u * sq), dim=-1).flatten(-2)  # (B, Tq, H, C·2·d_model)
        feat_k = torch.cat((torch.cos(ak), torch.sin(ak)), dim=-1).flatten(-2)  # (B, Tk, C·2·d_model)
        return torch.einsum("bmhf,bnf->bhmn", feat_q, feat_k)

    def forward(self, pos_q: Tensor, pos_k: Tensor | None = None, q: Tensor | None = None) -> Tensor:
        return self.bias(pos_q, pos_k, q)
