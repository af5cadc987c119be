"""Training losses of the parameter-regression encoders and the schedules of the PNP damping.

* :class:`PNPLoss` — ``½ mean_b (ν̂ − ν)ᵀ (M + λD)(ν̂ − ν)`` with the precomputed metric M
  (:mod:`pnp.loss.quadratic`);
* :class:`ParameterLoss` — the P-loss, ``mean (ν̂ − ν)²`` (:mod:`pnp.loss.parameter`);
* :class:`SpectralLoss` — the DDSP baseline, ``‖Φ g(θ(ν̂)) − Φ g(θ(ν))‖² / K``
  (:mod:`pnp.loss.spectral`);
* :class:`AudioSpectralLoss` — the PNP authors' DDSP baselines between rendered sounds: auraloss's
  MRSTFT (``"mrstft"``) or the linear-magnitude 6-scale STFT L2 (``"specl2"``)
  (:mod:`pnp.loss.audio`);
* :class:`RandomPathJTFS`, :class:`RandomPathLoss` — SCRAPL, one random JTFS path per step
  (:mod:`pnp.loss.scrapl`; θ-IS path probabilities: :mod:`pnp.loss.theta_is`);
* :class:`ConstantDamping`, :class:`DecayDamping`, :class:`LevenbergMarquardt`,
  :class:`AdaptiveDamping` (the PNP authors' rule) — λ schedules (:mod:`pnp.loss.schedules`).
"""

from pnp.loss.audio import AUDIO_LOSSES, AudioSpectralLoss
from pnp.loss.parameter import ParameterLoss
from pnp.loss.quadratic import DAMPINGS, PNPLoss
from pnp.loss.schedules import (
    SCHEDULES,
    AdaptiveDamping,
    ConstantDamping,
    DecayDamping,
    LevenbergMarquardt,
    make_schedule,
    max_eig_squared,
)
from pnp.loss.scrapl import RandomPathJTFS, RandomPathLoss
from pnp.loss.spectral import DISTANCES, SpectralLoss

__all__ = [
    "AUDIO_LOSSES",
    "AdaptiveDamping",
    "AudioSpectralLoss",
    "DAMPINGS",
    "DISTANCES",
    "SCHEDULES",
    "ConstantDamping",
    "DecayDamping",
    "LevenbergMarquardt",
    "PNPLoss",
    "ParameterLoss",
    "RandomPathJTFS",
    "RandomPathLoss",
    "SpectralLoss",
    "make_schedule",
    "max_eig_squared",
]
