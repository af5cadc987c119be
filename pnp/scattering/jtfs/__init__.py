"""pnp's joint time-frequency scattering: filter design / plan / core algorithm / torch frontend."""

from pnp.scattering.jtfs.frontend import TimeFrequencyScattering

__all__ = ["TimeFrequencyScattering"]
