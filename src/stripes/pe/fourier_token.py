"""Per-token fused pooled Fourier codes: the mixed (SFF / SPE) path of ``fourier_pool_fused``.

Per token t, head h, dim d, sine n:
  φ = 2π F_dn·p_t (shared by queries and keys at the same positions), c = cos φ, s = sin φ,
  A_x[d, :] = [α c − β s | β c + α s] with α = λ cos θ, β = λ sin θ (keys: θ = 0, so A = λ [c | s]),
i.e. A_x = λ Ω_d(p) with the phases θ folded in by the angle-addition formula (P2 eq. (9)), and
  pooled:  out_x[t, :] = Σ_d x_td A_x[t, d, :]                 (a (1, D) @ (D, 2N) product per token)
  mixed:   out_x[t, r] = Σ_{d, j} x_td A_x[t, d, j] mix_djr     (SFF / SPE, P1 eq. (7))
The cos / sin are computed once per *distinct* position when the table of distinct positions is small
enough, and the tokens are processed in cache-sized chunks; backward recomputes c, s and applies the
closed-form gradients, so nothing of size (B, T, H, D, N) is kept for backward. With mixing, the per-token
work is dominated by the (tokens, 2N·D) @ (2N·D, R) matmuls, which this path runs on large token chunks;
the per-distinct-position path of ``fourier_fused`` measured slower there (its tables are R/2N times wider).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

import torch
from torch import Tensor

from stripes.pe.fourier import TWO_PI, fill_code, phase_matrix

# code entries (H·D·N) per chunk of tokens: large enough to amortise Python overhead, small enough for L2/L3
CHUNK_ENTRIES = 1 << 18
# largest (distinct positions × H·D·N) cos / sin table built to share the codes between repeated positions
TABLE_ENTRIES = 1 << 24


class _PosCache(threading.local):
    """Distinct rows of the last positions tensor seen (per object and version, per thread), shared across
    layers."""

    def __init__(self) -> None:
        self.ref = None
        self.key = None
        self.value = None

    def get(self, pos: Tensor) -> tuple[Tensor, Tensor]:
        key = (pos._version, tuple(pos.shape), pos.dtype, pos.device)
        if self.ref is not None and self.ref() is pos and self.key == key:
            return self.value
        uniq, inv = torch.unique(pos.reshape(-1, pos.shape[-1]), dim=0, return_inverse=True)
        self.ref, self.key, self.value = weakref.ref(pos), key, (uniq, inv)
        return uniq, inv


_POS_CACHE = _PosCache()


class _Plan:
    """What the fused kernels need besides the tensors: sizes, chunking, the table of distinct positions."""

    def __init__(self, pos: Tensor, freqs: Tensor, chunk_tokens: int | None) -> None:
        b, t, c = pos.shape
        h, d, n, _ = freqs.shape
        self.tokens, self.h, self.d, self.n, self.c = b * t, h, d, n, c
        hdn = h * d * n
        step = max(1, CHUNK_ENTRIES // hdn)
        if chunk_tokens:
            step = min(step, chunk_tokens)
        self.step = min(step, self.tokens)
        self.inv: Tensor | None = None
        self.uniq: Tensor | None = None
        if self.tokens > 1 and not pos.requires_grad:
            uniq, inv = _POS_CACHE.get(pos)
            if uniq.shape[0] * hdn <= TABLE_ENTRIES and uniq.shape[0] <= 0.75 * self.tokens:
                self.uniq, self.inv = uniq, inv


_WORKSPACE = threading.local()


def _table_buffers(rows: int, cols: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """Two (rows, cols) scratch tables, reused between calls (per thread, device and dtype).

    Fresh multi-MiB CPU tensors are paid in page faults on every allocation (about as much as the cos
    itself); the tables live only inside one forward or backward, so one reusable pair suffices.
    """
    store = getattr(_WORKSPACE, "tables", None)
    if store is None:
        store = _WORKSPACE.tables = {}
    key = (like.device, like.dtype)
    buf = store.get(key)
    if buf is None or buf.numel() < 2 * rows * cols:
        buf = store[key] = like.new_empty(2 * rows * cols)
    return buf[: rows * cols].view(rows, cols), buf[rows * cols : 2 * rows * cols].view(rows, cols)


def _cos_sin(plan: _Plan, pos_flat: Tensor, f2: Tensor) -> Callable[[int, int], tuple[Tensor, Tensor]]:
    """Return chunk(start, stop) -> (cos φ, sin φ), each (n, H, N, D) (d innermost), for tokens start:stop.

    ``f2`` (C, H·N·D) holds 2π F with its columns in (h, n, d) order.
    """
    shape = (plan.h, plan.n, plan.d)
    if plan.uniq is not None:
        uniq, inv = plan.uniq.to(f2.dtype), plan.inv
        cos_t, sin_t = _table_buffers(uniq.shape[0], f2.shape[1], f2)
        for a in range(0, uniq.shape[0], plan.step):  # in cache-sized blocks: φ, then cos, sin
            ph = uniq[a : a + plan.step] @ f2
            torch.cos(ph, out=cos_t[a : a + plan.step])
            torch.sin(ph, out=sin_t[a : a + plan.step])

        def chunk(a: int, b: int) -> tuple[Tensor, Tensor]:
            idx = inv[a:b]
            return cos_t.index_select(0, idx).view(-1, *shape), sin_t.index_select(0, idx).view(-1, *shape)

        return chunk

    def chunk(a: int, b: int) -> tuple[Tensor, Tensor]:
        ph = pos_flat[a:b] @ f2
        return torch.cos(ph).view(-1, *shape), torch.sin(ph).view(-1, *shape)

    return chunk


def _rotation(gains: Tensor, offsets: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """α = λ cos θ, β = λ sin θ, (H, N, D) (from (H, D, N) inputs); keys (θ = None): α = λ, β = None."""
    lam = gains.transpose(1, 2).contiguous()
    if offsets is None:
        return lam, None
    th = offsets.transpose(1, 2)
    return lam * torch.cos(th), lam * torch.sin(th)


class _FourierPoolFn(torch.autograd.Function):
    """Pooled (optionally mixed) Fourier codes of several x sharing one set of positions.

    apply(plan, pos (B, T, C), freqs (H, D, N, C), gains (H, D, N), mix (H, D, 2N, R) | None,
          x_1 (B, T, H, D), offsets_1 (H, D, N) | None, x_2, offsets_2, ...) -> one output per x,
    (B, T, H, 2N) without mix, (B, T, H, R) with it. Inside, codes are laid out (token, H, 2, N, D) with
    d innermost (every elementwise op then runs over contiguous D-long rows).
    """

    @staticmethod
    def forward(ctx, plan, pos, freqs, gains, mix, *xs_offsets):  # type: ignore[override]
        xs, offs = xs_offsets[0::2], xs_offsets[1::2]
        b, t = pos.shape[:2]
        h, d, n = plan.h, plan.d, plan.n
        dtype = xs[0].dtype
        f2 = phase_matrix(freqs, dtype)
        pos_flat = pos.reshape(plan.tokens, plan.c).to(dtype)
        rots = [_rotation(gains.to(dtype), None if o is None else o.to(dtype)) for o in offs]
        flat = [x.reshape(plan.tokens, h, d) for x in xs]
        width = 2 * n if mix is None else mix.shape[-1]
        outs = [xs[0].new_empty(plan.tokens, h, width) for _ in xs]
        mix_h = None if mix is None else _mix_matrix(mix, dtype)
        cos_sin = _cos_sin(plan, pos_flat, f2)
        for a in range(0, plan.tokens, plan.step):
            e = min(a + plan.step, plan.tokens)
            m = e - a
            c, s = cos_sin(a, e)
            buf = c.new_empty(m, h, 2, n, d)
            for x, (alpha, beta), out in zip(flat, rots, outs):
                code = fill_code(buf, c, s, alpha, beta)
                if mix_h is None:  # out_t = x_t @ A_t^T, one (1, D) @ (D, 2N) product per (token, head)
                    res = torch.bmm(x[a:e].reshape(m * h, 1, d), code.view(m * h, 2 * n, d).transpose(1, 2))
                    out[a:e] = res.view(m, h, 2 * n)
                else:  # w = x ⊙ A, then per head (m, 2N·D) @ (2N·D, R)
                    w = (code * x[a:e, :, None, None, :]).view(m, h, 2 * n * d)
                    out[a:e] = torch.bmm(w.transpose(0, 1), mix_h).transpose(0, 1)
        ctx.plan = plan
        ctx.has_offsets = [o is not None for o in offs]
        ctx.save_for_backward(pos, freqs, gains, mix, *xs, *[o for o in offs if o is not None])
        return tuple(o.view(b, t, h, width) for o in outs)

    @staticmethod
    def backward(ctx, *grads):  # type: ignore[override]
        plan: _Plan = ctx.plan
        saved = ctx.saved_tensors
        pos, freqs, gains, mix = saved[:4]
        nx = len(ctx.has_offsets)
        xs = saved[4 : 4 + nx]
        it = iter(saved[4 + nx :])
        offs = [next(it) if has else None for has in ctx.has_offsets]
        h, d, n, cdim = plan.h, plan.d, plan.n, plan.c
        dtype = xs[0].dtype
        hnd = h * n * d
        f2 = phase_matrix(freqs, dtype)
        pos_flat = pos.reshape(plan.tokens, cdim).to(dtype)
        rots = [_rotation(gains.to(dtype), None if o is None else o.to(dtype)) for o in offs]
        flat = [x.reshape(plan.tokens, h, d) for x in xs]
        width = 2 * n if mix is None else mix.shape[-1]
        gflat = [None if g is None else g.reshape(plan.tokens, h, width).to(dtype) for g in grads]
        active = [i for i, g in enumerate(gflat) if g is not None]
        gx = [torch.zeros_like(x) if ctx.needs_input_grad[5 + 2 * i] else None for i, x in enumerate(flat)]
        mix_h = None if mix is None else _mix_matrix(mix, dtype)
        gmix = None if mix is None or not ctx.needs_input_grad[4] else torch.zeros_like(mix_h)
        gpos = torch.zeros_like(pos_flat) if ctx.needs_input_grad[1] else None
        gphi_p = pos_flat.new_zeros(cdim, hnd)  # Σ_t p_t dL/dφ_t
        sums: dict[int, tuple[Tensor, Tensor]] = {}  # i -> (dL/dα_i, dL/dβ_i) = (Σ_t X_i, Σ_t Y_i)
        cos_sin = _cos_sin(plan, pos_flat, f2)
        for a in range(0, plan.tokens, plan.step):
            e = min(a + plan.step, plan.tokens)
            m = e - a
            c, s = cos_sin(a, e)
            gphi = c.new_zeros(m, h, n, d)
            xbuf, ybuf = c.new_empty(m, h, n, d), c.new_empty(m, h, n, d)
            buf = c.new_empty(m, h, 2, n, d) if gmix is not None else None
            for i in active:
                x, (alpha, beta) = flat[i][a:e], rots[i]
                g = gflat[i][a:e]
                xe = x[:, :, None, :]  # (m, H, 1, D)
                if mix_h is None:  # dL/dA_x[t, j, d] = g_tj x_td (rank one); g spread over d once
                    gw = g.view(m, h, 2 * n, 1).expand(m, h, 2 * n, d).contiguous().view(m, h, 2, n, d)
                else:  # dL/dw = g mix^T; w = x ⊙ A_x recomputed for dL/dmix = Σ_t w_t^T g_t
                    if gmix is not None:
                        code = fill_code(buf, c, s, alpha, beta)
                        w = (code * xe[:, :, None]).view(m, h, 2 * n * d)
                        gmix.baddbmm_(w.transpose(0, 1).transpose(1, 2), g.transpose(0, 1))
                    gw = torch.bmm(g.transpose(0, 1), mix_h.transpose(1, 2)).transpose(0, 1)
                    gw = gw.view(m, h, 2, n, d)
                gc, gs = gw[:, :, 0], gw[:, :, 1]
                # P = c gc + s gs, Q = c gs − s gc (per token): dL/dα = Σ_t x P, dL/dβ = Σ_t x Q
                p = torch.mul(c, gc)
                p.addcmul_(s, gs)
                q = torch.mul(c, gs)
                q.addcmul_(s, gc, value=-1.0)
                if gx[i] is not None:  # dL/dx_td = Σ_n α P + β Q
                    acc = torch.mul(p, alpha)
                    if beta is not None:
                        acc.addcmul_(q, beta)
                    gx[i][a:e] += acc.sum(-2)
                xs_, ys_ = torch.mul(p, xe, out=xbuf), torch.mul(q, xe, out=ybuf)
                sx, sy = xs_.sum(0), ys_.sum(0)
                if i in sums:
                    sums[i][0].add_(sx)
                    sums[i][1].add_(sy)
                else:
                    sums[i] = (sx, sy)
                gphi.addcmul_(ys_, alpha)  # dL/dφ = α Y − β X
                if beta is not None:
                    gphi.addcmul_(xs_, beta, value=-1.0)
            gphi_p.addmm_(pos_flat[a:e].T, gphi.view(m, hnd))
            if gpos is not None:
                gpos[a:e] = gphi.view(m, hnd) @ f2.T
        # parameters: φ = 2π F·p, α = λ cos θ, β = λ sin θ; everything below is (H, N, D) -> (H, D, N)
        ggains = torch.zeros(h, n, d, dtype=dtype, device=pos.device)
        goffs: list[Tensor | None] = [None] * nx
        for i in active:
            g_alpha, g_beta = sums[i]
            if offs[i] is None:
                ggains += g_alpha
            else:
                th = offs[i].to(dtype).transpose(1, 2)
                cos_t, sin_t = torch.cos(th), torch.sin(th)
                ggains += g_alpha * cos_t + g_beta * sin_t
                goff = gains.to(dtype).transpose(1, 2) * (g_beta * cos_t - g_alpha * sin_t)
                goffs[i] = goff.transpose(1, 2).to(offs[i].dtype)
        b, t = pos.shape[:2]
        grad_freqs = (TWO_PI * gphi_p).view(cdim, h, n, d).permute(1, 3, 2, 0).to(freqs.dtype)
        grad_gains = ggains.transpose(1, 2).to(gains.dtype)
        grad_mix = None
        if gmix is not None:
            grad_mix = gmix.view(h, 2, n, d, -1).permute(0, 3, 1, 2, 4).reshape(mix.shape).to(mix.dtype)
        grad_pos = None if gpos is None else gpos.view(b, t, cdim).to(pos.dtype)
        out: list[Tensor | None] = [None, grad_pos, grad_freqs, grad_gains, grad_mix]
        for i in range(nx):
            out.append(None if gx[i] is None else gx[i].view(xs[i].shape))
            out.append(goffs[i])
        return tuple(out)


def _mix_matrix(mix: Tensor, dtype: torch.dtype) -> Tensor:
    """mix (H, D, 2N, R) -> (H, 2·N·D, R) with rows in the (cos/sin, n, d) order of the fused codes."""
    h, d, j, r = mix.shape
    return mix.to(dtype).view(h, d, 2, j // 2, r).permute(0, 2, 3, 1, 4).reshape(h, j * d, r)


def fourier_pool_tokens(
    xs: list[tuple[Tensor, Tensor | None]],
    pos: Tensor,
    freqs: Tensor,
    gains: Tensor,
    mix: Tensor | None = None,
    chunk_size: int | None = None,
) -> list[Tensor]:
    """Per-token fused codes (the mixed path of :func:`stripes.pe.fourier_fused.fourier_pool_fused`).

    xs: (x (B, T, H, D), offsets (H, D, N) or None) pairs; pos (B, T, C); freqs (H, D, N, C) cycles per unit;
    gains (H, D, N); mix (H, D, 2N, R) or None. Returns, per x, Σ_d x_d λ ⊙ Ω_d(p) (B, T, H, 2N) without
    ``mix`` and Σ_{d,j} x_d λ_dj Ω_dj(p) mix_djr (B, T, H, R) with it; the same function as
    :func:`fourier_pool` (tested), computed without (B, T, H, D, N) intermediates. ``chunk_size`` (time
    steps) caps the tokens per chunk at B · chunk_size.
    """
    b = pos.shape[0]
    plan = _Plan(pos, freqs, None if not chunk_size else b * int(chunk_size))
    args: list[Tensor | None] = []
    for x, off in xs:
        args += [x, off]
    return list(_FourierPoolFn.apply(plan, pos, freqs, gains, mix, *args))
