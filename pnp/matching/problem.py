r"""Sound-matching problems: a synth, a spectral loss, which parameters are free, and a target.

A :class:`MatchingProblem` ties together

* a synthesizer ``g`` (``pnp.synth``) with some parameters held fixed (``f_c = 512`` Hz for the
  AM chirp, as in the Mesostructures paper) and the others free (``(f_m, γ)`` by default);
* a :class:`FeatureLoss` ``Φ`` (JTFS or MSS, see :func:`make_loss`);

and evaluates, for a batch of candidate parameters, the loss

.. math::  L(\tilde\theta) = \lVert \Phi\, S_\tau\, g(\tilde\theta) - \Phi\, g(\theta^*) \rVert_2^2

(``S_τ`` an optional integer time shift of the *predicted* sound, zero-filled) and its gradient
with respect to the *normalised log parameters* ``ν ∈ [-1, 1]^P`` of the free parameters
(``ν = space.normalize(θ)``: affine in ``log10 θ``).  ``∂L/∂ ln θ_i = ∂L/∂ν_i · 2 / (ln 10 ·
(log10 hi_i - log10 lo_i))``, see :meth:`MatchingProblem.dnu_dlog`.

Batched evaluation: the candidates are independent, so one reverse pass of ``loss.sum()``
gives every candidate's gradient; the target's representation is computed once and reused.

JTFS presets (:data:`JTFS_PAPER`): the paper's configuration is ``J=12, Q=(8, 2), J_fr=5,
Q_fr=2, F=0, T=2**13`` on ``N = 2**15`` samples at 8192 Hz.  The default ``"fast"`` preset
computes the *same filters in Hz and seconds* on the sound decimated by ``D`` (an ideal FFT
low-pass + subsampling): ``J = 12 - log2 D``, ``T = 2**13 / D``, ``N = 2**15 / D``.  The chirps
have no energy near the top of the spectrum (≤ 0.9 kHz for the AM chirp at f_c = 512 Hz,
≤ 1.5 kHz for the arpeggio), so the decimated transform differs from the paper's only by its
(empty) top octaves, at a fraction of the cost (``benchmarks/landscape.py``; on 12 random points, shift 0 and 1024: loss
correlation with the paper's preset 0.99997, gradient cosine >= 0.999; see the README and
``docs/results/preset_agreement.json``).  ``D`` is 4 for ``amchirp`` and 2 for ``arpeggio``;
:func:`make_loss` checks that the decimation keeps ≥ 1 - 1e-4 of the energy of test sounds.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

import pnp.scattering
import pnp.synth
from pnp.jacobian import Parametrization
from pnp.signal import flush_tiny  # noqa: F401 - also re-exported
from pnp.synth.amchirp import shift_samples
from pnp.synth.base import Synth
from pnp.synth.space import ParameterSpace

#: the Mesostructures paper's JTFS (meso-dtfa ``scripts/grad_descent.py``, with T = 2**13)
JTFS_PAPER: dict[str, Any] = dict(J=12, Q=(8, 2), J_fr=5, Q_fr=2, F=0, T=2**13, format="time")
#: the paper's multi-scale spectrogram (eq. 18): windows 2**5 .. 2**10, hop = window / 4
MSS_PAPER: dict[str, Any] = dict(window_sizes=(32, 64, 128, 256, 512, 1024), hop_ratio=0.25)
#: decimation of the "fast" JTFS preset, per synth (see module docstring)
FAST_DECIMATION = {"amchirp": 4, "arpeggio": 2}
LOSSES = ("jtfs", "mss")
#: the synths a problem can be built for, and their default free parameters (the others fixed:
#: f_c = 512 Hz for the AM chirp, as in the Mesostructures paper)
SYNTHS = ("amchirp", "arpeggio", "ftm")
DEFAULT_FREE = {"amchirp": ("f_m", "gamma"), "arpeggio": ("f_m", "gamma"), "ftm": ("omega", "tau", "p", "D", "alpha")}
PRESETS = ("fast", "paper")
#: fraction of energy the decimation may drop before ``make_loss`` refuses it
MAX_DROPPED_ENERGY = 1e-4


# ----------------------------------------------------------------------------- helpers
def decimate(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Ideal low-pass + subsampling of ``x`` (..., N) by ``factor`` (a power of two dividing N).

    Keeps the rFFT bins below the new Nyquist frequency and inverts at length ``N / factor``
    (scaled by ``1 / factor`` so that a band-limited sinusoid keeps its amplitude).
    Differentiable, batched, exact for sounds without energy above the new Nyquist frequency.
    """
    factor = int(factor)
    if factor == 1:
        return x
    n = x.shape[-1]
    if n % factor:
        raise ValueError(f"decimation factor {factor} must divide the signal length {n}")
    m = n // factor
    X = torch.fft.rfft(x, dim=-1)[..., : m // 2 + 1]
    return torch.fft.irfft(X, n=m, dim=-1) / factor


def dropped_energy(x: torch.Tensor, factor: int) -> float:
    """Largest fraction (over the batch) of the energy of ``x`` (B, N) above ``0.45 sr / factor``
    (what a decimation by ``factor`` would lose or put in the top, badly covered band)."""
    if factor == 1:
        return 0.0
    P = torch.fft.rfft(x.detach().double(), dim=-1).abs() ** 2
    cut = int(0.45 * (x.shape[-1] // factor))
    frac = P[..., cut:].sum(-1) / P.sum(-1).clamp_min(1e-300)
    return float(frac.max())


# ----------------------------------------------------------------------------- losses
class FeatureLoss:
    """``Φ``: optional decimation, then a pnp representation's flat features ``(B, K)``.

    Parameters
    ----------
    name : {"jtfs", "mss"}
    rep : pnp.scattering.Representation
    decimation : int
        Power of two; the sound is decimated by this factor before ``rep`` (see :func:`decimate`).
    preset : str
        Label recorded in :meth:`config` ("fast", "paper" or "custom").
    """

    def __init__(self, name: str, rep: Any, decimation: int = 1, preset: str = "custom"):
        self.name = name
        self.rep = rep
        self.decimation = int(decimation)
        self.preset = preset

    def features(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio (B, N) → features (B, K) (raw, no compression unless the rep has ``log1p_c``)."""
        return self.rep.features(decimate(audio, self.decimation))

    def config(self) -> dict[str, Any]:
        return {"loss": self.name, "preset": self.preset, "decimation": self.decimation, "representation": self.rep.config()}


def _pow2_divisor(value: Any, n: int) -> int:
    if isinstance(value, bool):
        raise ValueError(f"decimation must be a power of two dividing N = {n}, got {value!r}")
    try:
        d = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"decimation must be a power of two dividing N = {n}, got {value!r}") from None
    if d != value or d < 1 or d & (d - 1) or n % d:
        raise ValueError(f"decimation must be a power of two dividing N = {n}, got {value!r}")
    return d


def make_loss(
    loss: str,
    synth: Synth,
    preset: str = "fast",
    decimation: int | None = None,
    **overrides: Any,
) -> FeatureLoss:
    """Build the loss ``Φ`` for sounds of ``synth``.

    ``loss="mss"``: :data:`MSS_PAPER` (overridable), no decimation.  ``loss="jtfs"``: the
    paper's JTFS (:data:`JTFS_PAPER`) scaled to the synth's length, on the sound decimated by
    ``decimation`` (default: 1 for ``preset="paper"``, :data:`FAST_DECIMATION` for "fast"); ``J``
    and ``T`` given for the paper's 2**15 samples are scaled with the length and decimation so
    that the filters keep their durations.  ``overrides`` replace representation arguments
    (after scaling).  Raises ``ValueError`` for an unknown loss/preset or a decimation that
    would drop more than :data:`MAX_DROPPED_ENERGY` of the energy of test sounds.
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    N = synth.n_samples
    if loss == "mss":
        if decimation not in (None, 1):
            raise ValueError("decimation applies to the jtfs loss only")
        cfg = {**MSS_PAPER, **overrides}
        return FeatureLoss("mss", pnp.scattering.get("mss", **cfg), 1, preset)
    if decimation is None:
        decimation = 1 if preset == "paper" else FAST_DECIMATION.get(synth.name, 1)
    D = _pow2_divisor(decimation, N)
    n = N // D
    # scale J and T from the paper's N = 2**15 to this length (same durations in seconds)
    log2_scale = math.log2(n / 2**15)
    cfg = dict(JTFS_PAPER)
    cfg["J"] = max(1, int(round(cfg["J"] + log2_scale)))
    cfg["T"] = max(1, min(n, int(round(cfg["T"] * 2**log2_scale))))
    cfg.update(overrides)
    cfg["shape"] = n
    rep = pnp.scattering.get("jtfs", **cfg)
    return FeatureLoss("jtfs", rep, D, preset if not overrides else "custom")


# ----------------------------------------------------------------------------- problem
def check_shift(shift: Any, n: int, what: str = "shift") -> int:
    if isinstance(shift, bool):
        raise ValueError(f"{what} must be an integer number of samples in [0, {n - 1}], got {shift!r}")
    try:
        s = int(shift)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an integer number of samples in [0, {n - 1}], got {shift!r}") from None
    if s != shift or not 0 <= s < n:
        raise ValueError(f"{what} must be an integer number of samples in [0, {n - 1}], got {shift!r}")
    return s


class MatchingProblem:
    """Synth + loss + free/fixed parameters (see module docstring).

    Parameters
    ----------
    synth : Synth
    loss : FeatureLoss
    free : sequence of str
        Names of the free parameters (default ``("f_m", "gamma")``).
    fixed : dict, optional
        Values (physical units) of the other parameters; missing ones default to the
        parameter's geometric mid-range, except ``f_c`` which defaults to 512 Hz (the paper's).
    dtype : torch.dtype
        Computation dtype (float32 by default; float64 for tests).
    """

    def __init__(
        self,
        synth: Synth,
        loss: FeatureLoss,
        free: Sequence[str] = ("f_m", "gamma"),
        fixed: dict[str, float] | None = None,
        dtype: torch.dtype = torch.float32,
    ):
        space = synth.space
        free = tuple(free)
        for name in free:
            space.index(name)  # ValueError for an unknown name
        if len(set(free)) != len(free) or not free:
            raise ValueError(f"free parameters must be distinct names of {space.names}, got {free}")
        self.synth, self.loss, self.dtype = synth, loss, dtype
        self.free = free
        self.free_idx = [space.index(n) for n in free]
        self.space = ParameterSpace([space.parameters[i] for i in self.free_idx], name=f"{space.name} (free)")
        fixed = dict(fixed or {})
        unknown = sorted(set(fixed) - set(space.names))
        if unknown or set(fixed) & set(free):
            raise ValueError(f"fixed parameters must be names of {space.names} not in {free}, got {sorted(fixed)}")
        self.fixed: dict[str, float] = {}
        for p in space.parameters:
            if p.name in free:
                continue
            default = 512.0 if p.name == "f_c" else (math.sqrt(p.lo * p.hi) if p.is_log else 0.5 * (p.lo + p.hi))
            value = float(fixed.get(p.name, default))
            if not (p.lo <= value <= p.hi):
                raise ValueError(f"fixed parameter {p.name} = {value:g} is outside its bounds {p.bounds_str()}")
            self.fixed[p.name] = value
        #: ν → θ of the synth (free parameters in the space's order, the fixed ones added)
        self.parametrization = Parametrization(space, self.fixed)
        self._space_order = [free.index(n) for n in self.parametrization.free]
        # ∂ν/∂ln θ for each free parameter (ν affine in log10 θ)
        self.dnu_dlog = np.array(
            [2.0 / (math.log(10.0) * (p.s_hi - p.s_lo)) if p.is_log else float("nan") for p in self.space.parameters]
        )

    # ------------------------------------------------------------------ parameters
    @property
    def n_samples(self) -> int:
        return self.synth.n_samples

    def theta_free(self, nu: Any) -> np.ndarray:
        """ν (..., P) → free physical parameters (..., P), float64 numpy."""
        return np.asarray(self.space.denormalize(np.asarray(nu, dtype=np.float64)))

    def nu(self, theta_free: Any) -> np.ndarray:
        """Free physical parameters (..., P) → ν (..., P), float64 numpy."""
        return np.asarray(self.space.normalize(np.asarray(theta_free, dtype=np.float64)))

    def full_theta(self, nu: torch.Tensor) -> torch.Tensor:
        """ν (B, P) of the free parameters, in ``free`` order → the synth's full θ (B, P_synth),
        physical units, through the one ν → θ map (:class:`pnp.jacobian.Parametrization`)."""
        return self.parametrization.theta(nu[:, self._space_order])

    def check_target(self, theta_free: Any, what: str = "target") -> np.ndarray:
        """(P,) free physical values → float64 array; ValueError naming the parameter if outside."""
        arr = np.asarray(theta_free, dtype=np.float64).reshape(-1)
        if arr.shape != (len(self.free),):
            raise ValueError(f"{what} needs {len(self.free)} values ({', '.join(self.free)}), got {arr.size}")
        for v, p in zip(arr, self.space.parameters):
            if not np.isfinite(v) or not (p.lo <= v <= p.hi):
                raise ValueError(f"{what}: {p.name} = {v:g} is outside the parameter space {p.bounds_str()}")
        return arr

    # ------------------------------------------------------------------ sounds and features
    def render(self, nu: torch.Tensor, shifts: Sequence[int] | int = 0) -> torch.Tensor:
        """ν (B, P) tensor → audio (B, N); item b shifted by ``shifts[b]`` samples (or one int)."""
        theta = self.full_theta(nu)
        audio = flush_tiny(self.synth(theta, validate=False))
        if isinstance(shifts, (int, np.integer)):
            return shift_samples(audio, int(shifts))
        shifts = [int(s) for s in shifts]
        if len(set(shifts)) == 1:
            return shift_samples(audio, shifts[0])
        return torch.stack([shift_samples(audio[b], s) for b, s in enumerate(shifts)])

    def target_features(self, theta_free: Any, shift: int = 0) -> torch.Tensor:
        """Φ g(θ*) (1, K), detached, for the free parameters ``theta_free`` (P,) (physical)."""
        theta_free = self.check_target(theta_free)
        nu = torch.as_tensor(self.nu(theta_free)[None], dtype=self.dtype)
        with torch.no_grad():
            return self.loss.features(self.render(nu, check_shift(shift, self.n_samples))).detach()

    def audio_features(self, audio: Any) -> torch.Tensor:
        """Φ x (1, K), detached, of a sound ``audio`` (N,) in the synth's format (its rate and
        length: :func:`pnp.audio.condition`), in the problem's dtype."""
        x = torch.as_tensor(np.asarray(audio, dtype=np.float64), dtype=self.dtype).reshape(1, -1)
        if x.shape[1] != self.n_samples:
            raise ValueError(f"target audio must have {self.n_samples} samples (the synth's length), got {x.shape[1]}")
        if not bool(torch.isfinite(x).all()):
            raise ValueError("target audio must be finite")
        with torch.no_grad():
            return self.loss.features(flush_tiny(x)).detach()

    def evaluate(
        self,
        nu: Any,
        target: torch.Tensor,
        shifts: Sequence[int] | int = 0,
        grad: bool = True,
        batch_size: int | None = None,
        progress: Any = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Loss ``‖Φ S_τ g(θ(ν)) - target‖²`` (B,) and its gradient ∂L/∂ν (B, P), float64 numpy.

        ``nu`` (B, P); ``target`` from :meth:`target_features`; ``shifts`` one int or one per
        item.  Items are processed in chunks of ``batch_size`` (all at once by default), each
        chunk a single batched forward + one reverse pass of the summed loss.  ``progress``: a
        tqdm-like object updated with the number of items done.
        """
        nu = np.asarray(nu, dtype=np.float64)
        if nu.ndim != 2 or nu.shape[1] != len(self.free):
            raise ValueError(f"nu must have shape (B, {len(self.free)}), got {nu.shape}")
        B = nu.shape[0]
        if isinstance(shifts, (int, np.integer)):
            shifts = [int(shifts)] * B
        shifts = [check_shift(s, self.n_samples) for s in shifts]
        if len(shifts) != B:
            raise ValueError(f"need one shift per item ({B}), got {len(shifts)}")
        step = B if not batch_size else int(batch_size)
        losses = np.empty(B)
        grads = np.empty((B, len(self.free))) if grad else None
        target = target.to(self.dtype)
        for a in range(0, B, step):
            b = min(B, a + step)
            v = torch.tensor(nu[a:b], dtype=self.dtype, requires_grad=grad)
            with torch.set_grad_enabled(grad):
                feats = self.loss.features(self.render(v, shifts[a:b]))
                L = ((feats - target) ** 2).sum(-1)
                if grad:
                    (g,) = torch.autograd.grad(L.sum(), v)
                    assert grads is not None  # allocated when grad
                    grads[a:b] = g.detach().double().numpy()
            losses[a:b] = L.detach().double().numpy()
            if progress is not None:
                progress.update(b - a)
        return losses, grads

    def config(self) -> dict[str, Any]:
        return {
            "synth": self.synth.config(),
            "free": list(self.free),
            "fixed": dict(self.fixed),
            "dtype": str(self.dtype).replace("torch.", ""),
            **self.loss.config(),
        }


def make_problem(
    synth: str = "amchirp",
    loss: str = "jtfs",
    preset: str = "fast",
    decimation: int | None = None,
    synth_config: dict[str, Any] | None = None,
    loss_config: dict[str, Any] | None = None,
    fixed: dict[str, float] | None = None,
    free: Sequence[str] | None = None,
    dtype: torch.dtype = torch.float32,
    check_band: bool = True,
) -> MatchingProblem:
    """Build a :class:`MatchingProblem` by names (``ValueError`` for unknown names/values).

    ``free``: the free parameters (default :data:`DEFAULT_FREE` of the synth); ``fixed``: values
    of the others (see :class:`MatchingProblem`).  ``check_band``: refuse a JTFS decimation that
    drops more than :data:`MAX_DROPPED_ENERGY` of the energy of the sounds at the corners and
    centre of the free parameter box.
    """
    if synth not in SYNTHS:
        raise ValueError(f"unknown synth {synth!r}; choose one of {', '.join(SYNTHS)}")
    free = DEFAULT_FREE[synth] if free is None else tuple(free)
    s = pnp.synth.get(synth, **(synth_config or {}))
    fl = make_loss(loss, s, preset=preset, decimation=decimation, **(loss_config or {}))
    problem = MatchingProblem(s, fl, free=free, fixed=fixed, dtype=dtype)
    if check_band and fl.decimation > 1:
        corners = np.array(np.meshgrid(*[[-1.0, 0.0, 1.0]] * len(free))).reshape(len(free), -1).T
        with torch.no_grad():
            audio = problem.render(torch.as_tensor(corners, dtype=torch.float64))
        lost = dropped_energy(audio, fl.decimation)
        if lost > MAX_DROPPED_ENERGY:
            raise ValueError(
                f"decimation {fl.decimation} would drop {lost:.2e} of the energy of {synth} sounds "
                f"(max {MAX_DROPPED_ENERGY:g}); use a smaller decimation or preset='paper'"
            )
    return problem
