"""Differentiable synthesizers and their parameter spaces.

``pnp.synth.get(name, **config)`` builds a synthesizer by registry name:

* ``"ftm"`` — :class:`~pnp.synth.ftm.FTMDrum`, PNP's FTM rectangular drum, θ = (ω, τ, p, D, α);
* ``"amchirp"`` — :class:`~pnp.synth.amchirp.AMChirp`, the meso-dtfa AM/FM chirp, θ = (f_c, f_m, γ);
* ``"arpeggio"`` — :class:`~pnp.synth.arpeggio.Arpeggio`, the Mesostructures chirplet
  arpeggiator, θ = (f_m, γ).

Every synth maps θ (B, P) in physical units to audio (B, N) (see :mod:`pnp.synth.base`) and
exposes ``space``, a :class:`~pnp.synth.space.ParameterSpace`.  ``get(**synth.config())``
rebuilds a synth.
"""

from __future__ import annotations

import inspect
from typing import Any

from pnp.synth.amchirp import AMChirp
from pnp.synth.arpeggio import Arpeggio
from pnp.synth.base import Synth
from pnp.synth.ftm import FTMDrum
from pnp.synth.space import (
    SPLIT_NAMES,
    TEST,
    TRAIN,
    VAL,
    Parameter,
    ParameterSpace,
    Samples,
    Split,
    pnp_split,
    random_split,
)

#: registry name → class
SYNTHS: dict[str, type[Synth]] = {cls.name: cls for cls in (FTMDrum, AMChirp, Arpeggio)}


def available() -> tuple[str, ...]:
    """Registered synth names, sorted."""
    return tuple(sorted(SYNTHS))


def get(name: str | None = None, **config: Any) -> Synth:
    """Build the synth registered as ``name`` with keyword ``config``.

    Raises ``ValueError`` for an unknown name, an unknown config key or a bad config value.
    ``get(**synth.config())`` rebuilds ``synth``.
    """
    if name is None:
        raise ValueError(f"a synth name is required; available: {', '.join(available())}")
    if name not in SYNTHS:
        raise ValueError(f"unknown synth {name!r}; available: {', '.join(available())}")
    cls = SYNTHS[name]
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown config key(s) {unknown} for synth {name!r}; allowed: {', '.join(allowed)}"
        )
    return cls(**config)


__all__ = [
    "AMChirp",
    "Arpeggio",
    "FTMDrum",
    "Parameter",
    "ParameterSpace",
    "SPLIT_NAMES",
    "SYNTHS",
    "Samples",
    "Split",
    "Synth",
    "TEST",
    "TRAIN",
    "VAL",
    "available",
    "get",
    "pnp_split",
    "random_split",
]
