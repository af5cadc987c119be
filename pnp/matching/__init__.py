"""Differentiable time–frequency analysis experiments of the Mesostructures paper (Vahidi et al.,
JAES 2023): loss landscapes, gradient fields and sound matching by gradient descent under the
multi-scale spectrogram (MSS) and joint time–frequency scattering (JTFS).

* :mod:`pnp.matching.problem` — :class:`MatchingProblem` (synth + loss + free parameters),
  :func:`make_problem`, the JTFS/MSS presets, batched loss + gradient evaluation;
* :mod:`pnp.matching.landscape` — :func:`compute_landscape` on a log-spaced grid;
* :mod:`pnp.matching.descent` — the bold-driver rule (:func:`bold_driver`), Adam (:func:`adam`) and
  initialisations;
* :mod:`pnp.matching.plots` — the figures.

The experiments themselves (``pnp match``, ``pnp chirp-pairs``: several initialisations,
summaries) are workflows: :mod:`pnp.pipelines.matching`.
"""

from pnp.matching.descent import INIT_SCHEMES, DescentResult, adam, bold_driver, grid_nodes, init_points
from pnp.matching.landscape import Landscape, compute_landscape, default_target, grid_axes, parse_random_shift
from pnp.matching.problem import (
    FAST_DECIMATION,
    JTFS_PAPER,
    LOSSES,
    MSS_PAPER,
    PRESETS,
    FeatureLoss,
    MatchingProblem,
    decimate,
    make_loss,
    make_problem,
)

__all__ = [
    "DescentResult",
    "FAST_DECIMATION",
    "FeatureLoss",
    "INIT_SCHEMES",
    "JTFS_PAPER",
    "LOSSES",
    "Landscape",
    "MSS_PAPER",
    "MatchingProblem",
    "PRESETS",
    "adam",
    "bold_driver",
    "compute_landscape",
    "decimate",
    "default_target",
    "grid_axes",
    "grid_nodes",
    "init_points",
    "make_loss",
    "make_problem",
    "parse_random_shift",
]
