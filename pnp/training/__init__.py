"""Training encoders on precompute stores: the encoder, the training loop, the evaluation.

* :class:`~pnp.training.encoder.Encoder` — audio (B, N) → ν̂ (B, P) in (-1, 1): a compact CNN on
  an on-the-fly log-scalogram (:mod:`pnp.training.encoder`);
* :func:`~pnp.training.trainer.train` / :class:`~pnp.training.trainer.Trainer` — the training
  loop with the P-loss, the PNP loss, or a spectral loss (MSS or JTFS) in the loop, checkpoints,
  resume, metrics and curves (:mod:`pnp.training.trainer`);
* :func:`~pnp.training.evaluate.evaluate` — errors of a trained run on a split
  (:mod:`pnp.training.evaluate`).
"""

from pnp.training.encoder import Encoder, LogScalogram
from pnp.training.evaluate import compare_table, evaluate
from pnp.training.trainer import LOSSES, Trainer, load_encoder, train

__all__ = ["Encoder", "LogScalogram", "LOSSES", "Trainer", "train", "load_encoder", "evaluate", "compare_table"]
