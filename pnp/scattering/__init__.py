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
    also in its JSON / TOML form: see :meth:`Representation.from_config`)."""
    return _load(name).from_config(**config)


def names() -> list[str]:
    return sorted(_REGISTRY)


def __getattr__(attr: str):
    lazy = {"TimeFrequencyScattering": "jtfs", "MultiScaleSpectrogram": "mss", "TimeScattering": "scattering1d"}
    if attr in lazy:
        return _load(lazy[attr])
    raise AttributeError(attr)


__all__ = ["Representation", "get", "names", "TimeFrequencyScattering", "MultiScaleSpectrogram", "TimeScattering"]
