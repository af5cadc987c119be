"""Complex modulus with a fast forward and derivatives that are zero (not NaN) at ``z = 0``.

``torch.abs`` on complex tensors is several times slower on CPU than ``sqrt(Re² + Im²)`` on
the real and imaginary parts, whose own derivative is NaN at the origin. This
``autograd.Function`` uses the latter forward and writes the derivatives with a safe sign
``z / |z|`` (0 at the origin), in reverse mode (``backward``), forward mode (``jvp``) and under
``torch.func`` transforms (``generate_vmap_rule``).
"""

from __future__ import annotations

from typing import cast

import torch


def _abs(z: torch.Tensor) -> torch.Tensor:
    """``sqrt(Re² + Im²)``: cheaper than ``torch.hypot`` on CPU, which guards against an
    overflow that audio never reaches (|z| > 1e19 in float32). In float32 the squares lose
    precision below |z| ≈ 1e-19 and underflow to 0 below ≈ 4e-23, some 16 orders of magnitude
    under any coefficient that ``log1p(S / 1e-3)`` can resolve."""
    return torch.addcmul(z.real.square(), z.imag, z.imag).sqrt_()


def _inverse(r: torch.Tensor) -> torch.Tensor:
    """``1 / max(r, sqrt(tiny))``: the sign ``z * _inverse(|z|)`` is ``z / |z|`` wherever
    ``|z| >= sqrt(tiny)`` (1e-19 in float32, 1e-154 in float64), exactly 0 at ``z = 0``, and of
    modulus below 1 in between (also where ``_abs`` underflowed to 0) -- never NaN or huge."""
    return 1 / r.clamp_min(torch.finfo(r.dtype).tiny ** 0.5)


def _safe_sign(z: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    positive = r > 0
    return torch.where(positive, z / torch.where(positive, r, torch.ones_like(r)), torch.zeros_like(z))


class _Modulus(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(z: torch.Tensor) -> torch.Tensor:
        return _abs(z)

    @staticmethod
    def setup_context(ctx, inputs, output):
        (z,) = inputs
        ctx.save_for_backward(z, output)
        ctx.save_for_forward(z, output)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        z, r = ctx.saved_tensors
        return grad * _safe_sign(z, r)

    @staticmethod
    def jvp(ctx, dz: torch.Tensor) -> torch.Tensor:
        z, r = ctx.saved_tensors
        return (_safe_sign(z, r).conj() * dz).real


def modulus(z: torch.Tensor) -> torch.Tensor:
    """``|z|`` of a complex tensor (real output of the matching precision)."""
    return _Modulus.apply(z)


def dual_modulus(z: torch.Tensor, width: int) -> torch.Tensor:
    """``|z|`` and its forward-mode derivative on a *dual batch* (see :func:`~.core.scatter`).

    ``z`` (B * width, ...) complex holds, for each of B signals, its primal value followed by
    ``width - 1`` tangents. Returns (B * width, ...) real: ``|z_0|``, then
    ``Re(conj(sgn z_0) dz_p)`` for every tangent ``dz_p`` (0 where ``z_0 = 0``, never NaN), the
    same numbers as forward-mode autodiff through :func:`modulus` (except below
    ``|z_0| = sqrt(tiny)``, where the sign shrinks smoothly to 0, see :func:`_inverse`).
    Meant for computing Jacobians, not for differentiating through: its own derivative is NaN
    where ``z_0 = 0``.
    """
    if width == 1:
        return modulus(z)
    z = z.unflatten(0, (-1, width))
    z0, dz = z[:, :1], z[:, 1:]
    r = _abs(z0)
    inv = _inverse(r)
    dr = (z0.real * inv) * dz.real + (z0.imag * inv) * dz.imag
    return torch.cat([r, dr], dim=1).flatten(0, 1)


def _real_embedding(W: torch.Tensor) -> torch.Tensor:
    """``[[Re W, -Im W], [Im W, Re W]]`` (2R, 2n): complex ``W @ X`` as one real matmul that
    returns the real and imaginary parts as contiguous row blocks."""
    return torch.cat([torch.cat([W.real, -W.imag], -1), torch.cat([W.imag, W.real], -1)], -2)


def _planes(X: torch.Tensor) -> torch.Tensor:
    """``(..., n, L)`` complex -> ``(..., 2n, L)`` real: real parts then imaginary parts."""
    return torch.cat([X.real, X.imag], -2)


def _chunk_modulus(Wr: torch.Tensor, Xr: torch.Tensor, R: int):
    """``W @ X`` for one chunk as stacked planes ``Y`` (.., 2R, c) and its modulus (.., R, c)."""
    Y = torch.matmul(Wr, Xr)
    return Y, Y[..., :R, :].square().add_(Y[..., R:, :].square()).sqrt_()


def _chunk_modulus_sum(Wr: torch.Tensor, Xr: torch.Tensor, R: int) -> torch.Tensor:
    """``sum_t |W @ X|`` for one chunk (.., R), squaring the product in place (forward only:
    the JVP and the dual batch need ``W @ X`` itself)."""
    Y = torch.matmul(Wr, Xr)
    Y = Y.mul_(Y)  # in place (square_ has no vmap batching rule)
    return torch.add(Y[..., :R, :], Y[..., R:, :]).sqrt_().sum(-1)


#: the fused stage computes spin pairs from one real product (half the multiply-adds) when
#: ``W`` has at least this many columns; below, the real embedding's longer inner dimension
#: makes the matrix product faster than the halved arithmetic (measured on CPU)
PAIR_MIN_COLUMNS = 32


def _paired_matrix(W: torch.Tensor, n_real: int, n_pairs: int) -> torch.Tensor:
    """Real ``(R_real + 2 (R - R_real - n_pairs), n)`` matrix ``[Re W_real; Re W_up; Re W_rest;
    Im W_up; Im W_rest]`` for rows ordered ``[real | up | down = conj(up) | rest]``."""
    up_rest = torch.cat([W[n_real : n_real + n_pairs], W[n_real + 2 * n_pairs :]])
    return torch.cat([W[:n_real].real, up_rest.real, up_rest.imag])


def _chunk_paired_modulus_sum(M: torch.Tensor, Xp: torch.Tensor, n_real: int, n_pairs: int) -> torch.Tensor:
    """``sum_t |W @ X|`` (.., R) for one chunk from ``M = _paired_matrix(W)`` and time-stacked
    planes ``Xp = [Re X, Im X]`` (.., n, 2c), rows in ``W``'s order. With ``A = Re(W) X`` and
    ``B = Im(W) X`` (complex), an up row is ``A + iB`` and its down mirror ``A - iB``."""
    c = Xp.shape[-1] // 2
    Z = torch.matmul(M, Xp)  # (.., R_m, 2c)
    R0 = n_real
    n_up = (M.shape[0] - R0) // 2
    real = Z[..., :R0, :]
    real = real.mul_(real)
    out_real = torch.add(real[..., :c], real[..., c:]).sqrt_().sum(-1)
    a, b = Z[..., R0 : R0 + n_up, :], Z[..., R0 + n_up :, :]
    a1, a2, b1, b2 = a[..., :c], a[..., c:], b[..., :c], b[..., c:]
    u, v = torch.sub(a1, b2), torch.add(a2, b1)  # in place below: mul_/add_ have vmap batching rules
    up = u.mul_(u).add_(v.mul_(v)).sqrt_().sum(-1)
    p = n_pairs
    u, v = torch.add(a1[..., :p, :], b2[..., :p, :]), torch.sub(a2[..., :p, :], b1[..., :p, :])
    down = u.mul_(u).add_(v.mul_(v)).sqrt_().sum(-1)
    return torch.cat([out_real, up[..., :p], down, up[..., p:]], dim=-1)


def _sum_over_chunks(part, length: int, step: int) -> torch.Tensor:
    """``part(t0) + part(t0 + step) + ...`` over the time chunks ``t0 = 0, step, ... < length``."""
    out = None
    for t in range(0, length, step):
        p = part(t)
        out = p if out is None else out + p
    return cast(torch.Tensor, out)  # not None: length (a time axis) >= 1


def _signed_contraction(W: torch.Tensor, Xr: torch.Tensor, dXr: torch.Tensor, step: int, single: bool = False):
    """One pass over the time chunks of the primal planes ``Xr`` (.., 2n, L): ``sum_t |W X|``
    (.., R) and, for tangent planes ``dXr`` (.., m, L), ``E = sum_t dXr sgn(W X)^T`` (.., m, 2R).
    ``single``: one signal, 2-D matmuls (lets vmap fold batched tangents into rows)."""
    R = W.shape[0]
    Wr = _real_embedding(W)
    out = E = None
    for t in range(0, Xr.shape[-1], step):
        Y, mag = _chunk_modulus(Wr, Xr[..., t : t + step], R)
        sgn = (Y.unflatten(-2, (2, R)) * _inverse(mag).unsqueeze(-3)).flatten(-3, -2)  # (.., 2R, c)
        D = dXr[..., t : t + step]
        part = torch.matmul(D[0], sgn[0].transpose(-1, -2))[None] if single else torch.matmul(D, sgn.transpose(-1, -2))
        out = mag.sum(-1) if out is None else out + mag.sum(-1)
        E = part if E is None else E + part  # per tangent: [[a p, a q], [b p, b q]] summed over t
    return out, E


def _tangent_output(W: torch.Tensor, E: torch.Tensor) -> torch.Tensor:
    """``d out[r] = Re sum_n W[r, n] G[r, n]`` from ``E`` (.., 2n, 2R) of :func:`_signed_contraction`:
    ``G = sum_t conj(sgn) dX`` has ``Re G = a p + b q``, ``Im G = b p - a q`` (a, b = Re, Im dX;
    p, q = Re, Im sgn). Returns (.., R)."""
    R, n = W.shape
    G_re = (E[..., :n, :R] + E[..., n:, R:]).transpose(-1, -2)  # (.., R, n)
    G_im = (E[..., n:, :R] - E[..., :n, R:]).transpose(-1, -2)
    return (W.real * G_re - W.imag * G_im).sum(-1)


class _MatmulModulusSum(torch.autograd.Function):
    """``out[b, r] = sum_t |(W @ X[b])[r, t]|``, computed over time chunks of ``step`` samples.

    The joint scalogram ``W @ X`` (R x L per signal) is never held whole: the forward pass,
    the backward pass (which recomputes it chunk by chunk instead of saving it) and the JVP
    all work one chunk at a time, in real arithmetic on contiguous real/imaginary planes. The
    JVP contracts over time before the frequential matmul,
    ``d out[r] = Re sum_n W[r, n] G[r, n]``, ``G[r, n] = sum_t conj(sgn Y[r, t]) dX[n, t]``,
    so tangents never materialise an R x L array either.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(X: torch.Tensor, W: torch.Tensor, step: int, layout: tuple[int, int]) -> torch.Tensor:
        R, n = W.shape
        if n >= PAIR_MIN_COLUMNS and layout != (0, 0):
            M = _paired_matrix(W, *layout)

            def part(t):
                Xt = X[..., t : t + step]
                return _chunk_paired_modulus_sum(M, torch.cat([Xt.real, Xt.imag], -1), *layout)

        else:
            Wr, Xr = _real_embedding(W), _planes(X)

            def part(t):
                return _chunk_modulus_sum(Wr, Xr[..., t : t + step], R)

        return _sum_over_chunks(part, X.shape[-1], step)

    @staticmethod
    def setup_context(ctx, inputs, output):
        X, W, step, _layout = inputs
        ctx.step = step
        ctx.save_for_backward(X, W)
        ctx.save_for_forward(X, W)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        X, W = ctx.saved_tensors
        WH = W.conj().transpose(-1, -2)
        chunks = []
        for t in range(0, X.shape[-1], ctx.step):
            Y = torch.matmul(W, X[..., t : t + ctx.step])
            s = _safe_sign(Y, modulus(Y))  # modulus, not _abs: finite second derivatives (HVPs) where Y = 0
            chunks.append(torch.matmul(WH, grad.unsqueeze(-1) * s))
        return torch.cat(chunks, dim=-1), None, None, None

    @staticmethod
    def jvp(ctx, dX: torch.Tensor, dW, _dstep, _dlayout) -> torch.Tensor:
        X, W = ctx.saved_tensors
        single = X.dim() == 3 and X.shape[0] == 1
        _, E = _signed_contraction(W, _planes(X), _planes(dX), ctx.step, single)  # E (.., 2n, 2R)
        return _tangent_output(W, E)


def dual_matmul_modulus_sum(
    X: torch.Tensor, W: torch.Tensor, step: int, width: int, layout: tuple[int, int] = (0, 0)
) -> torch.Tensor:
    """:func:`matmul_modulus_sum` and its forward-mode derivative on a dual batch.

    ``X`` (B * width, n, L) complex: per signal, the primal followed by ``width - 1`` tangents
    (see :func:`~.core.scatter`). Returns (B * width, R) real: ``sum_t |W X_0|`` then, per
    tangent, ``Re sum_n W[r, n] G[r, n]`` with ``G = sum_t conj(sgn(W X_0)) dX`` -- the numbers
    of the JVP rule of :func:`matmul_modulus_sum`, but with the primal scalogram computed once
    per chunk and every tangent contracted against it in one matrix product.
    """
    if width == 1:
        return matmul_modulus_sum(X, W, step, layout)
    n = W.shape[1]
    X = X.unflatten(0, (-1, width))
    B, P, L = X.shape[0], width - 1, X.shape[-1]
    dXr = _planes(X[:, 1:]).reshape(B, P * 2 * n, L)  # all tangents as rows: (B, P * 2n, L)
    out, E = _signed_contraction(W, _planes(X[:, 0]), dXr, step)  # (B, R), (B, P * 2n, 2R)
    d_out = _tangent_output(W, E.unflatten(1, (P, 2 * n)))  # (B, P, R)
    return torch.cat([out.unsqueeze(1), d_out], dim=1).flatten(0, 1)


def matmul_modulus_sum(X: torch.Tensor, W: torch.Tensor, step: int, layout: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """``sum_t |W @ X|`` of complex ``X`` (B, n, L) and constant ``W`` (R, n): real (B, R).

    Differentiable with respect to ``X`` in reverse and forward mode and under ``torch.func``;
    ``W`` is a constant (no gradient flows to it). ``layout = (n_real, n_pairs)`` describes rows
    ordered ``[real | up | down = conj(up) | rest]`` (see
    :meth:`~.plan.FrequencyStage.pair_spins`); the forward pass then needs half the
    multiply-adds. ``(0, 0)`` assumes nothing.
    """
    return _MatmulModulusSum.apply(X, W, step, tuple(layout))
