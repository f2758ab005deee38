"""Fused pooled F-StrIPE codes, computed per *distinct position* with batched matmuls.

Per token t, head h, dim d, sine n: φ = 2π F_dn·p_t, c = cos φ, s = sin φ (shared by q and k). The code
A_x(p) (H, 2N, D) of each x is a function of the position only:
    A_x[:, :N] = a c − b s,  A_x[:, N:] = b c + a s,   out_x[t, h, :] = A_x(p_t)[h] @ x_t[h]   (2N, D) @ (D,)
with a = λ cos θ, b = λ sin θ (keys: a = λ, b = 0), i.e. the query phases folded in by angle addition
(P2 eq. (9)). Labels repeat (TIME is shared by the batch, BIN / chord labels take few values), so A_x is
built once per distinct position (U rows) and the tokens are grouped by position: rows are sorted by their
number of tokens, padded to a bucket size k (1, 2, 3, 4, 6, 8, 12, ...), and each bucket is one batched
matmul (rows · H, k, D) @ (rows · H, D, 2N) that reads each table row once. Backward applies the closed
form on the U rows: dL/dA_x[u] = Σ_{t at u} g_t x_tᵀ (one batched matmul per bucket), then dL/dc, dL/ds,
dL/dφ = c dL/ds − s dL/dc, dL/da, dL/db and dL/dF = 2π Σ_u p_u dL/dφ_u, all on (U, H·N·D) instead of
(B·T, H·N·D). The table is processed in cache-sized blocks of rows, so nothing of size (B, T, H, D, N) is
built. a, b are parameter-sized and computed outside the Function, under autograd. The mixed codes (SFF /
SPE) take the per-token path of :mod:`stripes.pe.fourier_token`.
"""

from __future__ import annotations

import threading
import weakref

import torch
from torch import Tensor

from stripes.pe.fourier import TWO_PI, fill_code, fourier_pool, phase_matrix
from stripes.pe.fourier_token import fourier_pool_tokens

# table entries (rows × H·D·max(N, R)) per block of distinct positions: cache-sized
CHUNK_ENTRIES = 1 << 18
# positions are deduplicated when they take at most this fraction of B·T distinct values
DEDUP_MAX_FRACTION = 0.75


def _bucket_sizes(n: int) -> Tensor:
    """1, 2, 3, 4, 6, 8, 12, 16, ... up to ≥ n (padding waste ≤ 1/3)."""
    out, p = [1, 2], 2
    while out[-1] < n:
        out += [3 * p // 2, 2 * p]
        p *= 2
    return torch.tensor(out)


class _Layout:
    """Distinct positions, ordered by bucket, and where every token sits in the padded bucket slots.

    rows (U, C): the distinct positions (every token's own when not deduplicated); buckets: (k, r0, r1, s0)
    = bucket size, row range, first slot; a row r of a bucket owns slots s0 + (r − r0)·k + j, j < k;
    row_of (B·T,): the row of each token; identity: rows are the tokens themselves (no deduplication).
    """

    def __init__(self, pos: Tensor, dedup: bool) -> None:
        flat = pos.reshape(-1, pos.shape[-1])
        tokens = flat.shape[0]
        uniq, inv = flat, None
        if dedup and tokens > 1:
            u, i = torch.unique(flat, dim=0, return_inverse=True)
            if u.shape[0] <= DEDUP_MAX_FRACTION * tokens:
                uniq, inv = u, i
        self.identity = inv is None
        dev = flat.device
        if inv is None:
            inv = torch.arange(tokens, device=dev)
        counts = torch.bincount(inv, minlength=uniq.shape[0])
        sizes = _bucket_sizes(int(counts.max()) if tokens else 1).to(dev)
        size = sizes[torch.searchsorted(sizes, counts)]
        order = torch.argsort(size, stable=True)
        self.rows = uniq[order]
        new = torch.empty_like(order)
        new[order] = torch.arange(order.numel(), device=dev)
        self.row_of = new[inv]
        size, counts = size[order], counts[order]
        tok_sorted = torch.argsort(self.row_of, stable=True)
        first_tok = torch.cumsum(counts, 0) - counts  # first sorted token of each row
        first_slot = torch.cumsum(size, 0) - size
        rank = torch.arange(tokens, device=dev) - first_tok[self.row_of[tok_sorted]]
        self.n_slots = int(size.sum())
        self.slot_tok = torch.full((self.n_slots,), tokens, dtype=torch.long, device=dev)  # tokens = pad
        self.slot_tok[first_slot[self.row_of[tok_sorted]] + rank] = tok_sorted
        self.buckets: list[tuple[int, int, int, int]] = []
        vals, lens = torch.unique_consecutive(size, return_counts=True)
        r0 = 0
        for k, cnt in zip(vals.tolist(), lens.tolist()):
            self.buckets.append((k, r0, r0 + cnt, int(first_slot[r0])))
            r0 += cnt
        self.tokens = tokens
        self._gather: dict[int, tuple[Tensor, Tensor]] = {}

    def gather_index(self, h: int) -> tuple[Tensor, Tensor, Tensor]:
        """(gidx, tidx, pad): gathered row i holds (token, head) gidx[i], ordered (bucket row, head, slot);
        tidx[t·H + h] is where (t, h) went; ``pad`` lists the padding rows (their gidx points at row 0)."""
        key = h
        if key not in self._gather:
            heads = torch.arange(h, device=self.slot_tok.device)
            parts = []
            for k, r0, r1, s0 in self.buckets:
                st = self.slot_tok[s0 : s0 + (r1 - r0) * k].view(r1 - r0, 1, k)
                parts.append((st * h + heads.view(1, h, 1)).reshape(-1))
            gidx = torch.cat(parts)
            is_pad = gidx >= self.tokens * h
            real, pad = torch.nonzero(~is_pad).squeeze(1), torch.nonzero(is_pad).squeeze(1)
            tidx = torch.empty(self.tokens * h, dtype=torch.long, device=gidx.device)
            tidx[gidx[real]] = real
            self._gather[key] = (gidx.masked_fill(is_pad, 0), tidx, pad)
        return self._gather[key]

    def blocks(self, step: int):
        """Yield (a, e, parts): row blocks [a, e) and, per bucket part inside it, (k, ra, rb, g0) with
        rows [ra, rb) relative to a and g0 the first slot (times H in the gathered order)."""
        for a in range(0, self.rows.shape[0], step):
            e = min(a + step, self.rows.shape[0])
            parts = []
            for k, r0, r1, s0 in self.buckets:
                ra, rb = max(a, r0), min(e, r1)
                if ra < rb:
                    parts.append((k, ra - a, rb - a, s0 + (ra - r0) * k))
            yield a, e, parts


class _LayoutCache(threading.local):
    """Layout of the last positions tensor seen (per object and version, per thread), shared by layers."""

    def __init__(self) -> None:
        self.ref = None
        self.key = None
        self.value: _Layout | None = None

    def get(self, pos: Tensor) -> _Layout:
        if pos.requires_grad:  # dL/dp is per token: no deduplication, and no caching (values may change)
            return _Layout(pos.detach(), dedup=False)
        key = (pos._version, tuple(pos.shape), pos.dtype, pos.device, DEDUP_MAX_FRACTION)
        if self.ref is not None and self.ref() is pos and self.key == key:
            return self.value
        layout = _Layout(pos, dedup=True)
        self.ref, self.key, self.value = weakref.ref(pos), key, layout
        return layout


_LAYOUT_CACHE = _LayoutCache()


def _gathered(t: Tensor, layout: _Layout, h: int, zero_pad: bool = True) -> Tensor:
    """(B, T, H, W) → (slots · H, W) in bucket order; padding rows zero (else arbitrary)."""
    gidx, _, pad = layout.gather_index(h)
    out = t.reshape(layout.tokens * h, -1).index_select(0, gidx)
    if zero_pad and pad.numel():
        out.index_fill_(0, pad, 0.0)
    return out


def _scattered(g: Tensor, layout: _Layout, h: int, shape: torch.Size) -> Tensor:
    """Inverse of :func:`_gathered` (padding dropped): (slots · H, W) → ``shape``."""
    return g.index_select(0, layout.gather_index(h)[1]).view(shape)


_WORKSPACE = threading.local()


def _buffers(like: Tensor, step: int, h: int, n: int, d: int, key: str = "fwd") -> tuple[Tensor, ...]:
    """Reusable per-thread scratch: a code (step, H, 2, N, D) and three (step, H·N·D) tables.

    Fresh multi-MiB CPU tensors are paid in page faults on every allocation; the scratch lives only inside
    one forward or backward, so one set per (key, device, dtype) suffices.
    """
    store = getattr(_WORKSPACE, "bufs", None)
    if store is None:
        store = _WORKSPACE.bufs = {}
    hnd = h * n * d
    need = 5 * step * hnd
    buf = store.get((key, like.device, like.dtype))
    if buf is None or buf.numel() < need:
        buf = store[(key, like.device, like.dtype)] = like.new_empty(need)
    code = buf[: 2 * step * hnd].view(step, h, 2, n, d)
    rest = buf[2 * step * hnd : need].view(3, step, hnd)
    return code, rest[0], rest[1], rest[2]


def _cos_sin(p: Tensor, f2: Tensor, ph: Tensor, c: Tensor, s: Tensor, shape) -> tuple[Tensor, Tensor]:
    """cos φ, sin φ of φ = p @ f2 (p (m, C), f2 (C, H·N·D)) into the given buffers, viewed as ``shape``."""
    torch.mm(p, f2, out=ph)
    return torch.cos(ph, out=c).view(shape), torch.sin(ph, out=s).view(shape)


class _PooledFn(torch.autograd.Function):
    """apply(layout, step, pos (B, T, C), freqs (H, D, N, C), x_1 (B, T, H, D), a_1 (H, N, D),
    b_1 (H, N, D) | None, x_2, ...) -> per x, out (B, T, H, 2N) = A_x(p_t) @ x_t (cos block, sin block)."""

    @staticmethod
    def forward(ctx, layout, step, pos, freqs, *xab):  # type: ignore[override]
        xs, coef = xab[0::3], list(zip(xab[1::3], xab[2::3]))
        h, d, n, _ = freqs.shape
        dtype = xs[0].dtype
        f2, rows = phase_matrix(freqs, dtype), layout.rows.to(dtype)
        xg = [_gathered(x, layout, h) for x in xs]
        outs = [x.new_empty(x.shape[0], 2 * n) for x in xg]
        code, ph, cbuf, sbuf = _buffers(xs[0], step, h, n, d)
        for a, e, parts in layout.blocks(step):
            m = e - a
            c, s = _cos_sin(rows[a:e], f2, ph[:m], cbuf[:m], sbuf[:m], (m, h, n, d))
            for x, (ca, cb), out in zip(xg, coef, outs):
                table = fill_code(code[:m], c, s, ca, cb)
                for k, ra, rb, g0 in parts:
                    lo, hi = g0 * h, (g0 + (rb - ra) * k) * h
                    nb = (rb - ra) * h
                    tab = table[ra:rb].view(nb, 2 * n, d).transpose(1, 2)
                    torch.bmm(x[lo:hi].view(nb, k, d), tab, out=out[lo:hi].view(nb, k, 2 * n))
        ctx.layout, ctx.step = layout, step
        ctx.has_b = [cb is not None for _, cb in coef]
        ctx.x_shapes = [x.shape for x in xs]
        ctx.save_for_backward(pos, freqs, *xg, *[t for ab in coef for t in ab if t is not None])
        shape = (*xs[0].shape[:3], 2 * n)
        return tuple(_scattered(o, layout, h, shape) for o in outs)

    @staticmethod
    def backward(ctx, *grads):  # type: ignore[override]
        layout, step = ctx.layout, ctx.step
        saved = ctx.saved_tensors
        pos, freqs = saved[:2]
        nx = len(ctx.has_b)
        xg, it = saved[2 : 2 + nx], iter(saved[2 + nx :])  # x gathered in bucket order, zero padding
        coef = [(next(it), next(it) if hb else None) for hb in ctx.has_b]
        h, d, n, cdim = freqs.shape
        hnd, dtype = h * n * d, xg[0].dtype
        f2, rows = phase_matrix(freqs, dtype), layout.rows.to(dtype)
        active = [i for i, g in enumerate(grads) if g is not None]
        gg = {i: _gathered(grads[i].to(dtype), layout, h, zero_pad=False) for i in active}
        want_x = {i: ctx.needs_input_grad[4 + 3 * i] for i in active}
        gxg = {i: xg[i].new_empty(xg[i].shape) for i in active if want_x[i]}
        ga = {i: rows.new_zeros(h, n, d) for i in active}
        gb = {i: rows.new_zeros(h, n, d) for i in active if coef[i][1] is not None}
        gphi_p = rows.new_zeros(cdim, hnd)  # Σ_u p_u dL/dφ_u
        gpos = rows.new_empty(rows.shape) if ctx.needs_input_grad[2] else None
        code, ph, cbuf, sbuf = _buffers(rows, step, h, n, d)
        gcode, tmp, dc_buf, ds_buf = _buffers(rows, step, h, n, d, key="grad")
        for a, e, parts in layout.blocks(step):
            m = e - a
            c, s = _cos_sin(rows[a:e], f2, ph[:m], cbuf[:m], sbuf[:m], (m, h, n, d))
            dc, ds = dc_buf[:m].view(m, h, n, d).zero_(), ds_buf[:m].view(m, h, n, d).zero_()
            t = tmp[:m].view(m, h, n, d)
            for i in active:
                ca, cb = coef[i]
                table = fill_code(code[:m], c, s, ca, cb) if want_x[i] else None
                gtab = gcode[:m]
                for k, ra, rb, g0 in parts:
                    lo, hi = g0 * h, (g0 + (rb - ra) * k) * h
                    nb = (rb - ra) * h
                    g, x = gg[i][lo:hi].view(nb, k, 2 * n), xg[i][lo:hi].view(nb, k, d)
                    # dL/dA[u] = Σ_{t at u} g_t x_tᵀ; dL/dx_t = A[u]ᵀ g_t
                    torch.bmm(g.transpose(1, 2), x, out=gtab[ra:rb].view(nb, 2 * n, d))
                    if table is not None:
                        torch.bmm(g, table[ra:rb].view(nb, 2 * n, d), out=gxg[i][lo:hi].view(nb, k, d))
                gc, gs = gtab[:, :, 0], gtab[:, :, 1]
                # A_c = a c − b s, A_s = b c + a s
                torch.mul(gc, c, out=t).addcmul_(gs, s)  # dL/da = Σ_u gc c + gs s
                ga[i] += t.sum(0)
                dc.addcmul_(gc, ca)
                ds.addcmul_(gs, ca)
                if cb is not None:  # dL/db = Σ_u gs c − gc s
                    torch.mul(gs, c, out=t).addcmul_(gc, s, value=-1.0)
                    gb[i] += t.sum(0)
                    dc.addcmul_(gs, cb)
                    ds.addcmul_(gc, cb, value=-1.0)
            gphi = ds.mul_(c).addcmul_(dc, s, value=-1.0).view(m, hnd)  # dL/dφ = c dL/ds − s dL/dc
            gphi_p.addmm_(rows[a:e].T, gphi)
            if gpos is not None:
                gpos[a:e] = gphi @ f2.T
        grad_freqs = (TWO_PI * gphi_p).view(cdim, h, n, d).permute(1, 3, 2, 0).to(freqs.dtype)
        grad_pos = None if gpos is None else gpos[layout.row_of].view(pos.shape).to(pos.dtype)
        out: list[Tensor | None] = [None, None, grad_pos, grad_freqs]
        for i in range(nx):
            gx = _scattered(gxg[i], layout, h, ctx.x_shapes[i]) if i in gxg else None
            out += [gx, ga.get(i), gb.get(i)]
        return tuple(out)


def fourier_pool_fused(
    xs: list[tuple[Tensor, Tensor | None]],
    pos: Tensor,
    freqs: Tensor,
    gains: Tensor,
    mix: Tensor | None = None,
    chunk_size: int | None = None,
) -> list[Tensor]:
    """Pooled Fourier codes of every x in ``xs`` at the same positions, in one pass (shared cos / sin).

    xs: (x (B, T, H, D), offsets (H, D, N) or None) pairs; pos (B, T, C); freqs (H, D, N, C) cycles per unit;
    gains (H, D, N); mix (H, D, 2N, R) or None. Returns, per x, Σ_d x_d λ ⊙ Ω_d(p) (B, T, H, 2N) without
    ``mix`` and Σ_{d,j} x_d λ_dj Ω_dj(p) mix_djr (B, T, H, R) with it; the same function as
    :func:`stripes.pe.fourier.fourier_pool` (tested), computed without (B, T, H, D, N) intermediates.
    ``chunk_size`` (time steps) caps a block of the table at B · chunk_size distinct positions (mixed:
    a chunk at B · chunk_size tokens).
    """
    if mix is not None:  # SFF / SPE: per-token path (large (tokens, 2N·D) @ (2N·D, R) matmuls)
        return fourier_pool_tokens(xs, pos, freqs, gains, mix, chunk_size)
    x0 = xs[0][0]
    b, t, h, d = x0.shape
    n = freqs.shape[2]
    if b * t == 0:
        return [x.new_zeros(b, t, h, 2 * n) for x, _ in xs]
    dtype = x0.dtype
    layout = _LAYOUT_CACHE.get(pos)
    lam = gains.to(dtype).transpose(1, 2)  # (H, N, D), the codes' layout
    args: list[Tensor | None] = []
    for x, off in xs:  # (a, b): A_c = a c − b s, A_s = b c + a s
        if off is None:
            args += [x, lam.contiguous(), None]
        else:
            th = off.to(dtype).transpose(1, 2)
            args += [x, (lam * torch.cos(th)).contiguous(), (lam * torch.sin(th)).contiguous()]
    step = max(1, CHUNK_ENTRIES // (h * d * 2 * n))
    if chunk_size:
        step = min(step, b * int(chunk_size))
    return list(_PooledFn.apply(layout, step, pos, freqs, *args))


def fourier_pool_shared(
    q: Tensor,
    k: Tensor,
    pos_q: Tensor,
    pos_k: Tensor,
    freqs: Tensor,
    gains: Tensor,
    offsets_q: Tensor | None,
    mix: Tensor | None = None,
    chunk_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Pooled codes of q (with the query phases ``offsets_q``) and k (none), P2 eq. (9) / P1 eq. (7).

    When q and k sit at the same positions (self-attention) the cos / sin are computed once for both.

    Parameters
    ----------
    q : Tensor
        Queries (B, Tq, H, D).
    k : Tensor
        Keys (B, Tk, H, D).
    pos_q : Tensor
        Query positions (B, Tq, C).
    pos_k : Tensor
        Key positions (B, Tk, C).
    freqs : Tensor
        Frequencies (H, D, N, C) in cycles per label unit.
    gains : Tensor
        Gains λ (H, D, N) (any normalisation such as 1/√N already applied).
    offsets_q : Tensor or None
        Query phases θ (H, D, N).
    mix : Tensor, optional
        Noise (H, D, 2N, R) for SFF / SPE; ``None`` for F-StrIPE.
    chunk_size : int, optional
        Time steps per block (see :func:`fourier_pool_fused`); does not change the result.

    Returns
    -------
    tuple of Tensor
        ``(q_out, k_out)``: (B, T, H, 2N) without ``mix``, (B, T, H, R) with it.
    """
    if torch.compiler.is_compiling():  # data-dependent position tables do not trace: the plain formula
        # (F-StrIPE's self-attention takes the opaque operator of stripes.pe.fourier_compile instead)
        return (
            fourier_pool(q, pos_q, freqs, gains, offsets_q, mix, None),
            fourier_pool(k, pos_k, freqs, gains, None, mix, None),
        )
    if pos_q is pos_k or (pos_q.shape == pos_k.shape and torch.equal(pos_q, pos_k)):
        q_out, k_out = fourier_pool_fused([(q, offsets_q), (k, None)], pos_q, freqs, gains, mix, chunk_size)
    else:
        (q_out,) = fourier_pool_fused([(q, offsets_q)], pos_q, freqs, gains, mix, chunk_size)
        (k_out,) = fourier_pool_fused([(k, None)], pos_k, freqs, gains, mix, chunk_size)
    return q_out, k_out
