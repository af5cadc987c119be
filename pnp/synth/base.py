"""The common interface of pnp's synthesizers.

A synthesizer is a torch ``nn.Module`` mapping parameters ``θ`` of shape ``(B, P)`` (physical
units, float32 or float64, any device) to audio of shape ``(B, N)`` with θ's dtype and device.
A 1-D ``θ`` of shape ``(P,)`` gives audio ``(N,)`` (convenient under ``torch.func.vmap``).
Synths are differentiable in reverse and forward mode and usable under ``torch.func.vmap`` /
``jacfwd`` / ``jacrev``: the rendering uses no ``.item()``, no Python branching on tensor values
and no in-place ops on θ.

Every synth exposes ``space`` (its :class:`~pnp.synth.space.ParameterSpace`), ``sample_rate``
(Hz), ``n_samples`` (N) and ``config()``, a JSON-able dict with a ``"name"`` key such that
``pnp.synth.get(**synth.config())`` rebuilds it.

θ is validated up front by ``space.validate`` (shape, finiteness, bounds → ``ValueError``) when
``forward(theta, validate=True)`` (the default) is called on a plain tensor.  Validation reads
values, so it is skipped automatically for tensors wrapped by ``torch.func`` transforms (vmap,
grad, jvp, jacfwd, jacrev) and while compiling; the shape is still checked there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from pnp.synth.space import ParameterSpace


def is_transformed(x: torch.Tensor) -> bool:
    """True for tensors wrapped by torch.func transforms (values must not be read)."""
    try:
        if torch._C._functorch.is_functorch_wrapped_tensor(x):
            return True
    except AttributeError:  # pragma: no cover - very old torch
        pass
    try:
        return bool(torch.compiler.is_compiling())
    except AttributeError:  # pragma: no cover
        return False


def positive_int(value: Any, what: str) -> int:
    """``int(value)`` if it is an integer >= 1 (an integral float such as 4.0 is accepted):
    ``TypeError`` for a bool or a non-number, ``ValueError`` for a fraction or a value < 1."""
    if isinstance(value, (bool, str, bytes)):
        raise TypeError(f"{what} must be an integer >= 1, got {value!r}")
    try:
        out = int(value)
    except (TypeError, ValueError, OverflowError):
        raise (ValueError if isinstance(value, float) else TypeError)(
            f"{what} must be an integer >= 1, got {value!r}") from None
    if out != value or out < 1:
        raise ValueError(f"{what} must be an integer >= 1, got {value!r}")
    return out


def positive_float(value: Any, what: str, allow_zero: bool = False) -> float:
    """``float(value)`` if finite and > 0 (>= 0 with ``allow_zero``), else ``ValueError``
    (strings and booleans are refused, not converted)."""
    if isinstance(value, (str, bytes, bool)):
        raise TypeError(f"{what} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a number, got {value!r}") from None
    if not np.isfinite(out) or out < 0 or (out == 0 and not allow_zero):
        raise ValueError(f"{what} must be a finite number {'>=' if allow_zero else '>'} 0, got {value!r}")
    return out


def timing(sample_rate: Any, duration: Any) -> tuple[float, float, int]:
    """Validate a sample rate (Hz) and a duration (s): ``(sample_rate, duration, n_samples)``
    with ``n_samples = round(duration * sample_rate) >= 1``; ``ValueError`` naming the argument."""
    sample_rate = positive_float(sample_rate, "sample_rate")
    duration_s = positive_float(duration, "duration")
    n_samples = int(round(duration_s * sample_rate))
    if n_samples < 1:
        raise ValueError(f"duration * sample_rate must give at least one sample, got {duration!r}")
    return sample_rate, duration_s, n_samples


class Synth(nn.Module):
    """Base class: subclasses set ``name``, build ``self.space`` and implement ``render`` and
    ``_config``.

    Parameters
    ----------
    sample_rate : float
        Sampling rate in Hz.
    n_samples : int
        Output length N.
    """

    #: registry name, set by subclasses
    name: str = ""
    space: ParameterSpace

    def __init__(self, sample_rate: float, n_samples: int):
        super().__init__()
        self.sample_rate = positive_float(sample_rate, "sample_rate")
        self.n_samples = positive_int(n_samples, "n_samples")

    # ------------------------------------------------------------------ interface
    def render(self, theta: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """θ (B, P) floating tensor, physical units → audio (B, N), same dtype/device."""
        raise NotImplementedError

    def _config(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """JSON-able description; ``pnp.synth.get(**synth.config())`` rebuilds the synth."""
        return {"name": self.name, **self._config()}

    @property
    def n_params(self) -> int:
        return self.space.dim

    @property
    def duration(self) -> float:
        """Output duration N / sample_rate in seconds."""
        return self.n_samples / self.sample_rate

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._config().items())

    # ------------------------------------------------------------------ forward
    def prepare(self, theta: Any, validate: bool = True) -> tuple[torch.Tensor, bool]:
        """Check (and validate) θ; return ``(theta (B, P) floating tensor, was_1d)``.

        Non-tensor input (lists, numpy) becomes float64; integer tensors become the default
        float dtype.  Raises ``ValueError`` for bad shapes, and — on plain tensors with
        ``validate`` — for non-finite or out-of-bound values (see ``ParameterSpace.validate``).
        """
        if not isinstance(theta, torch.Tensor):
            try:
                theta = torch.as_tensor(np.asarray(theta, dtype=np.float64))
            except (TypeError, ValueError):
                raise ValueError(f"theta must be numeric, got {theta!r}") from None
        if theta.is_complex() or theta.dtype == torch.bool:
            raise ValueError(f"theta must be a real floating-point tensor, got dtype {theta.dtype}")
        if not theta.is_floating_point():
            theta = theta.to(torch.get_default_dtype())
        if theta.dim() not in (1, 2) or theta.shape[-1] != self.space.dim:
            raise ValueError(self.space._shape_msg(theta.shape))
        if validate and not is_transformed(theta):
            self.space.validate(theta)
        was_1d = theta.dim() == 1
        return (theta.unsqueeze(0) if was_1d else theta), was_1d

    def forward(self, theta: torch.Tensor, validate: bool = True) -> torch.Tensor:
        """θ (B, P) or (P,), physical units → audio (B, N) or (N,), θ's dtype and device."""
        theta, was_1d = self.prepare(theta, validate)
        y = self.render(theta)
        return y.squeeze(0) if was_1d else y
