"""The common interface of pnp's representations Φ.

A representation is a torch ``nn.Module`` mapping audio ``x`` of shape ``(B, N)`` (float32 or
float64, any device) to coefficients. ``features(x)`` flattens them to ``(B, K)`` and optionally
applies the compression ``log1p(|S| / c)`` used by PNP (c = 1e-3). Every coefficient is >= 0
except the signed zeroth-order ones (``x * phi``, or the sum of ``x``), where a plain
``log1p(S / c)`` would be NaN; taking ``|S|`` leaves all other coefficients unchanged. ``config()`` returns a JSON-able
dict that fully describes the representation, so that ``pnp.scattering.get(**config)`` rebuilds it
(stored as provenance in the zarr stores).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Representation(nn.Module):
    """Base class: subclasses implement ``forward`` and ``_config``.

    Parameters
    ----------
    log1p_c : float or None
        If set, ``features`` returns ``log1p(|S| / log1p_c)``; must be > 0.
    """

    #: registry name, set by subclasses
    name: str = ""

    def __init__(self, log1p_c: float | None = None):
        super().__init__()
        if log1p_c is not None:
            log1p_c = float(log1p_c)
            if not log1p_c > 0 or log1p_c != log1p_c or log1p_c == float("inf"):
                raise ValueError(f"log1p_c must be a finite number > 0 or None, got {log1p_c!r}")
        self.log1p_c = log1p_c

    # ------------------------------------------------------------------ interface
    def _config(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """JSON-able description; ``pnp.scattering.get(**rep.config())`` rebuilds ``rep``."""
        return {"name": self.name, **self._config(), "log1p_c": self.log1p_c}

    def check_input(self, x: torch.Tensor, n_samples: int | None = None) -> None:
        """Raise ``ValueError`` unless ``x`` is a floating (B, N) tensor (N = n_samples if given)."""
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"x must be a torch.Tensor of shape (B, N), got {type(x).__name__}")
        if x.dim() != 2:
            raise ValueError(f"x must have shape (B, N), got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"x must be float32 or float64, got {x.dtype}")
        if n_samples is not None and x.shape[-1] != n_samples:
            raise ValueError(
                f"x must have N = {n_samples} samples (the representation's shape), got {x.shape[-1]}"
            )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Flat features ``(B, K)``, same dtype/device as ``x``; ``log1p(|S| / c)`` if configured."""
        S = self(x)
        S = S.reshape(S.shape[0], -1)
        if self.log1p_c is not None:
            S = torch.log1p(S.abs() / self.log1p_c)
        return S
