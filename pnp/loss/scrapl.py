r"""SCRAPL's random-path JTFS distance on pnp's JTFS (Mitcheltree, Lostanlen, Benetos, Lagrange,
*SCRAPL: Scattering Transform with Random Paths for Machine Learning*, ICLR 2026; package
``scrapl-loss`` 0.1.0, class ``SCRAPLLoss``).

The JTFS of format 'joint' has one *path* per second-order key ``(n2, n_fr)`` (kymatio 0.4's;
the zeroth and first orders are not paths of SCRAPL). Path ``k`` of ``x`` is the array
``S_k x`` (F', T') of its padded frequential rows (pnp's joint array, kymatio 0.4's); with
``ρ(s) = log(1 + s / log1p_eps)`` (``use_rho_log1p``) or the identity, the path distance is

.. math::

    d_k(x, y) = \frac{1}{B} \sum_b \big\lVert ρ(S_k y_b) - ρ(S_k x_b) \big\rVert_p ,

the ``p``-norm over the path's rows and times, averaged over the batch (``SCRAPLLoss.calc_dist``).
A training step samples one path ``k`` from the probabilities ``π`` (uniform, or θ-IS, see
:mod:`pnp.loss.theta_is`) and returns ``d_k``: with uniform ``π`` its gradient is an unbiased
estimate of the gradient of the full path-averaged distance ``(1/P) Σ_k d_k``
(:meth:`RandomPathJTFS.expected_distance`). Path ``k`` indexes the keys sorted, as
``SCRAPLLoss.scrapl_keys`` does (:attr:`RandomPathJTFS.keys`).

Only the sampled path is computed: :mod:`pnp.scattering.jtfs.paths` cuts its sub-plan (the
first-order wavelets with ``j1 < j2``, ``psi2_{n2}``, the rows of ``psi_fr_{n_fr}``) out of the
JTFS plan. ``grad_mult`` is not applied here: as in the package it scales the gradients inside
the path-wise optimiser (:class:`pnp.training.pathwise.PathwiseSGD`, 𝒫-Adam / 𝒫-SAGA), which
reads the last sampled path from :attr:`RandomPathJTFS.last_path`.
"""

from __future__ import annotations

import numbers
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from pnp.loss._checks import check_pair, is_transformed, number

#: the package's defaults (``SCRAPLLoss``): norm order, log1p epsilon, gradient multiplier
DEFAULT_P, DEFAULT_LOG1P_EPS, DEFAULT_GRAD_MULT = 2, 1e-3, 1e8


def _check_p(p: Any) -> int:
    if isinstance(p, bool) or not isinstance(p, numbers.Integral) or p < 1:
        raise ValueError(f"p (the order of the path norm) must be an integer >= 1, got {p!r}")
    return int(p)


def check_probabilities(probs: Any, n_paths: int) -> torch.Tensor:
    """``probs`` as a float64 (P,) tensor summing to 1 (renormalised), every entry finite and
    >= 0; ``ValueError`` naming the problem otherwise."""
    t = torch.as_tensor(np.asarray(probs, dtype=np.float64) if not isinstance(probs, torch.Tensor) else probs)
    t = t.detach().to("cpu", torch.float64)
    if t.shape != (n_paths,):
        raise ValueError(f"probs must have shape ({n_paths},) (one probability per path), got {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()) or bool((t < 0).any()):
        raise ValueError("probs must be finite and >= 0")
    total = float(t.sum())
    if not abs(total - 1) <= 1e-6:
        raise ValueError(f"probs must sum to 1 (within 1e-6), got a sum of {total:.9g}")
    return t / t.sum()


class RandomPathJTFS(nn.Module):
    """The SCRAPL distance between two sounds, one sampled JTFS path at a time (module docs).

    Parameters
    ----------
    J, J_fr, Q, shape, T, Q_fr, F, pad_mode, eps
        pnp's :class:`~pnp.scattering.jtfs.TimeFrequencyScattering` arguments (format 'joint',
        out_type 'array': ``F`` must give every path the same rows, i.e. an integer >= 1 or None).
        ``SCRAPLLoss(shape=N, J, Q1, Q2, J_fr, Q_fr, T, F)`` is ``Q=(Q1, Q2)``, ``shape=N``,
        ``pad_mode='reflect'`` (kymatio's).
    p : int >= 1
        Order of the path norm (default 2).
    use_rho_log1p : bool
        Compare ``log1p(S / log1p_eps)`` instead of ``S`` (default False).
    log1p_eps : float > 0
    grad_mult : float > 0
        Gradient multiplier of the path-wise optimiser (default 1e8, the package's; 1 with
        ``use_rho_log1p``, as its documentation advises).
    probs : (P,) array or None
        Path sampling probabilities (default uniform; θ-IS: :func:`pnp.loss.theta_is.probabilities`).

    Call ``d(x, x_target, path=None, generator=None)``: ``x``, ``x_target`` (B, N) or (B, C, N)
    float32/float64 → scalar (``x``'s dtype); ``path`` None samples one from ``probs``
    (``generator``: a ``torch.Generator``, default torch's global one). Sets :attr:`last_path`.
    """

    def __init__(self, J: int, J_fr: int, Q, shape, T=None, Q_fr=1, F=None, *, p: int = DEFAULT_P,
                 use_rho_log1p: bool = False, log1p_eps: float = DEFAULT_LOG1P_EPS,
                 grad_mult: float = DEFAULT_GRAD_MULT, probs: Any = None, pad_mode: str = "reflect",
                 eps: float | None = None):
        super().__init__()
        from pnp.scattering.jtfs import TimeFrequencyScattering
        from pnp.scattering.jtfs.paths import second_order_keys

        extra = {} if eps is None else {"eps": eps}
        self.jtfs = TimeFrequencyScattering(J=J, J_fr=J_fr, Q=Q, shape=shape, T=T, Q_fr=Q_fr, F=F, format="joint",
                                            out_type="array", pad_mode=pad_mode, **extra)
        self.p = _check_p(p)
        if not isinstance(use_rho_log1p, bool):
            raise ValueError(f"use_rho_log1p must be True or False, got {use_rho_log1p!r}")
        self.use_rho_log1p = use_rho_log1p
        self.log1p_eps = number(log1p_eps, "log1p_eps", lo=0, lo_open=True)
        self.grad_mult = number(grad_mult, "grad_mult", lo=0, lo_open=True)
        #: the path keys (n2, n_fr), sorted: path k is keys[k] (SCRAPLLoss.scrapl_keys)
        self.keys: list[tuple[int, int]] = second_order_keys(self.jtfs.plan)
        self.probs: torch.Tensor
        self.register_buffer("probs", torch.full((self.n_paths,), 1.0 / self.n_paths, dtype=torch.float64),
                             persistent=False)
        if probs is not None:
            self.set_probabilities(probs)
        #: the path of the last call (None before the first)
        self.last_path: int | None = None
        self._plans: dict[int, Any] = {}
        self._time: dict[int, Any] = {}
        self._tensors: dict[tuple, dict] = {}

    @property
    def n_paths(self) -> int:
        return len(self.keys)

    @property
    def N(self) -> int:
        return self.jtfs.N

    def extra_repr(self) -> str:
        return (f"paths={self.n_paths}, p={self.p}, use_rho_log1p={self.use_rho_log1p}, log1p_eps={self.log1p_eps:g}, "
                f"grad_mult={self.grad_mult:g}")

    def set_probabilities(self, probs: Any) -> None:
        """Sample paths from ``probs`` (P,) from now on (checked: :func:`check_probabilities`)."""
        self.probs = check_probabilities(probs, self.n_paths).to(self.probs.device)

    # ------------------------------------------------------------------ paths
    def path_index(self, key: tuple[int, int]) -> int:
        """The index of the path key ``(n2, n_fr)``."""
        key = (int(key[0]), int(key[1]))
        if key not in self.keys:
            raise ValueError(f"(n2, n_fr)={key} is not a second-order path of this JTFS")
        return self.keys.index(key)

    def _check_path(self, path: Any) -> int:
        if isinstance(path, bool) or not isinstance(path, numbers.Integral) or not 0 <= int(path) < self.n_paths:
            raise ValueError(f"path must be an integer in [0, {self.n_paths - 1}] (the JTFS has {self.n_paths} "
                             f"paths), got {path!r}")
        return int(path)

    def _path_ops(self, path: int, dtype: torch.dtype, device) -> dict:
        from pnp.scattering.jtfs.frontend import stage_tensors, windowed_filter_tensors
        from pnp.scattering.jtfs.paths import path_plan, path_tensors, time_subplan

        key = (path, dtype, device)
        if key not in self._tensors:
            n2, n_fr = self.keys[path]
            if n2 not in self._time:
                self._time[n2] = time_subplan(self.jtfs.plan, n2)
            plan = path_plan(self.jtfs.plan, n2, n_fr, time=self._time[n2])
            self._tensors[key] = path_tensors(plan, lambda op: windowed_filter_tensors(op, dtype, device),
                                              lambda st: stage_tensors(st, dtype, device))
        return self._tensors[key]

    def sample_path(self, seed: int | None = None, generator: torch.Generator | None = None) -> int:
        """One path index drawn from :attr:`probs` (``torch.multinomial``; ``seed``: from a CPU
        generator seeded with it, as ``SCRAPLLoss.sample_path(seed)``)."""
        if seed is not None:
            generator = torch.Generator(device="cpu").manual_seed(int(seed))
        return int(torch.multinomial(self.probs.cpu(), 1, generator=generator)[0])

    # ------------------------------------------------------------------ values
    def _flat(self, x: Any, name: str) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dtype not in (torch.float32, torch.float64):
            got = f"dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{name} must be a float32 or float64 torch.Tensor of shape (B, N) or (B, C, N), got {got}")
        if x.dim() not in (2, 3) or x.shape[-1] != self.N:
            raise ValueError(f"{name} must have shape (B, N) or (B, C, N) with N = {self.N}, got {tuple(x.shape)}")
        return x.reshape(-1, self.N)

    def _rho(self, S: torch.Tensor) -> torch.Tensor:
        return torch.log1p(S / self.log1p_eps) if self.use_rho_log1p else S

    def coefficients(self, x: torch.Tensor, path: int) -> torch.Tensor:
        """``ρ(S_k x)`` (B, F', T') of the path ``k`` of ``x`` (B, N), in ``x``'s dtype."""
        from pnp.scattering.jtfs.paths import scatter_path

        path = self._check_path(path)
        x = self._flat(x, "x")
        ops = self.jtfs._ops_for(x, x.dtype)
        S = scatter_path(x, self.jtfs.plan, ops, self._path_ops(path, x.dtype, x.device), self.keys[path][0])
        return self._rho(S)

    def path_distances(self, x: torch.Tensor, x_target: torch.Tensor, path: int) -> torch.Tensor:
        """Per sound ``‖ρ(S_k x_target) − ρ(S_k x)‖_p`` (B,) for the path ``k``."""
        x, x_target = self._flat(x, "x"), self._flat(x_target, "x_target")
        if x.shape != x_target.shape:
            raise ValueError(f"x and x_target must have the same shape, got {tuple(x.shape)} and {tuple(x_target.shape)}")
        diff = self.coefficients(x_target.to(x.dtype), path) - self.coefficients(x, path)
        return torch.linalg.vector_norm(diff, ord=self.p, dim=(-2, -1))

    def distance(self, x: torch.Tensor, x_target: torch.Tensor, path: int) -> torch.Tensor:
        """``d_k(x, x_target)``: the batch mean of :meth:`path_distances` (scalar)."""
        return self.path_distances(x, x_target, path).mean()

    def forward(self, x: torch.Tensor, x_target: torch.Tensor, path: int | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        path = self.sample_path(generator=generator) if path is None else self._check_path(path)
        self.last_path = path
        return self.distance(x, x_target, path)

    def expected_distance(self, x: torch.Tensor, x_target: torch.Tensor) -> torch.Tensor:
        """``Σ_k π_k d_k(x, x_target)``, the expectation of :meth:`forward` (uniform ``π``: the
        full path-averaged JTFS distance), from one full JTFS of each batch (scalar)."""
        x, x_target = self._flat(x, "x"), self._flat(x_target, "x_target")
        keys = [tuple(int(v) for v in k) for k in self.jtfs.plan.meta["key"]]
        rows = torch.as_tensor([keys.index(k) for k in self.keys], device=x.device)
        S = [self._rho(self.jtfs(y).index_select(1, rows)) for y in (x_target.to(x.dtype), x)]
        per_path = torch.linalg.vector_norm(S[0] - S[1], ord=self.p, dim=(-2, -1))  # (B, P)
        return (per_path * self.probs.to(per_path)).sum(-1).mean()

    def assigned_distance(self, x: torch.Tensor, x_target: torch.Tensor, paths: Any) -> torch.Tensor:
        """``(1/B) Σ_b ‖ρ(S_{k_b} y_b) − ρ(S_{k_b} x_b)‖_p`` with path ``k_b`` (``paths``, B ints)
        for sound ``b``: each path's sounds computed together (scalar)."""
        x, x_target = self._flat(x, "x"), self._flat(x_target, "x_target")
        ks = [self._check_path(k) for k in paths]
        if len(ks) != x.shape[0]:
            raise ValueError(f"paths must give one path per sound ({x.shape[0]}), got {len(ks)}")
        out = x.new_zeros(x.shape[0])
        for k in sorted(set(ks)):
            idx = torch.as_tensor([i for i, kb in enumerate(ks) if kb == k], device=x.device)
            out = out.index_put((idx,), self.path_distances(x.index_select(0, idx), x_target.index_select(0, idx), k))
        return out.mean()

    def validation_paths(self, indices: Any) -> list[int]:
        """One path per sound, fixed by its store index ``i``: :meth:`sample_path` with seed ``i``
        (the same paths at every validation; distributed as :attr:`probs`)."""
        return [self.sample_path(seed=int(i)) for i in np.asarray(indices).reshape(-1)]

    @classmethod
    def from_spec(cls, spec: Any, **options: Any) -> "RandomPathJTFS":
        """The distance on a store's JTFS (its configuration, padding and ``eps``); with the
        store's log1p compression, ``use_rho_log1p=True``, ``log1p_eps`` its ``c`` and
        ``grad_mult=1`` unless ``options`` say otherwise (the package's advice with log1p)."""
        if spec.representation_name != "jtfs":
            raise ValueError(f"the SCRAPL loss needs a JTFS store; this store's representation is "
                             f"{spec.representation_name!r}")
        cfg = {k: v for k, v in spec.representation_config().items() if k not in ("log1p_c", "format", "out_type")}
        for key in ("Q", "shape"):
            if isinstance(cfg.get(key), list):
                cfg[key] = tuple(cfg[key])
        if {"stride", "stride_fr"} & {k for k, v in cfg.items() if v is not None}:
            raise ValueError("the SCRAPL loss takes the JTFS's default strides; this store's JTFS sets stride / stride_fr")
        cfg = {k: v for k, v in cfg.items() if k not in ("stride", "stride_fr")}
        comp = spec.compression
        if comp["compression"] == "log1p":
            defaults: dict[str, Any] = {"use_rho_log1p": True, "log1p_eps": float(comp["c"]), "grad_mult": 1.0}
        else:
            defaults = {}
        return cls(**cfg, **{**defaults, **options})


class RandomPathLoss(nn.Module):
    """Sound matching with SCRAPL: ``d_k(g(θ(ν̂)), x)`` for a sampled path ``k``
    (:class:`RandomPathJTFS`), the predicted sound rendered by the synth.

    Call ``loss(nu_hat, audio)``: ``nu_hat`` (B, P) in [-1, 1], ``audio`` (B, N) the target sounds
    → scalar in ``nu_hat``'s dtype. :meth:`validation` compares with one fixed path per sound.
    """

    def __init__(self, synth: nn.Module, parametrization: Any, distance: RandomPathJTFS):
        super().__init__()
        from pnp.jacobian import Parametrization

        if not isinstance(parametrization, Parametrization):
            raise ValueError(f"parametrization must be a pnp.jacobian.Parametrization, got {type(parametrization).__name__}")
        if not isinstance(distance, RandomPathJTFS):
            raise ValueError(f"distance must be a RandomPathJTFS, got {type(distance).__name__}")
        if cast(Any, synth).n_samples != distance.N:
            raise ValueError(f"the synth renders {cast(Any, synth).n_samples} samples, the JTFS takes {distance.N}")
        self.synth = synth
        self.parametrization = parametrization
        self.distance = distance

    def render(self, nu: torch.Tensor) -> torch.Tensor:
        """g(θ(ν)) (B, N), differentiable, subnormal samples flushed (see :func:`pnp.signal.flush_tiny`)."""
        from pnp.signal import flush_tiny

        return flush_tiny(self.synth(self.parametrization.theta(nu), validate=False))

    def _pair(self, nu_hat: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        nu_hat, _ = check_pair(nu_hat, nu_hat, "RandomPathLoss")
        if not is_transformed(nu_hat):
            self.parametrization.check_nu(nu_hat.detach())
        if not isinstance(audio, torch.Tensor) or audio.dim() != 2 or audio.shape[0] != nu_hat.shape[0]:
            got = tuple(audio.shape) if isinstance(audio, torch.Tensor) else type(audio).__name__
            raise ValueError(f"RandomPathLoss: audio must be a tensor of shape (B, N) with B = {nu_hat.shape[0]}, got {got}")
        x_hat = self.render(nu_hat)
        return x_hat, audio.to(dtype=x_hat.dtype, device=x_hat.device)

    def forward(self, nu_hat: torch.Tensor, audio: torch.Tensor, path: int | None = None) -> torch.Tensor:
        x_hat, audio = self._pair(nu_hat, audio)
        return self.distance(x_hat, audio, path=path)

    def validation(self, nu_hat: torch.Tensor, audio: torch.Tensor, indices: Any) -> torch.Tensor:
        """:meth:`RandomPathJTFS.assigned_distance` with the sounds' fixed validation paths
        (:meth:`RandomPathJTFS.validation_paths` of their store ``indices``): a deterministic,
        unbiased estimate of the expected training loss on the batch."""
        x_hat, audio = self._pair(nu_hat, audio)
        return self.distance.assigned_distance(x_hat, audio, self.distance.validation_paths(indices))

    @classmethod
    def from_store(cls, store_or_spec: Any, storage_options: Any = None, **options: Any) -> "RandomPathLoss":
        """The SCRAPL loss of a store: its synth and fixed parameters, :meth:`RandomPathJTFS.from_spec`."""
        from pnp.loss.spectral import spec_of

        spec = spec_of(store_or_spec, storage_options)
        synth = spec.build_synth()
        return cls(synth, spec.parametrization(synth), RandomPathJTFS.from_spec(spec, **options))


__all__ = ["RandomPathJTFS", "RandomPathLoss", "check_probabilities", "DEFAULT_P", "DEFAULT_LOG1P_EPS",
           "DEFAULT_GRAD_MULT"]
