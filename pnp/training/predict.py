r"""A trained encoder applied to sounds: ν̂, θ̂ (physical units), the resynthesis g(θ̂) and its
distances to the input.

:class:`Predictor` loads a run's weights (``best.pt`` / ``checkpoint.pt``) with the synth,
parametrization and representation of the store it was trained on; :meth:`Predictor.predict`
maps a batch of sounds ``x`` (B, N) float64 — already in the store's format (sample rate, length:
:func:`pnp.audio.condition`) — to

* ``nu_hat`` (B, P) float64: ``f(x)`` of the encoder, run in its own dtype (float32 for
  ``pnp train``'s runs) exactly as :func:`pnp.training.evaluate.score` runs it;
* ``theta_hat`` (B, P_full) float64: θ(ν̂) in physical units, the store's fixed parameters added;
* ``resynthesis`` (B, N) float64: ``g(θ(ν̂))`` rendered by the store's synth;
* ``jtfs``, ``mss``, ``mrstft``, ``jtfs_relative`` (B,): the distances between the input and its
  resynthesis (:class:`pnp.training.evaluate.SoundDistances`; ``jtfs_relative`` = ‖Φx̂ − Φx‖ / ‖Φx‖,
  above :data:`FAR_RELATIVE` the resynthesis is flagged as poor).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

#: ``jtfs_relative`` above which a resynthesis is flagged as poor: it misses more than half of the
#: input's JTFS norm.  It flags a bad fit, whatever its cause -- an input the synth cannot make or
#: an encoder inaccurate there -- and cannot tell them apart (measured, docs/training.md: the
#: store's own chirps gave 0.03-0.79 with the tests' 2-epoch encoder, white noise 0.41, a 50 Hz
#: sine 1.33; FTM drums 0.06-0.19 and white noise 0.25 with benchmarks/ftm_recovery.py's encoder)
FAR_RELATIVE = 0.5


class Predictor:
    """A run's encoder with its store's synth and distances (see the module docs).

    Parameters
    ----------
    weights : path of a ``best.pt`` or ``checkpoint.pt``
    device : "auto", "cpu" or "cuda"
    """

    def __init__(self, weights: str | os.PathLike, device: str = "cpu"):
        from pnp.training.evaluate import SoundDistances, open_run_store
        from pnp.training.trainer import load_encoder, torch_device

        self.device = torch_device(device)
        model, self.config, self.checkpoint = load_encoder(weights, map_location="cpu")
        self.model = model.to(self.device)
        self.model_dtype = next(model.parameters()).dtype
        self.store = open_run_store(self.config)
        self.spec = self.store.spec()
        self.sounds = SoundDistances(self.spec, self.device)
        self.synth, self.param = self.sounds.synth, self.sounds.param

    @property
    def sample_rate(self) -> float:
        return float(self.synth.sample_rate)

    @property
    def n_samples(self) -> int:
        return int(self.synth.n_samples)

    @property
    def params(self) -> tuple[str, ...]:
        """The free (predicted) parameters, in the store's order."""
        return tuple(self.param.free)

    @torch.no_grad()
    def predict(self, audio: Any) -> dict[str, np.ndarray]:
        """Sounds (B, N) (float64, the store's rate and length) → the arrays of the module docs."""
        x = torch.as_tensor(np.asarray(audio, dtype=np.float64), device=self.device)
        if x.ndim != 2 or x.shape[1] != self.n_samples:
            raise ValueError(f"audio must have shape (B, {self.n_samples}), got {tuple(x.shape)}")
        nu_hat = self.model(x.to(self.model_dtype)).to(torch.float64)
        x_hat = self.sounds.render(nu_hat)
        theta_hat = self.param.theta(nu_hat.clamp(-1.0, 1.0))
        out = {"nu_hat": nu_hat.cpu().numpy(), "theta_hat": theta_hat.cpu().numpy(), "resynthesis": x_hat.cpu().numpy()}
        out.update(self.sounds.distances(x_hat, x))
        return out


__all__ = ["FAR_RELATIVE", "Predictor"]
