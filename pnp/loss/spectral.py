r"""The spectral loss (the DDSP baseline): distance between the features of the predicted sound
and those of the target sound.

.. math::

    L = \frac{1}{B} \sum_b \frac{1}{K} \big\lVert \Phi\, g(\theta(\hat\nu_b)) - \Phi\, g(\theta(\nu_b)) \big\rVert_2^2
    \quad (\text{"l2"}), \qquad
    \frac{1}{BK} \sum_{b,k} \big| \Phi\, g(\theta(\hat\nu_b))_k - \Phi\, g(\theta(\nu_b))_k \big| \quad (\text{"l1"}),

with ``θ(ν)`` the parametrization (free parameters ν ∈ [-1, 1]^P plus the fixed ones), ``g`` the
synth and ``Φ`` a representation's ``features`` (with its log1p compression if set).  Unlike the
PNP loss it renders and analyses every predicted sound at every step (and backpropagates through
both), which is what the PNP loss approximates to first order with the precomputed metric.
"""

from __future__ import annotations

import os
from typing import Any, cast

import torch
from torch import nn

from pnp.loss._checks import check_pair, is_transformed
from pnp.signal import flush_tiny

DISTANCES = ("l2", "l1")
REPRESENTATIONS = ("store", "mss", "jtfs")


class SpectralLoss(nn.Module):
    """``mean_b ‖Φ g(θ(ν̂_b)) − Φ_b‖² / K`` (``"l2"``) or ``mean |…|`` (``"l1"``).

    Parameters
    ----------
    synth : pnp synth (``nn.Module``)
    representation : pnp representation (its ``features`` defines Φ)
    parametrization : :class:`pnp.jacobian.Parametrization` — ν (B, P) → θ (B, P_full)
    distance : {"l2", "l1"}

    Call ``loss(nu_hat, nu=None, target=None)``: ``nu_hat`` (B, P) (typically from a ``tanh``, in
    [-1, 1]); the target features Φ are ``target`` (B, K) when given (``nu`` is then ignored),
    else computed from ``nu`` (B, P) under ``torch.no_grad()``.  Returns a scalar in ``nu_hat``'s
    dtype/device (the synth and representation run in that dtype; ``nu``/``target`` are cast).
    ν̂ outside [-1, 1] is a ``ValueError`` (checked on plain tensors; skipped under torch.func).
    Samples of the sounds below ``sqrt(finfo.tiny)`` are flushed to 0 before Φ (subnormal
    Gaussian tails give NaN gradients through a modulus, see :func:`pnp.signal.flush_tiny`).
    """

    representation: Any  # a pnp representation: an nn.Module with features()

    def __init__(self, synth: nn.Module, representation: nn.Module, parametrization: Any, distance: str = "l2"):
        super().__init__()
        from pnp.jacobian import Parametrization

        if not isinstance(synth, nn.Module) or not hasattr(synth, "space"):
            raise TypeError(f"synth must be a pnp synth (nn.Module with a parameter space), got {type(synth).__name__}")
        if not isinstance(representation, nn.Module) or not hasattr(representation, "features"):
            raise TypeError(f"representation must be a pnp representation (with features()), got "
                             f"{type(representation).__name__}")
        if not isinstance(parametrization, Parametrization):
            raise TypeError(f"parametrization must be a pnp.jacobian.Parametrization, got {type(parametrization).__name__}")
        # cast(Any, synth): a pnp synth's space, which mypy would type through nn.Module.__getattr__
        if parametrization.space.names != cast(Any, synth).space.names:
            raise ValueError(f"parametrization is for the parameters {parametrization.space.names}, the synth has "
                             f"{cast(Any, synth).space.names}")
        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {', '.join(map(repr, DISTANCES))}, got {distance!r}")
        self.synth = synth
        self.representation = representation
        self.parametrization = parametrization
        self.distance = distance

    def extra_repr(self) -> str:
        return f"distance={self.distance!r}, free={self.parametrization.free}"

    @property
    def n_params(self) -> int:
        return self.parametrization.dim

    def features(self, nu: torch.Tensor) -> torch.Tensor:
        """Φ g(θ(ν)) (B, K) in ν's dtype/device (differentiable)."""
        audio = self.synth(self.parametrization.theta(nu), validate=False)
        return self.representation.features(flush_tiny(audio))

    def forward(self, nu_hat: torch.Tensor, nu: torch.Tensor | None = None,
                target: torch.Tensor | None = None) -> torch.Tensor:
        if target is None and nu is None:
            raise ValueError("SpectralLoss: give the target parameters nu (B, P) or the target features target (B, K)")
        if target is None:
            nu_hat, nu = check_pair(nu_hat, nu, "SpectralLoss")
        else:
            nu_hat, _ = check_pair(nu_hat, nu_hat, "SpectralLoss")
        if nu_hat.shape[1] != self.n_params:
            raise ValueError(f"SpectralLoss: nu_hat must have P = {self.n_params} columns (the free parameters "
                             f"{self.parametrization.free}), got {tuple(nu_hat.shape)}")
        if not is_transformed(nu_hat):
            self.parametrization.check_nu(nu_hat.detach())
        if target is None:
            assert nu is not None  # checked at the top: nu or target is given
            if not is_transformed(nu):
                self.parametrization.check_nu(nu)
            with torch.no_grad():
                target = self.features(nu).detach()
        else:
            if not isinstance(target, torch.Tensor) or target.dim() != 2 or target.shape[0] != nu_hat.shape[0]:
                got = tuple(target.shape) if isinstance(target, torch.Tensor) else type(target).__name__
                raise ValueError(f"SpectralLoss: target must be a tensor of shape (B, K) with B = {nu_hat.shape[0]}, "
                                 f"got {got}")
            target = target.to(dtype=nu_hat.dtype, device=nu_hat.device)
        pred = self.features(nu_hat)
        if pred.shape != target.shape:
            raise ValueError(f"SpectralLoss: target has K = {target.shape[1]} features, the representation gives "
                             f"{pred.shape[1]}")
        diff = pred - target
        return diff.square().mean() if self.distance == "l2" else diff.abs().mean()

    # ------------------------------------------------------------------ construction from a store
    @classmethod
    def from_store(cls, store_or_spec: Any, representation: Any = "store", distance: str = "l2",
                   storage_options: Any = None) -> "SpectralLoss":
        """The spectral loss of a store's synth (with its fixed parameters) under a representation.

        ``store_or_spec``: a store path / URL, a :class:`pnp.store.Store`, a
        :class:`pnp.data.StoreDataset` or a :class:`pnp.spec.DatasetSpec`.  ``representation``:

        * ``"store"`` — the store's own representation (``spec.build_representation``);
        * ``"mss"`` — the default multi-scale spectrogram (windows 32 … 1024 samples, those that
          fit in the synth's N) with the store's compression (log1p c or none);
        * ``"jtfs"`` — the store's representation, which must be JTFS (``ValueError`` otherwise);
        * a representation object — used as it is.
        """
        import pnp.scattering as sc
        from pnp.scattering.base import Representation

        spec = spec_of(store_or_spec, storage_options)
        synth = spec.build_synth()
        param = spec.parametrization(synth)
        if isinstance(representation, Representation):
            rep = representation
        elif representation in ("store", "jtfs"):
            if representation == "jtfs" and spec.representation_name != "jtfs":
                raise ValueError(f"representation='jtfs': the store's representation is {spec.representation_name!r}, "
                                 "not JTFS; use 'store', 'mss' or pass a representation object")
            rep = spec.build_representation(synth)
        elif representation == "mss":
            from pnp.scattering.mss import DEFAULT_WINDOW_SIZES

            comp = spec.compression
            sizes = [w for w in DEFAULT_WINDOW_SIZES if w <= synth.n_samples]
            if not sizes:
                raise ValueError(f"representation='mss': the sounds have N = {synth.n_samples} samples, fewer than "
                                 f"the smallest default window ({DEFAULT_WINDOW_SIZES[0]}); pass a representation object")
            rep = sc.get("mss", window_sizes=sizes, log1p_c=comp["c"] if comp["compression"] == "log1p" else None)
        else:
            raise ValueError(f"representation must be one of {', '.join(map(repr, REPRESENTATIONS))} or a "
                             f"pnp representation object, got {representation!r}")
        return cls(synth, rep, param, distance=distance)


def spec_of(obj: Any, storage_options: Any = None):
    """The DatasetSpec of a store path / Store / StoreDataset / DatasetSpec."""
    from pnp.spec import DatasetSpec
    from pnp.store import Store, open_store

    if isinstance(obj, DatasetSpec):
        return obj
    if isinstance(obj, Store):
        return obj.spec()
    if hasattr(obj, "spec") and isinstance(obj.spec, DatasetSpec):
        return obj.spec
    if isinstance(obj, (str, os.PathLike)):
        return open_store(obj, storage_options).spec()
    raise TypeError(f"store_or_spec must be a store path, a pnp.store.Store, a StoreDataset or a DatasetSpec, "
                     f"got {type(obj).__name__}")
