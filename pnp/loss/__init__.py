"""Training losses of the parameter-regression encoders and the schedules of the PNP damping.

* :class:`PNPLoss` — ``½ mean_b (ν̂ − ν)ᵀ (M + λD)(ν̂ − ν)`` with the precomputed metric M
  (:mod:`pnp.loss.quadratic`);
* :class:`ParameterLoss` — the P-loss, ``mean (ν̂ − ν)²`` (:mod:`pnp.loss.parameter`);
* :class:`SpectralLoss` — the DDSP baseline, ``‖Φ g(θ(ν̂)) − Φ g(θ(ν))‖² / K``
  (:mod:`pnp.loss.spectral`);
* :class:`ConstantDamping`, :class:`DecayDamping`, :class:`LevenbergMarquardt` — λ schedules
  (:mod:`pnp.loss.schedules`).
"""

from pnp.loss.parameter import ParameterLoss
from pnp.loss.quadratic import DAMPINGS, PNPLoss
from pnp.loss.schedules import SCHEDULES, ConstantDamping, DecayDamping, LevenbergMarquardt, make_schedule
from pnp.loss.spectral import DISTANCES, SpectralLoss

__all__ = [
    "DAMPINGS",
    "DISTANCES",
    "SCHEDULES",
    "ConstantDamping",
    "DecayDamping",
    "LevenbergMarquardt",
    "PNPLoss",
    "ParameterLoss",
    "SpectralLoss",
    "make_schedule",
]
