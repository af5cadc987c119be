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
            raise TypeError(f"x must be a torch.Tensor of shape (B, N), got {type(x).__name__}")
        if x.dim() != 2:
            raise ValueError(f"x must have shape (B, N), got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"x must be float32 or float64, got {x.dtype}")
        if n_samples is not None and x.shape[-1] != n_samples:
            raise ValueError(
                f"x must have N = {n_samples} samples (the representation's shape), got {x.shape[-1]}"
            )

    def check_tangents(self, x: torch.Tensor, dx: torch.Tensor, n_samples: int | None = None) -> None:
        """Raise ``ValueError`` unless ``x`` passes :meth:`check_input` (with ``n_samples``) and
        ``dx`` is a (B, P, N) tensor of ``x``'s dtype and device, with B, N those of ``x`` and
        P >= 1."""
        self.check_input(x, n_samples)
        if not isinstance(dx, torch.Tensor):
            raise TypeError(f"dx must be a torch.Tensor of shape (B, P, N), got {type(dx).__name__}")
        B, N = x.shape
        if dx.dim() != 3 or dx.shape[0] != B or dx.shape[2] != N or dx.shape[1] < 1:
            raise ValueError(f"dx must have shape (B, P, N) = ({B}, P >= 1, {N}) to match x, got {tuple(dx.shape)}")
        if dx.dtype != x.dtype or dx.device != x.device:
            raise ValueError(f"dx must have x's dtype and device ({x.dtype}, {x.device}), got ({dx.dtype}, {dx.device})")

    def jvp(
        self, x: torch.Tensor, dx: torch.Tensor, compute_dtype: torch.dtype | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Coefficients and their forward-mode derivatives along P tangent signals.

        ``x`` (B, N) and ``dx`` (B, P, N), same dtype/device -> ``S = self(x)`` (B, ...) and
        ``dS`` (B, P, ...) with ``dS[:, p] = d/de self(x + e dx[:, p])`` at e = 0. This generic
        version uses ``torch.func.jvp`` under ``vmap`` over the tangents; representations with a
        faster rule override it. ``compute_dtype`` (float32 or float64, default x's dtype): the
        precision of the transform and of its outputs (x and dx are rounded to it first here;
        a representation may keep linear parts in x's precision, see the JTFS).
        """
        self.check_tangents(x, dx)
        x, dx = _cast(x, compute_dtype), _cast(dx, compute_dtype)
        S = self(x)
        dS = torch.func.vmap(lambda t: torch.func.jvp(self, (x,), (t,))[1], in_dims=1, out_dims=1)(dx)
        return S, dS

    def transform(self, x: torch.Tensor, compute_dtype: torch.dtype | None = None) -> torch.Tensor:
        """``self(x)`` computed in ``compute_dtype`` (float32 or float64, default x's dtype).
        Here x is rounded to it first; a representation may override this to keep linear parts
        in x's precision (see the JTFS)."""
        return self(_cast(x, compute_dtype))

    def features_jvp(
        self, x: torch.Tensor, dx: torch.Tensor, compute_dtype: torch.dtype | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``features(x)`` (B, K) and its derivatives along the P tangents ``dx`` (B, P, N):
        (B, P, K), through the ``log1p(|S| / c)`` compression when configured
        (derivative ``sign(S) dS / (c + |S|)``, 0 where S = 0, as autodiff of ``abs`` gives).
        ``compute_dtype``: see :meth:`jvp` (outputs are in that dtype)."""
        S, dS = self.jvp(x, dx, compute_dtype) if compute_dtype is not None else self.jvp(x, dx)
        S, dS = S.reshape(S.shape[0], -1), dS.reshape(dS.shape[0], dS.shape[1], -1)
        if self.log1p_c is not None:
            dS = dS * (torch.sign(S) / (self.log1p_c + S.abs())).unsqueeze(1)
            S = torch.log1p(S.abs() / self.log1p_c)
        return S, dS

    def _flat_coefficients(self, x: torch.Tensor, compute_dtype: torch.dtype | None = None) -> torch.Tensor:
        """The coefficients of :meth:`transform` (the array, whatever the output type of
        ``forward``) flattened to ``(B, K)``."""
        S = self.transform(x, compute_dtype)
        return S.reshape(S.shape[0], -1)

    @classmethod
    def from_config(cls, **config: Any) -> "Representation":
        """Build from :meth:`config`'s keyword arguments (less ``name``), as stored in JSON /
        TOML; subclasses whose arguments include tuples read them back from lists."""
        return cls(**config)

    def features(self, x: torch.Tensor, compute_dtype: torch.dtype | None = None) -> torch.Tensor:
        """Flat features ``(B, K)``, same dtype/device as ``x`` (or ``compute_dtype``, see
        :meth:`transform`); ``log1p(|S| / c)`` if configured."""
        S = self._flat_coefficients(x, compute_dtype)
        if self.log1p_c is not None:
            S = torch.log1p(S.abs() / self.log1p_c)
        return S


def check_compute_dtype(compute_dtype: torch.dtype | None) -> None:
    """Raise ``ValueError`` unless ``compute_dtype`` is None, torch.float32 or torch.float64."""
    if compute_dtype is not None and compute_dtype not in (torch.float32, torch.float64):
        raise ValueError(f"compute_dtype must be torch.float32, torch.float64 or None, got {compute_dtype!r}")


def _cast(x: torch.Tensor, compute_dtype: torch.dtype | None) -> torch.Tensor:
    check_compute_dtype(compute_dtype)
    return x if compute_dtype is None else x.to(compute_dtype)
