r"""The perceptual–neural–physical (PNP) loss: a quadratic form in the parameter error.

For a batch of predictions ``ν̂`` (B, P), targets ``ν`` (B, P) (free parameters normalised to
[-1, 1]) and the metrics ``M_b = J_bᵀ J_b`` (B, P, P) of the targets (``J = ∂S/∂ν``, precomputed
in the store), the PNP loss is

.. math::

    L = \frac{1}{2B} \sum_b (\hat\nu_b - \nu_b)^\top \big(M_b + \lambda D_b\big) (\hat\nu_b - \nu_b),

the first-order (Gauss–Newton) approximation of ``½ ‖Φ g(θ(ν̂)) − Φ g(θ(ν))‖²`` around the
target, plus a Levenberg–Marquardt damping ``λ D`` that keeps the loss informative where M is
(nearly) singular.  Its gradient is ``∂L/∂ν̂_b = (M_b + λ D_b)(ν̂_b − ν_b) / B`` (M symmetric).

Damping matrices ``D`` (``damping``):

* ``"identity"`` — ``I`` (``λ ‖ν̂ − ν‖²``: the P-loss at λ → ∞);
* ``"diag"`` — ``diag(M_b)`` per sample (Marquardt's scale-invariant choice);
* ``"mean"`` — ``M̄``, the dataset mean of M (``StoreDataset.mean_metric()``), given once.

M is assumed symmetric, as stored by ``pnp precompute`` (exactly symmetric); it is **not**
symmetrised here — an asymmetric M gives the quadratic form of its symmetric part but a gradient
``½(A + Aᵀ)(ν̂ − ν)/B``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pnp.loss._checks import check_pair, is_transformed, number

DAMPINGS = ("identity", "diag", "mean")


def check_lam(lam: Any) -> Any:
    """λ: a finite float >= 0 or a 0-d real tensor (values read only outside torch.func)."""
    if isinstance(lam, torch.Tensor):
        if lam.dim() != 0 or not lam.is_floating_point():
            raise ValueError(f"lam must be a number >= 0 or a 0-d floating tensor, got a tensor of shape "
                             f"{tuple(lam.shape)} and dtype {lam.dtype}")
        if not is_transformed(lam) and not bool(torch.isfinite(lam) & (lam >= 0)):
            raise ValueError(f"lam must be a finite number >= 0, got {float(lam)!r}")
        return lam
    return number(lam, "lam", lo=0.0)


class PNPLoss(nn.Module):
    """``½ mean_b (ν̂ − ν)ᵀ (M + λ D)(ν̂ − ν)`` (see the module docs).

    Parameters
    ----------
    damping : {"identity", "diag", "mean"}
        The damping matrix D.
    mean_metric : tensor (P, P), optional
        The dataset-mean metric M̄ (``StoreDataset.mean_metric()``); required for
        ``damping="mean"``, not allowed otherwise.  Kept as a float64 buffer, cast to ν̂'s
        dtype/device at each call.

    Call ``loss(nu_hat, nu, M, lam=0.0)``: ``nu_hat``, ``nu`` (B, P), ``M`` (B, P, P) → scalar in
    ``nu_hat``'s dtype/device (``nu`` and ``M`` are cast to it).  ``lam`` is a float >= 0 or a 0-d
    tensor; ``lam = 0`` (a Python number) skips the damping term.  Works under
    ``torch.func.vmap`` / ``grad`` / ``jacfwd`` (no value reads of the inputs).
    """

    mean_metric: torch.Tensor | None  # a buffer with damping="mean", None otherwise

    def __init__(self, damping: str = "identity", mean_metric: Any = None):
        super().__init__()
        if damping not in DAMPINGS:
            raise ValueError(f"damping must be one of {', '.join(map(repr, DAMPINGS))}, got {damping!r}")
        self.damping = damping
        if damping == "mean":
            if mean_metric is None:
                raise ValueError("damping='mean' needs mean_metric, the (P, P) dataset-mean metric "
                                 "(StoreDataset.mean_metric())")
            M = torch.as_tensor(mean_metric)
            if M.dim() != 2 or M.shape[0] != M.shape[1] or M.shape[0] == 0 or M.is_complex() or M.dtype == torch.bool:
                raise ValueError(f"mean_metric must be a real (P, P) matrix, got shape {tuple(M.shape)}")
            M = M.detach().to(torch.float64)
            if not bool(torch.isfinite(M).all()):
                raise ValueError("mean_metric must be finite")
            self.register_buffer("mean_metric", M.clone())
        else:
            if mean_metric is not None:
                raise ValueError(f"mean_metric applies to damping='mean' only, not {damping!r}")
            self.mean_metric = None

    def extra_repr(self) -> str:
        return f"damping={self.damping!r}"

    def forward(self, nu_hat: torch.Tensor, nu: torch.Tensor, M: torch.Tensor, lam: Any = 0.0) -> torch.Tensor:
        nu_hat, nu = check_pair(nu_hat, nu, "PNPLoss")
        B, P = nu_hat.shape
        if not isinstance(M, torch.Tensor) or M.is_complex() or M.dtype == torch.bool:
            raise ValueError(f"PNPLoss: M must be a real torch.Tensor of shape ({B}, {P}, {P}), got "
                             f"{type(M).__name__ if not isinstance(M, torch.Tensor) else M.dtype}")
        if tuple(M.shape) != (B, P, P):
            raise ValueError(f"PNPLoss: M must have shape (B, P, P) = ({B}, {P}, {P}) for nu_hat {tuple(nu_hat.shape)}, "
                             f"got {tuple(M.shape)}")
        lam = check_lam(lam)
        M = M.to(dtype=nu_hat.dtype, device=nu_hat.device)
        d = nu_hat - nu  # (B, P)
        A = M
        if not (isinstance(lam, float) and lam == 0.0):
            if self.damping == "identity":
                D = torch.eye(P, dtype=nu_hat.dtype, device=nu_hat.device)
            elif self.damping == "diag":
                D = torch.diag_embed(torch.diagonal(M, dim1=-2, dim2=-1))
            else:
                assert self.mean_metric is not None  # damping == "mean": the buffer is set in __init__
                if tuple(self.mean_metric.shape) != (P, P):
                    raise ValueError(f"PNPLoss: mean_metric has shape {tuple(self.mean_metric.shape)} but nu_hat has "
                                     f"P = {P} parameters")
                D = self.mean_metric.to(dtype=nu_hat.dtype, device=nu_hat.device)
            if isinstance(lam, torch.Tensor):
                lam = lam.to(dtype=nu_hat.dtype, device=nu_hat.device)
            A = M + lam * D
        q = torch.einsum("bi,bij,bj->b", d, A, d)
        return 0.5 * q.mean()
