"""Signal helpers shared by the losses and sound matching (torch only, differentiable)."""

from __future__ import annotations

import math

import torch


def flush_tiny(x: torch.Tensor) -> torch.Tensor:
    """Set samples with ``|x| < sqrt(finfo.tiny)`` (≈ 1e-19 in float32) to exactly 0.

    ``x``: any shape, floating dtype; returns a new tensor of the same shape and dtype.

    The Gaussian tails of the chirps reach subnormal values; an STFT bin built only from such
    samples is subnormal, and torch's complex ``abs`` backward (used by the MSS) returns NaN
    there (``1/|z|`` overflows), which would stall gradient descent.  Exact zeros get the zero
    subgradient instead.  The change is below 1e-19 of full scale.
    """
    tiny = math.sqrt(torch.finfo(x.dtype).tiny)
    return torch.where(x.abs() < tiny, torch.zeros_like(x), x)


__all__ = ["flush_tiny"]
