"""Training encoders on precompute stores: the encoder, the training loop, the evaluation.

* :class:`~pnp.training.encoder.Encoder` — audio (B, N) → ν̂ (B, P) in (-1, 1): a compact CNN on
  an on-the-fly log-scalogram (:mod:`pnp.training.encoder`);
* :class:`~pnp.training.trainer.Trainer` — the training loop with the P-loss, the PNP loss, or a
  spectral loss (MSS or JTFS) in the loop; per-epoch callbacks, checkpoint dicts and resume
  (:mod:`pnp.training.trainer`);
* :class:`~pnp.training.pathwise.PathwiseSGD` — SCRAPL's 𝒫-Adam / 𝒫-SAGA in front of SGD
  (:mod:`pnp.training.pathwise`);
* :func:`~pnp.training.evaluate.score` — errors of trained weights on a split of their store
  (:mod:`pnp.training.evaluate`).

Run directories (``pnp train`` / ``pnp evaluate``) are written by the workflow
:mod:`pnp.pipelines.training`.
"""

from pnp.training.encoder import Encoder, LogScalogram
from pnp.training.evaluate import compare_table, score
from pnp.training.pathwise import PathwiseSGD
from pnp.training.trainer import LOSSES, EpochEnd, Trainer, load_encoder

__all__ = ["Encoder", "EpochEnd", "LogScalogram", "LOSSES", "PathwiseSGD", "Trainer", "load_encoder", "score",
           "compare_table"]
