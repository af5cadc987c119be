"""Complex modulus with a fast forward and derivatives that are zero (not NaN) at ``z = 0``.

``torch.abs`` on complex tensors is several times slower on CPU than ``torch.hypot`` on the
real and imaginary parts, but ``hypot``'s own derivative is NaN at the origin. This
``autograd.Function`` uses ``hypot`` forward and writes the derivatives with a safe sign
``z / |z|`` (0 at the origin), in reverse mode (``backward``), forward mode (``jvp``) and under
``torch.func`` transforms (``generate_vmap_rule``).
"""

from __future__ import annotations

import torch


def _safe_sign(z: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    positive = r > 0
    return torch.where(positive, z / torch.where(positive, r, torch.ones_like(r)), torch.zeros_like(z))


class _Modulus(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(z: torch.Tensor) -> torch.Tensor:
        return torch.hypot(z.real, z.imag)

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
    def forward(X: torch.Tensor, W: torch.Tensor, step: int) -> torch.Tensor:
        R = W.shape[0]
        Wr, Xr = _real_embedding(W), _planes(X)
        out = None
        for t in range(0, X.shape[-1], step):
            part = _chunk_modulus(Wr, Xr[..., t : t + step], R)[1].sum(-1)
            out = part if out is None else out + part
        return out

    @staticmethod
    def setup_context(ctx, inputs, output):
        X, W, step = inputs
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
            s = _safe_sign(Y, torch.hypot(Y.real, Y.imag))
            chunks.append(torch.matmul(WH, grad.unsqueeze(-1) * s))
        return torch.cat(chunks, dim=-1), None, None

    @staticmethod
    def jvp(ctx, dX: torch.Tensor, dW, _dstep) -> torch.Tensor:
        X, W = ctx.saved_tensors
        R, n = W.shape
        Wr, Xr = _real_embedding(W), _planes(X)
        single = X.dim() == 3 and X.shape[0] == 1  # one signal: 2-D matmuls let vmap fold tangents into rows
        tiny = torch.finfo(Xr.dtype).tiny  # sgn = Y / max(|Y|, tiny) is exactly 0 where Y = 0
        dXr = _planes(dX)  # (.., 2n, L): [Re dX; Im dX]
        E = None
        for t in range(0, X.shape[-1], ctx.step):
            Y, mag = _chunk_modulus(Wr, Xr[..., t : t + ctx.step], R)
            sgn = (Y.unflatten(-2, (2, R)) / mag.clamp_min(tiny).unsqueeze(-3)).flatten(-3, -2)  # (.., 2R, c)
            D = dXr[..., t : t + ctx.step]
            part = torch.matmul(D[0], sgn[0].transpose(-1, -2))[None] if single else torch.matmul(D, sgn.transpose(-1, -2))
            E = part if E is None else E + part  # (.., 2n, 2R): [[a p, a q], [b p, b q]] summed over t
        # G = sum_t conj(sgn) dX: Re G = a p + b q, Im G = b p - a q (a, b = Re, Im dX; p, q = Re, Im sgn)
        G_re = (E[..., :n, :R] + E[..., n:, R:]).transpose(-1, -2)
        G_im = (E[..., n:, :R] - E[..., :n, R:]).transpose(-1, -2)
        return (W.real * G_re - W.imag * G_im).sum(-1)


def matmul_modulus_sum(X: torch.Tensor, W: torch.Tensor, step: int) -> torch.Tensor:
    """``sum_t |W @ X|`` of complex ``X`` (B, n, L) and constant ``W`` (R, n): real (B, R).

    Differentiable with respect to ``X`` in reverse and forward mode and under ``torch.func``;
    ``W`` is a constant (no gradient flows to it).
    """
    return _MatmulModulusSum.apply(X, W, step)
