r"""The rectangular drum of the functional transformation method (FTM), as used in PNP.

Modal synthesis of a damped, stiff rectangular membrane (Rabenstein & Trautmann's FTM), in the
perceptual parametrisation of Han et al. (PNP, reference implementation
``lylyhan/perceptual_neural_physical``, ``pnp_synth/physical/ftm.py::rectangular_drum``).

Parameters θ = (ω, τ, p, D, α), physical units (the PNP data-set ranges):

=====  ========================  ===========================  =====
name   meaning                   bounds                       scale
=====  ========================  ===========================  =====
omega  fundamental ω₁₁ (rad/s)   [10^2.4, 10^3.8]             log
tau    decay time τ₁₁ (s)        [0.07, 0.8]                  linear
p      frequency-dependent       [10^-5, 10^-0.7]             log
       damping
D      inharmonicity             [10^-5, 10^-0.5]             log
alpha  side-length ratio α       [0, 1] (model: (0, 1])       linear
=====  ========================  ===========================  =====

With ``l₀ = π`` the side lengths are ``l₀`` and ``l₂ = α l₀``, ``β = α + 1/α`` and (constants as
in the reference)

.. math::

    S^4 &= (l_0/\pi)^4\,\alpha^2\,\big((D\omega)^2 + (p/\tau)^2\big),\\
    T   &= (l_0/\pi)^2\,\alpha\,\big[(1/\beta - p^2\beta)/\tau^2 + \omega^2 (1/\beta - D^2\beta)\big],\\
    d_1 &= 2(1 - p\beta)/\tau,\qquad d_3 = -2 p\alpha (l_0/\pi)^2/\tau,

and for the modes μ₁, μ₂ ∈ 1..10 (``n = (μ₁π/l₀)² + (μ₂π/l₂)²``, ``K = sin(μ₁π x₁) sin(μ₂π x₂)``)

.. math::

    \sigma_\mu = (d_1 - d_3 n)/2,\qquad
    \omega_\mu = \sqrt{\,|S^4 n^2 + T n - \sigma_\mu^2|\,},\qquad
    y(t) = \sum_\mu m_\mu\,\frac{h K^2}{\omega_\mu\,l_0 l_2/4}\,e^{-\sigma_\mu t}\sin(\omega_\mu t),

``t = n / sr``, peak-normalised (``max |y| = 1``).  ``m_μ`` switches modes above Nyquist off:
``nyquist="mask"`` (default) keeps exactly the modes with ``ω_μ/2π <= sr/2``;
``nyquist="reference"`` reproduces the reference's rectangular truncation (keep
``μ₁ <= m₁ - max_μ₂ #rejected`` and likewise for μ₂, all modes if that count is 0).  Both are
computed from tensors (piecewise-constant, no gradient, vmap-safe).

α = 0 is the degenerate limit of a zero-width drum; PNP samples α over [0, 1], so α is clamped
to ``alpha_min`` (default 1e-4) with ``torch.clamp`` (finite audio and gradients, zero gradient
w.r.t. α below ``alpha_min``).  The damping is evaluated in the algebraically equal, cancellation
free form ``σ_μ = (1/τ)[1 + pα(μ₁² - 1) + (p/α)(μ₂² - 1)] ≥ 1/τ`` so that small α stays finite
in float32 as well.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from pnp.synth.base import Synth, positive_float, positive_int
from pnp.synth.space import Parameter, ParameterSpace

NYQUIST_MODES = ("mask", "reference")


def ftm_space() -> ParameterSpace:
    """The PNP FTM parameter space (physical units, log scale for ω, p, D)."""
    return ParameterSpace(
        [
            Parameter("omega", 10**2.4, 10**3.8, "log", "rad/s", "fundamental angular frequency ω11"),
            Parameter("tau", 0.07, 0.8, "linear", "s", "decay time τ11 of the fundamental"),
            Parameter("p", 10**-5.0, 10**-0.7, "log", "", "frequency-dependent damping"),
            Parameter("D", 10**-5.0, 10**-0.5, "log", "", "inharmonicity (dispersion)"),
            Parameter("alpha", 0.0, 1.0, "linear", "", "side-length ratio l2/l1 (clamped to alpha_min)"),
        ],
        name="ftm",
    )


class FTMDrum(Synth):
    """FTM rectangular drum (see module docstring). θ (B, 5) = (ω rad/s, τ s, p, D, α) → (B, N).

    Parameters
    ----------
    sample_rate : float
        Hz (default 22050).
    n_samples : int
        Output length N (default 2**16).
    n_modes : (int, int)
        Mode counts (m₁, m₂) (default (10, 10)).
    x1, x2 : float
        Relative excitation/listening position (default 0.4, 0.4).
    h : float
        Excitation amplitude (default 0.03; irrelevant when ``normalize``).
    l0 : float
        Side length l₁ (default π).
    nyquist : {"mask", "reference"}
        Per-mode Nyquist mask, or the reference's rectangular truncation.
    alpha_min : float
        Clamp of α from below (default 1e-4).
    normalize : bool
        Peak-normalise each output (default True).
    """

    name = "ftm"

    def __init__(
        self,
        sample_rate: float = 22050.0,
        n_samples: int = 2**16,
        n_modes: tuple[int, int] | list[int] = (10, 10),
        x1: float = 0.4,
        x2: float = 0.4,
        h: float = 0.03,
        l0: float = math.pi,
        nyquist: str = "mask",
        alpha_min: float = 1e-4,
        normalize: bool = True,
    ):
        super().__init__(sample_rate, n_samples)
        if not isinstance(n_modes, (tuple, list)) or len(n_modes) != 2:
            raise ValueError(f"n_modes must be a pair (m1, m2), got {n_modes!r}")
        self.n_modes = (positive_int(n_modes[0], "n_modes[0]"), positive_int(n_modes[1], "n_modes[1]"))
        self.x1 = float(x1)
        self.x2 = float(x2)
        self.h = positive_float(h, "h")
        self.l0 = positive_float(l0, "l0")
        if nyquist not in NYQUIST_MODES:
            raise ValueError(f"nyquist must be one of {NYQUIST_MODES}, got {nyquist!r}")
        self.nyquist = nyquist
        self.alpha_min = positive_float(alpha_min, "alpha_min")
        if not isinstance(normalize, bool):
            raise ValueError(f"normalize must be a bool, got {normalize!r}")
        self.normalize = normalize
        self.space = ftm_space()

    def _config(self) -> dict[str, Any]:
        return {
            "sample_rate": self.sample_rate,
            "n_samples": self.n_samples,
            "n_modes": list(self.n_modes),
            "x1": self.x1,
            "x2": self.x2,
            "h": self.h,
            "l0": self.l0,
            "nyquist": self.nyquist,
            "alpha_min": self.alpha_min,
            "normalize": self.normalize,
        }

    # ------------------------------------------------------------------ modes
    def modes(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Modal parameters of θ (B, 5): ``(gain, sigma, omega)``, each (B, m₁·m₂), θ's dtype.

        ``gain`` includes the Nyquist mask; ``sigma`` is the damping (1/s) and ``omega`` the
        angular frequency (rad/s) of every mode (μ₁ slowest).
        """
        dtype, device = theta.dtype, theta.device
        m1, m2 = self.n_modes
        w = theta[:, 0:1]
        tau = theta[:, 1:2]
        p = theta[:, 2:3]
        D = theta[:, 3:4]
        alpha = torch.clamp(theta[:, 4:5], min=self.alpha_min)  # (B, 1)

        pi = math.pi
        r = self.l0 / pi  # l0 / π
        mu1 = torch.arange(1, m1 + 1, dtype=dtype, device=device).repeat_interleave(m2)  # (M,)
        mu2 = torch.arange(1, m2 + 1, dtype=dtype, device=device).repeat(m1)  # (M,)

        beta_side = alpha + 1.0 / alpha
        EI = r**4 * alpha**2 * ((D * w) ** 2 + (p / tau) ** 2)  # S^4, (B, 1)
        T = r**2 * alpha * ((1.0 / beta_side - p**2 * beta_side) / tau**2 + w**2 * (1.0 / beta_side - D**2 * beta_side))
        l2 = self.l0 * alpha
        n = (mu1 * (pi / self.l0)) ** 2 + (mu2 * pi / l2) ** 2  # (B, M)
        # (d1 - d3 n) / 2, written without cancellation
        sigma = (1.0 + p * alpha * (mu1**2 - 1.0) + (p / alpha) * (mu2**2 - 1.0)) / tau  # (B, M)
        omega = torch.sqrt(torch.abs(EI * n**2 + T * n - sigma**2))  # (B, M)

        K = torch.sin(mu1 * (pi * self.x1)) * torch.sin(mu2 * (pi * self.x2))  # (M,)
        N = self.l0 * l2 / 4.0  # (B, 1)
        gain = self.h * K**2 / (omega * N)
        return gain * self._nyquist_mask(omega), sigma, omega

    def _nyquist_mask(self, omega: torch.Tensor) -> torch.Tensor:
        """(B, M) float mask of the modes kept (no gradient; computed from tensors only)."""
        m1, m2 = self.n_modes
        rejected = omega.detach() > math.pi * self.sample_rate  # ω/2π > sr/2
        if self.nyquist == "mask":
            return (~rejected).to(omega.dtype)
        rej = rejected.reshape(-1, m1, m2)
        c1 = m1 - rej.sum(dim=1).amax(dim=1)  # max over μ₂ of #rejected μ₁
        c2 = m2 - rej.sum(dim=2).amax(dim=1)
        c1 = torch.where(c1 == 0, torch.full_like(c1, m1), c1)
        c2 = torch.where(c2 == 0, torch.full_like(c2, m2), c2)
        i1 = torch.arange(m1, device=omega.device)
        i2 = torch.arange(m2, device=omega.device)
        keep = (i1[None, :, None] < c1[:, None, None]) & (i2[None, None, :] < c2[:, None, None])
        return keep.reshape(omega.shape).to(omega.dtype)

    # ------------------------------------------------------------------ audio
    def render(self, theta: torch.Tensor) -> torch.Tensor:
        gain, sigma, omega = self.modes(theta)  # (B, M) each
        y = damped_sines(gain, sigma, omega, self.n_samples, self.sample_rate)
        if self.normalize:
            peak = torch.amax(torch.abs(y), dim=-1, keepdim=True)
            y = y / torch.clamp(peak, min=torch.finfo(y.dtype).tiny)
        return y


def damped_sines(
    gain: torch.Tensor, sigma: torch.Tensor, omega: torch.Tensor, n_samples: int, sample_rate: float
) -> torch.Tensor:
    """``y[b, k] = Σ_m gain[b,m] exp(-sigma[b,m] t_k) sin(omega[b,m] t_k)``, ``t_k = k / sr``.

    gain, sigma, omega: (B, M) → y (B, n_samples), same dtype.  Instead of materialising the
    (B, M, N) modes, time is split as ``k = C a + c`` and the angle-addition formula turns the
    sum into two batched matmuls of (B, M, A) and (B, M, C) factors (A·C >= N, C ≈ √N):
    ``e^{-σt} sin(ωt) = e^{-σt_a}e^{-σt_c}(sin ωt_a cos ωt_c + cos ωt_a sin ωt_c)``.  Only
    ``exp`` of non-positive arguments is evaluated (no overflow).
    """
    dtype, device = gain.dtype, gain.device
    C = max(1, math.isqrt(n_samples - 1) + 1) if n_samples > 1 else 1
    A = -(-n_samples // C)
    t_c = torch.arange(C, dtype=dtype, device=device) / sample_rate  # (C,)
    t_a = torch.arange(A, dtype=dtype, device=device) * (C / sample_rate)  # (A,)
    s, w = sigma[..., None], omega[..., None]
    env_a = gain[..., None] * torch.exp(-s * t_a)  # (B, M, A)
    P_sin, P_cos = env_a * torch.sin(w * t_a), env_a * torch.cos(w * t_a)
    env_c = torch.exp(-s * t_c)  # (B, M, C)
    Q_sin, Q_cos = env_c * torch.sin(w * t_c), env_c * torch.cos(w * t_c)
    y = torch.einsum("bma,bmc->bac", P_sin, Q_cos) + torch.einsum("bma,bmc->bac", P_cos, Q_sin)
    return y.reshape(y.shape[0], A * C)[:, :n_samples]
