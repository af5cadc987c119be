r"""The AM/FM chirp of the meso-dtfa repository (Vahidi et al.) and of the PNP papers (Han et al.).

An exponential chirp (carrier) multiplied by a sinusoidal amplitude modulation and by a Gaussian
window whose width is set by the bandwidth ``bw`` (in octaves), as in
``cyrusvahidi/meso-dtfa`` ``meso_dtfa/core.py::generate_am_chirp``; the PNP authors' chirp
(``lylyhan/perceptual_neural_physical`` ``src/pnp_synth/physical/amchirp.py::generate_am_chirp``)
is the same formula with the same defaults (tested against audio made by their code).

Parameters θ = (f_c, f_m, γ), physical units, all log-scaled:

=====  ===================================  ============  =====
name   meaning                              bounds        scale
=====  ===================================  ============  =====
f_c    carrier frequency at t = 0 (Hz)      [512, 1024]   log
f_m    amplitude-modulation frequency (Hz)  [4, 16]       log
gamma  chirp rate γ (octaves/s)             [0.5, 4]      log
=====  ===================================  ============  =====

With ``t_k = k/sr - duration/2`` (k = 0..N-1, N = duration·sr) and the window's own centred
axis ``u_k = (k - (N-1)/2)/sr``,

.. math::

    x(t_k) = \gamma\,\sin\!\Big(2\pi\frac{f_c}{\gamma\ln 2}\big(2^{\gamma t_k} - 1\big)\Big)\,
             \sin(2\pi f_m t_k)\,
             \exp\!\Big(-\frac{u_k^2}{2\sigma^2}\Big),\qquad \sigma = \sigma_0\,\mathrm{bw}/\gamma

(σ₀ = 0.1), i.e. an instantaneous frequency ``f_c 2^{γt}`` and a window of standard deviation
``σ₀ bw / γ`` seconds.  An optional integer time shift (``shift`` samples; > 0 delays, < 0
advances, zero-filled) is applied last, from the config or per call.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from pnp.synth.base import Synth, positive_float, timing
from pnp.synth.space import Parameter, ParameterSpace


def chirp_space(name: str = "amchirp") -> ParameterSpace:
    """(f_c, f_m, γ) with the meso-dtfa / PNP-chirp ranges, all log-scaled."""
    return ParameterSpace(
        [
            Parameter("f_c", 512.0, 1024.0, "log", "Hz", "carrier frequency at t = 0"),
            Parameter("f_m", 4.0, 16.0, "log", "Hz", "amplitude-modulation frequency"),
            Parameter("gamma", 0.5, 4.0, "log", "oct/s", "chirp rate"),
        ],
        name=name,
    )


def shift_samples(x: torch.Tensor, shift: int) -> torch.Tensor:
    """Shift (..., N) by an integer number of samples along the last axis, zero-filled.

    ``shift > 0`` delays (``y[k] = x[k - shift]``), ``shift < 0`` advances.  Differentiable,
    vmap-safe (``shift`` is a Python int).
    """
    shift = int(shift)
    if shift == 0:
        return x
    n = x.shape[-1]
    if abs(shift) >= n:
        return torch.zeros_like(x)
    if shift > 0:
        return torch.nn.functional.pad(x[..., : n - shift], (shift, 0))
    return torch.nn.functional.pad(x[..., -shift:], (0, -shift))


def check_shift(shift: Any) -> int:
    if isinstance(shift, bool):
        raise ValueError(f"shift must be an integer number of samples, got {shift!r}")
    try:
        out = int(shift)
    except (TypeError, ValueError):
        raise ValueError(f"shift must be an integer number of samples, got {shift!r}") from None
    if out != shift:
        raise ValueError(f"shift must be an integer number of samples, got {shift!r}")
    return out


class AMChirp(Synth):
    """AM/FM chirp (see module docstring). θ (B, 3) = (f_c Hz, f_m Hz, γ oct/s) → (B, N).

    Parameters
    ----------
    sample_rate : float
        Hz (default 8192).
    duration : float
        Seconds (default 4); N = round(duration · sample_rate), t ∈ [-duration/2, duration/2).
    bw : float
        Bandwidth in octaves setting the Gaussian window (default 2).
    sigma0 : float
        Window constant σ₀ (default 0.1, as in meso-dtfa): window std = σ₀ bw / γ seconds.
    shift : int
        Default time shift in samples (default 0).
    """

    name = "amchirp"

    def __init__(
        self,
        sample_rate: float = 8192.0,
        duration: float = 4.0,
        bw: float = 2.0,
        sigma0: float = 0.1,
        shift: int = 0,
    ):
        sample_rate, duration_s, n_samples = timing(sample_rate, duration)
        super().__init__(sample_rate, n_samples)
        self.duration_s = duration_s
        self.bw = positive_float(bw, "bw")
        self.sigma0 = positive_float(sigma0, "sigma0")
        self.shift = check_shift(shift)
        self.space = chirp_space(self.name)

    @property
    def duration(self) -> float:
        return self.duration_s

    def _config(self) -> dict[str, Any]:
        return {
            "sample_rate": self.sample_rate,
            "duration": self.duration_s,
            "bw": self.bw,
            "sigma0": self.sigma0,
            "shift": self.shift,
        }

    def forward(self, theta: torch.Tensor, validate: bool = True, shift: int | None = None) -> torch.Tensor:
        """θ (B, 3) or (3,) → audio (B, N) or (N,); ``shift`` (samples) overrides the config's."""
        shift = self.shift if shift is None else check_shift(shift)
        theta, was_1d = self.prepare(theta, validate)
        y = shift_samples(self.render(theta), shift)
        return y.squeeze(0) if was_1d else y

    def render(self, theta: torch.Tensor) -> torch.Tensor:
        """Unshifted chirp of θ (B, 3) → (B, N), θ's dtype/device."""
        dtype, device = theta.dtype, theta.device
        f_c, f_m, gamma = theta[:, 0:1], theta[:, 1:2], theta[:, 2:3]
        k = torch.arange(self.n_samples, dtype=dtype, device=device)
        t = k / self.sample_rate - self.duration_s / 2.0  # (N,)
        u = (k - (self.n_samples - 1) / 2.0) / self.sample_rate  # window axis (N,)
        phase = (f_c / (gamma * math.log(2.0))) * torch.expm1(gamma * t * math.log(2.0))
        carrier = torch.sin(2.0 * math.pi * phase)
        modulator = torch.sin(2.0 * math.pi * f_m * t)
        window = torch.exp(-0.5 * (u * gamma / (self.sigma0 * self.bw)) ** 2)
        return carrier * modulator * window * gamma
