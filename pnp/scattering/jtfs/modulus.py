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
