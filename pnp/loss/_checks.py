"""Argument checks shared by the losses (shapes and dtypes only: no value reads, so the losses
work under ``torch.func`` transforms)."""

from __future__ import annotations

import math
from typing import Any

import torch


def check_pair(nu_hat: Any, nu: Any, what: str = "loss") -> tuple[torch.Tensor, torch.Tensor]:
    """``nu_hat`` (B, P) floating tensor and ``nu`` of the same shape, cast to ``nu_hat``'s
    dtype/device; ``ValueError`` naming the argument and the expected shape otherwise."""
    if not isinstance(nu_hat, torch.Tensor) or not nu_hat.is_floating_point():
        got = f"dtype {nu_hat.dtype}" if isinstance(nu_hat, torch.Tensor) else type(nu_hat).__name__
        raise ValueError(f"{what}: nu_hat must be a floating torch.Tensor of shape (B, P), got {got}")
    if nu_hat.dim() != 2 or nu_hat.shape[0] == 0 or nu_hat.shape[1] == 0:
        raise ValueError(f"{what}: nu_hat must have shape (B, P) with B, P >= 1, got {tuple(nu_hat.shape)}")
    B, P = nu_hat.shape
    if not isinstance(nu, torch.Tensor) or nu.is_complex() or nu.dtype == torch.bool:
        got = f"dtype {nu.dtype}" if isinstance(nu, torch.Tensor) else type(nu).__name__
        raise ValueError(f"{what}: nu must be a real torch.Tensor of shape ({B}, {P}), got {got}")
    if tuple(nu.shape) != (B, P):
        raise ValueError(f"{what}: nu must have the shape of nu_hat ({B}, {P}), got {tuple(nu.shape)}")
    return nu_hat, nu.to(dtype=nu_hat.dtype, device=nu_hat.device)


def is_transformed(x: torch.Tensor) -> bool:
    """True for tensors wrapped by torch.func transforms (their values must not be read)."""
    from pnp.synth.base import is_transformed as transformed

    return transformed(x)


def number(value: Any, what: str, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False) -> float:
    """``float(value)`` if it is a finite real number within [lo, hi] (``lo_open``: > lo); bools
    and non-numbers are refused too, each with a ``ValueError`` naming ``what`` and the range."""
    lo_s = "" if lo is None else (f"> {lo:g}" if lo_open else f">= {lo:g}")
    hi_s = "" if hi is None else f"<= {hi:g}"
    rng = " and ".join(s for s in (lo_s, hi_s) if s)
    message = f"{what} must be a finite number{' ' + rng if rng else ''}, got {value!r}"
    if isinstance(value, bool):
        raise ValueError(message)
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(message) from None
    if not math.isfinite(out) or (lo is not None and (out <= lo if lo_open else out < lo)) or (
            hi is not None and out > hi):
        raise ValueError(message)
    return out
