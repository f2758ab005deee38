"""P3 S S-RPE ([C3] nn.py): an additive attention bias from sinusoidal embeddings of label differences.

For each context column s: r^s_mn = W_s Sin_{base_s}(l_m − l_n) ∈ R^{d_model}, split into heads the P3
way (``view(..., d_head, H)``: head h owns entries i·H + h), and the logits get
e_mn += Σ_s (q_mh/√d_head)·r^s_mnh. With sin(a−b), cos(a−b) expanded, this is a product of a
(Tq, 2·d_model) and a (Tk, 2·d_model) matrix per level, so no (Tq, Tk, d_model) tensor is built.

Labels are few (a 16-bar POP909 window has about 12-15 pitches, 12-15 chords, 4 sections): for a column
whose keys take K distinct values in a window, q's score is computed once per distinct value, (Tq, K),
and spread over the keys by a one-hot (K, Tk) matrix, so the big product has inner size K instead of
2·d_model (768 → ~33 at the cpu profile). The result is the same sum (test: both paths equal the
materialised formula, outputs and gradients); ``distinct`` picks the path per column: ``"auto"``
(default: one-hot when K ≤ d_model), ``"always"``, ``"never"``.
The attention layer calls :meth:`SRPE.fold`, which moves the bias into q and k (q'·k' = q·k + √D·bias), so
no (Tq, Tk) bias is built (``fold=False``: the bias tensor, as P3 computes it).
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
from stripes.pe.base import PEInputError, PositionalEncoding, check_positions, compute_dtype


class SRPE(PositionalEncoding):
    """P3's sinusoidal structure RPE (S S-RPE): a softmax logit bias, ``bias(pos_q, pos_k, q=None)``.

    ``kind == "bias"``: **softmax attention only** (the attention layer raises ``ConfigError`` with
    ``attention="linear"``); quadratic in T. For each context column s the logits get
    e_mn += Σ_s (q_mh/√d_head)·[W_s Sin_{base_s}(l_m − l_n)]_h, computed without a (Tq, Tk, d_model)
    tensor. The attention layer calls :meth:`fold`, which moves the bias into q and k. See docs/pe.md and
    docs/papers.md §7.

    Parameters
    ----------
    head_dim : int
        D, the per-head width of q and k.
    n_heads : int
        H, the number of heads.
    context_dim : int, default 1
        C, the number of label columns (one W_s and one base per column).
    d_model : int or None, default None
        Model width; must equal ``n_heads * head_dim`` (``None``: that product).
    bases : sequence of float or None, default None
        One sinusoid base (> 1) per column, as :class:`stripes.pe.SAPE`; ``None`` cycles P3's four bases.
    distinct : {"auto", "always", "never"}, default "auto"
        How a column's keys are handled: "always" computes q's score once per distinct key label and
        spreads it with a one-hot matrix; "never" uses the dense sin/cos factors; "auto" takes the one-hot
        path when a column has at most d_model distinct labels. Same result, different speed.
    fold : bool, default True
        :meth:`fold` moves the bias into q and k (q'·k' = q·k + √D·bias), so no (Tq, Tk) bias is built;
        False returns the explicit bias tensor, as P3 computes it.

    Attributes
    ----------
    proj : nn.Parameter
        W_s, (C, d_model, d_model).
    u : nn.Parameter
        (H, D) content-free query used when ``bias`` gets no q.
    """

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
        distinct: str = "auto",
        fold: bool = True,
    ) -> None:
        """Build the SRPE; the parameters are described in the class docstring."""
        super().__init__()
        if distinct not in ("auto", "always", "never"):
            raise ConfigError(f"srpe distinct must be 'auto', 'always' or 'never', got {distinct!r}")
        self.distinct, self.fold_into_qk = distinct, bool(fold)
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
        """The additive logit bias.

        Parameters
        ----------
        pos_q : Tensor
            Query labels (B, Tq, C) (or (B, Tq) when C = 1).
        pos_k : Tensor, optional
            Key labels (B, Tk, C); ``None`` uses ``pos_q``.
        q : Tensor, optional
            Projected queries (B, Tq, H, D); ``None`` uses the learnable vector ``u`` instead of q/√D.

        Returns
        -------
        Tensor
            Bias (B, H, Tq, Tk), in q's dtype (or the default dtype without q).
        """
        out_dtype = q.dtype if q is not None else torch.get_default_dtype()
        left, right, _ = self.factors(pos_q, pos_k, q)
        with _full_precision(left):
            return (left @ right).to(out_dtype)

    def fold(
        self, q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Fold the bias into q and k, so softmax attention at temperature 1/√D needs no (Tq, Tk) bias.

        q'·k' = q·k + √D·bias, so SDPA may take its fused causal path. With ``fold=False``, or in
        bf16 / fp16 when a column has many labels (it would sum 2·d_model rounded products), the bias is
        returned instead.

        Parameters
        ----------
        q : Tensor
            Queries (B, Tq, H, D).
        k : Tensor
            Keys (B, Tk, H, D).
        pos_q : Tensor
            Query labels (B, Tq, C).
        pos_k : Tensor, optional
            Key labels (B, Tk, C); ``None`` uses ``pos_q``.

        Returns
        -------
        tuple of Tensor
            ``(q', k', None)`` with q' (B, Tq, H, D + F), k' (B, Tk, H, D + F); or ``(q, k, bias)`` with
            bias (B, H, Tq, Tk).
        """
        tk = (pos_q if pos_k is None else pos_k).shape[1]
        if k.dim() != 4 or tuple(k.shape) != (q.shape[0], tk, self.n_heads, self.head_dim):
            raise PEInputError(
                f"k must have shape (B={q.shape[0]}, Tk={tk}, H={self.n_heads}, D={self.head_dim}), "
                f"got {tuple(k.shape)}"
            )
        left, right, all_distinct = self.factors(pos_q, pos_k, q)
        if not self.fold_into_qk or (not all_distinct and q.dtype not in (torch.float32, torch.float64)):
            with _full_precision(left):
                return q, k, (left @ right).to(q.dtype)
        scale = math.sqrt(self.head_dim)
        q_extra = (left * scale).transpose(1, 2).to(q.dtype)  # (B, Tq, H, F)
        k_extra = right.squeeze(1).transpose(1, 2).unsqueeze(2).expand(-1, -1, self.n_heads, -1)
        return torch.cat((q, q_extra), dim=-1), torch.cat((k, k_extra.to(k.dtype)), dim=-1), None

    def factors(
        self, pos_q: Tensor, pos_k: Tensor | None = None, q: Tensor | None = None
    ) -> tuple[Tensor, Tensor, bool]:
        """The two factors of the bias, bias = left @ right.

        Parameters
        ----------
        pos_q : Tensor
            Query labels (B, Tq, C).
        pos_k : Tensor, optional
            Key labels (B, Tk, C); ``None`` uses ``pos_q``.
        q : Tensor, optional
            Queries (B, Tq, H, D); ``None`` uses ``u``.

        Returns
        -------
        tuple
            ``(left, right, all_distinct)``: left (B, H, Tq, F), right (B, 1, F, Tk), in float32 at least;
            ``all_distinct`` says whether every column took the one-hot path (right is then exactly 0/1).
        """
        out_dtype = q.dtype if q is not None else torch.get_default_dtype()
        # labels (chord ids up to 395) and angles are not representable in bf16/fp16: float32 at least
        dtype = compute_dtype(out_dtype)
        with _full_precision(pos_q):
            return self._factors(pos_q, pos_k, q, dtype)

    def _factors(
        self, pos_q: Tensor, pos_k: Tensor | None, q: Tensor | None, dtype: torch.dtype
    ) -> tuple[Tensor, Tensor, bool]:
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
        even = (torch.arange(self.d_model, device=pos_q.device) % 2) == 0
        # bias = Σ_s left_s @ right_s, one matmul over the concatenated inner dimension. A column with few
        # distinct key labels gives (q's score for each distinct label, one-hot of each key's label); any
        # other column gives (query-side features, key-side features cos/sin(l_n ω)).
        left, right, all_distinct = [], [], True
        for s in range(self.context_dim):
            omega = self.omegas[s].to(dtype)  # (d_model,)
            u = torch.einsum("bmhi,ihj->bhmj", qs, w[s])  # (B, H, Tq, d_model)
            aq = (pos_q[..., s].unsqueeze(-1) * omega).unsqueeze(1)  # (B, 1, Tq, d_model)
            # Sin(a − b)_j: sin(a−b)ω = sin aω cos bω − cos aω sin bω (even j),
            #               cos(a−b)ω = cos aω cos bω + sin aω sin bω (odd j)
            cq = torch.where(even, torch.sin(aq), torch.cos(aq))  # coefficient of cos(bω)
            sq = torch.where(even, -torch.cos(aq), torch.sin(aq))  # coefficient of sin(bω)
            fq = torch.cat((u * cq, u * sq), dim=-1)  # (B, H, Tq, 2·d_model)
            ks = pos_k[..., s]  # (B, Tk)
            if self.distinct != "never":
                values, index = _distinct_per_row(ks)  # (B, K), (B, Tk)
                if self.distinct == "always" or values.shape[1] <= self.d_model:
                    av = values.unsqueeze(-1) * omega  # (B, K, d_model)
                    feat_v = torch.cat((torch.cos(av), torch.sin(av)), dim=-1)  # (B, K, 2·d_model)
                    left.append(fq @ feat_v.transpose(1, 2).unsqueeze(1))  # (B, H, Tq, K)
                    one_hot = index.unsqueeze(1) == torch.arange(values.shape[1], device=ks.device)[:, None]
                    right.append(one_hot.to(dtype).unsqueeze(1))  # (B, 1, K, Tk)
                    continue
            all_distinct = False
            ak = ks.unsqueeze(-1) * omega  # (B, Tk, d_model)
            left.append(fq)
            right.append(torch.cat((torch.cos(ak), torch.sin(ak)), dim=-1).transpose(1, 2).unsqueeze(1))
        return torch.cat(left, dim=-1), torch.cat(right, dim=-2), all_distinct

    def forward(self, pos_q: Tensor, pos_k: Tensor | None = None, q: Tensor | None = None) -> Tensor:
        """Same as :meth:`bias`: (B, H, Tq, Tk)."""
        return self.bias(pos_q, pos_k, q)


def _full_precision(like: Tensor | object) -> torch.autocast:
    """Autocast off on the device of ``like`` (the factors and their product stay in their own dtype)."""
    device_type = like.device.type if isinstance(like, Tensor) else "cpu"
    return torch.autocast(device_type=device_type, enabled=False)


def _distinct_per_row(labels: Tensor) -> tuple[Tensor, Tensor]:
    """labels (B, T) → (values (B, K), index (B, T)) with labels[b, t] == values[b, index[b, t]].

    K is the largest count of distinct labels in a row; a row with fewer pads ``values`` with its own
    labels (no key points there, so the padding never reaches the bias)."""
    sorted_labels, order = labels.sort(dim=1)
    first = torch.ones_like(sorted_labels, dtype=torch.bool)
    first[:, 1:] = sorted_labels[:, 1:] != sorted_labels[:, :-1]
    rank = first.long().cumsum(1) - 1  # (B, T): index of each sorted label among its row's distinct ones
    k = int(rank[:, -1].max()) + 1 if labels.shape[1] else 0
    index = torch.empty_like(rank).scatter_(1, order, rank)
    values = sorted_labels[:, :1].expand(-1, k).clone() if k else sorted_labels.new_zeros(labels.shape[0], 0)
    values.scatter_(1, rank, sorted_labels)  # equal labels write the same value
    return values, index
