r"""The chirplet arpeggiator of Vahidi et al., *Mesostructures* (JAES 2023), eqs. 5–8.

A sequence of exponential chirplets ("events") at the rate ``f_m``, each with a half-sine
envelope, riding on one exponential chirp of rate ``γ`` (so the phase is continuous across
events and every new event sounds higher than the previous one: an ascending arpeggio), under a
Gaussian envelope spanning ``w`` octaves.  The paper's equations were not retrievable verbatim
here; this module implements them from their description as follows (t in seconds, centred:
``t_k = k/sr - duration/2``):

* (5) exponential chirp, instantaneous frequency ``f_c 2^{γ t}``:
  :math:`\phi(t) = \sin\!\big(2\pi \frac{f_c}{\gamma\ln 2}(2^{\gamma t} - 1)\big)`;
* (6) half-sine event envelope of duration ``1/f_m``:
  :math:`h(u) = \sin(\pi u)\,\mathbb 1_{[0,1)}(u)`;
* (7) events centred at ``t_n = n/f_m`` (n ∈ ℤ), the chirp phase kept continuous, under the
  Gaussian :math:`g_w(t) = \exp(-t^2/2\sigma^2)` with :math:`\sigma = \sigma_0 w/\gamma`:

  .. math::
      x(t) = g_w(t)\,\phi(t)\sum_{n\in\mathbb Z} h\big(f_m t - n + \tfrac12\big)
           = g_w(t)\,\phi(t)\,\lvert\cos(\pi f_m t)\rvert ;

* (8) the Gaussian's support ``|t| <= w/(2γ)`` covers ``w`` octaves of the chirp, hence the
  number of events :math:`n_\mathrm{events} = f_m\,w/\gamma`.

With the default σ₀ = 1/4 the support edge ``±w/(2γ) = ±2σ`` is where ``g_w`` falls to
``e^{-2}``: an event counts when its envelope peak is at least ``e^{-1/(8σ₀²)}`` times the
central one.  θ = (f_m, γ) with f_m ∈ [4, 16] Hz, γ ∈ [0.5, 4] oct/s (log-scaled); f_c
(default 512 Hz), w (default 2 octaves), duration (4 s) and sample rate (8192 Hz) are fixed by
the config.  The output is not normalised (peak ≈ 1 at t = 0).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from pnp.synth.base import Synth, positive_float, timing
from pnp.synth.space import Parameter, ParameterSpace


def arpeggio_space() -> ParameterSpace:
    """(f_m, γ), the ranges of the AM chirp's f_m and γ, log-scaled."""
    return ParameterSpace(
        [
            Parameter("f_m", 4.0, 16.0, "log", "Hz", "event rate (chirplets per second)"),
            Parameter("gamma", 0.5, 4.0, "log", "oct/s", "chirp rate"),
        ],
        name="arpeggio",
    )


class Arpeggio(Synth):
    """Chirplet arpeggiator (see module docstring). θ (B, 2) = (f_m Hz, γ oct/s) → (B, N).

    Parameters
    ----------
    sample_rate : float
        Hz (default 8192).
    duration : float
        Seconds (default 4); N = round(duration · sample_rate), t ∈ [-duration/2, duration/2).
    f_c : float
        Chirp frequency at t = 0 in Hz (default 512).
    w : float
        Width of the Gaussian envelope in octaves (default 2).
    sigma0 : float
        Gaussian std in units of ``w/γ`` seconds (default 1/4: ±2σ spans w octaves).
    """

    name = "arpeggio"

    def __init__(
        self,
        sample_rate: float = 8192.0,
        duration: float = 4.0,
        f_c: float = 512.0,
        w: float = 2.0,
        sigma0: float = 0.25,
    ):
        sample_rate, duration_s, n_samples = timing(sample_rate, duration)
        super().__init__(sample_rate, n_samples)
        self.duration_s = duration_s
        self.f_c = positive_float(f_c, "f_c")
        self.w = positive_float(w, "w")
        self.sigma0 = positive_float(sigma0, "sigma0")
        self.space = arpeggio_space()

    @property
    def duration(self) -> float:
        return self.duration_s

    def _config(self) -> dict[str, Any]:
        return {
            "sample_rate": self.sample_rate,
            "duration": self.duration_s,
            "f_c": self.f_c,
            "w": self.w,
            "sigma0": self.sigma0,
        }

    @property
    def support_level(self) -> float:
        """Relative level ``e^{-1/(8σ₀²)}`` of the Gaussian at the edge ``±w/(2γ)`` of its support."""
        return math.exp(-1.0 / (8.0 * self.sigma0**2))

    def n_events(self, theta: Any) -> Any:
        """Eq. 8: number of events ``f_m w / γ`` of θ (..., 2); torch in → torch out, else numpy."""
        if isinstance(theta, torch.Tensor):
            return theta[..., 0] * self.w / theta[..., 1]
        arr = np.asarray(theta, dtype=np.float64)
        return arr[..., 0] * self.w / arr[..., 1]

    def time(self, dtype: torch.dtype = torch.float64, device: Any = None) -> torch.Tensor:
        """Time axis t (N,) in seconds, ``k/sr - duration/2``."""
        k = torch.arange(self.n_samples, dtype=dtype, device=device)
        return k / self.sample_rate - self.duration_s / 2.0

    def instantaneous_frequency(self, theta: torch.Tensor) -> torch.Tensor:
        """Analytic instantaneous frequency ``f_c 2^{γ t}`` (Hz) of θ (B, 2) → (B, N)."""
        t = self.time(theta.dtype, theta.device)
        return self.f_c * torch.pow(2.0, theta[..., 1:2] * t)

    def render(self, theta: torch.Tensor) -> torch.Tensor:
        f_m, gamma = theta[:, 0:1], theta[:, 1:2]
        t = self.time(theta.dtype, theta.device)  # (N,)
        ln2 = math.log(2.0)
        phase = (self.f_c / (gamma * ln2)) * torch.expm1(gamma * t * ln2)  # cycles, (B, N)
        chirp = torch.sin(2.0 * math.pi * phase)
        events = torch.abs(torch.cos(math.pi * f_m * t))  # Σ_n h(f_m t - n + 1/2)
        gauss = torch.exp(-0.5 * (t * gamma / (self.sigma0 * self.w)) ** 2)
        return gauss * events * chirp
