"""Filter-bank design of the joint time-frequency scattering (NumPy, float64).

The Morlet / Gaussian primitives and the padding helpers come from kymatio 0.3.0
(``kymatio.scattering1d.filter_bank`` / ``utils``). On top of them this module writes the pieces
that kymatio 0.3 does not have: the Andén filter-bank generator of kymatio 0.4 (same centre
frequencies and bandwidths), spinned (±ξ) frequential filter banks, multi-resolution "levels"
with kymatio 0.4's *sum* periodization (its fix of issue #984), and the parsing of ``T`` / ``F``.

All frequencies are normalised: 0.5 is Nyquist. A filter is described by a :class:`Filter`
(centre ``xi``, bandwidth ``sigma``, maximal dyadic subsampling ``j``) and its full-resolution
Fourier transform ``hat`` (complex128 or float64, length ``N``).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import cast

import numpy as np
from kymatio.scattering1d.filter_bank import (
    compute_sigma_psi,
    compute_temporal_support,
    compute_xi_max,
    gauss_1d,
    morlet_1d,
)
from kymatio.scattering1d.utils import compute_border_indices, compute_padding

#: kymatio's Morlet design constants
R_PSI = math.sqrt(0.5)
SIGMA0 = 0.1
ALPHA = 5.0

__all__ = [
    "ALPHA",
    "Filter",
    "R_PSI",
    "SIGMA0",
    "anden_parameters",
    "compute_border_indices",
    "compute_padding",
    "compute_temporal_support",
    "frequential_filter_bank",
    "level",
    "max_dyadic_subsampling",
    "parse_averaging",
    "time_filter_bank",
]


@dataclass
class Filter:
    """One filter of a bank: parameters and its Fourier transform at full resolution."""

    xi: float
    sigma: float
    j: int
    hat: np.ndarray = field(repr=False)

    @property
    def spin(self) -> int:
        return int(np.sign(self.xi))


def max_dyadic_subsampling(xi: float, sigma: float, alpha: float = ALPHA) -> int:
    """Largest ``j`` such that ``|xi| + alpha * sigma < 2 ** -(j + 1)`` (no aliasing)."""
    upper = min(abs(xi) + alpha * sigma, 0.5)
    return int(math.floor(-math.log2(upper)) - 1)


def anden_parameters(J: int, Q: int, sigma0: float = SIGMA0, r_psi: float = R_PSI):
    """Centre frequencies and bandwidths ``[(xi, sigma), ...]`` of kymatio 0.4's Andén bank.

    Geometric progression of ratio ``2 ** (1/Q)`` from ``compute_xi_max(Q)`` down to an elbow,
    then ``Q - 1`` filters in arithmetic progression of bandwidth ``sigma0 / 2**J`` below it.
    """
    xi = compute_xi_max(Q)
    sigma = compute_sigma_psi(xi, Q, r=r_psi)
    sigma_min = sigma0 / 2**J
    out = []
    if sigma <= sigma_min:
        xi = sigma
    else:
        out.append((xi, sigma))
        while sigma > sigma_min * 2 ** (1 / Q):
            xi /= 2 ** (1 / Q)
            sigma /= 2 ** (1 / Q)
            out.append((xi, sigma))
    elbow = xi
    for _ in range(Q - 1):
        xi -= elbow / Q
        out.append((xi, sigma_min))
    return out


def level(hat: np.ndarray, k: int) -> np.ndarray:
    """Fourier transform of a filter at resolution ``2 ** -k``: sum of its ``2 ** k`` periods.

    kymatio 0.4 periodizes with a sum (0.3 used a mean); the subsequent Fourier-domain
    subsampling of the signal averages, so both conventions are kept exactly.
    """
    if k == 0:
        return hat
    return hat.reshape(2**k, -1).sum(axis=0)


def parse_averaging(T, J: int, N_input: int, name: str):
    """Parse ``T`` (or ``F``) like kymatio 0.4: returns ``(support, mode)``.

    ``None`` -> ``(2**J, 'local')``; ``'global'`` -> ``(2**J, 'global')``; ``0`` -> ``(2**J, False)``;
    an integer ``1 <= T <= N_input`` -> ``(T, 'local')``. Anything else raises ``ValueError``.
    """
    if T is None:
        return 2**J, "local"
    if isinstance(T, str):
        if T == "global":
            return 2**J, "global"
        raise ValueError(f"{name} must be an integer, 'global', 0 or None; got {T!r}")
    if isinstance(T, bool) or not isinstance(T, numbers.Real) or T != T:
        raise ValueError(f"{name} must be an integer, 'global', 0 or None; got {T!r}")
    if T == 0:
        return 2**J, False
    if T < 1:
        raise ValueError(f"{name} must be 0 or in [1, {N_input}] (got {T})")
    if cast(float, T) > N_input:  # numbers.Real declares __lt__/__le__ only
        raise ValueError(
            f"{name}={T} exceeds the input length along its axis ({N_input}); "
            f"{name} must be in [1, {N_input}], or use {name}='global' for global averaging"
        )
    return T, "local"


def time_filter_bank(N_padded: int, J: int, Q: tuple[int, int], T: float):
    """Temporal filters: ``(phi, psi1, psi2)``.

    ``phi`` is a Gaussian of bandwidth ``sigma0 / T`` (``j = floor(log2 T)``); ``psi1`` / ``psi2``
    are lists of Morlet wavelets from :func:`anden_parameters` with ``Q[0]`` / ``Q[1]`` per octave.
    Fourier transforms have length ``N_padded`` (float64 for phi, float64 for the Morlets, whose
    transforms are real-valued in kymatio's design).
    """
    phi = Filter(0.0, SIGMA0 / T, int(math.floor(math.log2(T))), gauss_1d(N_padded, SIGMA0 / T))
    banks = []
    for q in Q:
        banks.append(
            [
                Filter(xi, sigma, max_dyadic_subsampling(xi, sigma), morlet_1d(N_padded, xi, sigma))
                for xi, sigma in anden_parameters(J, q)
            ]
        )
    return phi, banks[0], banks[1]


def frequential_filter_bank(N_fr: int, J_fr: int, Q_fr: int, F: float):
    """Frequential filters: ``(phi_F, psis)``.

    ``phi_F`` is the Gaussian of width ``F`` used for frequential averaging. ``psis[0]`` is the
    spin-0 low-pass of width ``2**J_fr`` (``xi = 0``, ``j = J_fr``), followed by the up-spin
    (``xi > 0``) wavelets and then the same wavelets with ``-xi`` (down spin), in this order.
    """
    phi_F = Filter(0.0, SIGMA0 / F, int(math.floor(math.log2(F))), gauss_1d(N_fr, SIGMA0 / F))
    lowpass = Filter(0.0, SIGMA0 / 2**J_fr, J_fr, gauss_1d(N_fr, SIGMA0 / 2**J_fr))
    params = anden_parameters(J_fr, Q_fr)
    psis = [lowpass]
    for sign in (1.0, -1.0):
        for xi, sigma in params:
            psis.append(
                Filter(sign * xi, sigma, max_dyadic_subsampling(xi, sigma), morlet_1d(N_fr, sign * xi, sigma))
            )
    for psi in psis[1:]:
        if not abs(psi.xi) < 0.5 / 2**psi.j:  # pragma: no cover - a design invariant
            raise RuntimeError("frequential wavelet would alias after subsampling")
    return phi_F, psis
