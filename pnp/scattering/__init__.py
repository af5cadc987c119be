"""Representations Φ: joint time-frequency scattering, time scattering, multi-scale spectrogram."""

from __future__ import annotations

from typing import Any

from pnp.scattering.base import Representation

_REGISTRY: dict[str, str] = {
    "jtfs": "pnp.scattering.jtfs:TimeFrequencyScattering",
    "mss": "pnp.scattering.mss:MultiScaleSpectrogram",
    "scattering1d": "pnp.scattering.time_scattering:TimeScattering",
}


def _load(name: str):
    import importlib

    if name not in _REGISTRY:
        raise ValueError(f"unknown representation {name!r}; choose one of {sorted(_REGISTRY)}")
    module, cls = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)


def get(name: str, **config: Any) -> Representation:
    """Build a representation from its registry name and config (as returned by ``config()``,
    also in its JSON / TOML form: see :meth:`Representation.from_config`); ``TypeError`` (as for
    any unexpected keyword argument) naming the allowed options for a key it does not take."""
    import inspect

    cls = _load(name)
    params = inspect.signature(cls.__init__).parameters.values()
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        allowed = [p.name for p in params if p.name != "self" and p.kind is not p.VAR_POSITIONAL]
        unknown = [k for k in config if k not in allowed]
        if unknown:
            raise TypeError(f"representation {name!r} has no option {', '.join(map(repr, unknown))}; "
                             f"allowed: {', '.join(allowed)}")
    return cls.from_config(**config)


def names() -> list[str]:
    return sorted(_REGISTRY)


def __getattr__(attr: str):
    lazy = {"TimeFrequencyScattering": "jtfs", "MultiScaleSpectrogram": "mss", "TimeScattering": "scattering1d"}
    if attr in lazy:
        return _load(lazy[attr])
    raise AttributeError(attr)


__all__ = ["Representation", "get", "names", "TimeFrequencyScattering", "MultiScaleSpectrogram", "TimeScattering"]
