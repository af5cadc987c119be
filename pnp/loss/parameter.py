r"""The parameter loss (P-loss): mean squared error in the normalised parameters ν ∈ [-1, 1]^P.

.. math::  L_P = \frac{1}{BP} \sum_{b,p} (\hat\nu_{bp} - \nu_{bp})^2

It is the PNP loss with every metric replaced by the identity, up to a constant:
``PNPLoss()(ν̂, ν, I) = P/2 · ParameterLoss()(ν̂, ν)``.
"""

from __future__ import annotations

import torch
from torch import nn

from pnp.loss._checks import check_pair


class ParameterLoss(nn.Module):
    """``mean_{b,p} (ν̂ − ν)²``.  Call ``loss(nu_hat, nu)`` with (B, P) tensors → scalar in
    ``nu_hat``'s dtype/device (``nu`` is cast to it).  torch.func-safe."""

    def forward(self, nu_hat: torch.Tensor, nu: torch.Tensor) -> torch.Tensor:
        nu_hat, nu = check_pair(nu_hat, nu, "ParameterLoss")
        return (nu_hat - nu).square().mean()
