"""pnp: differentiable time-frequency analysis and perceptual-neural-physical sound matching."""

__version__ = "0.1.0"
