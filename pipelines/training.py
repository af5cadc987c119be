"""Training runs on disk: the run directory of ``pnp train``, resume, and evaluation reports.

The maths and the loop are the library's (:class:`pnp.training.Trainer`,
:func:`pnp.training.evaluate.score`); this workflow persists them:

:func:`train` runs a :class:`~pnp.training.Trainer` with a :class:`RunDirectory` as its callback,
:func:`evaluate` scores a run's weights on a split of its store and writes the report.

Run directory::

    config.json       the run's configuration (written before the first epoch)
    checkpoint.pt     after every epoch: model, optimizer, schedules, epoch, RNG state, config, history
    best.pt           the weights of the epoch with the lowest val_loss (+ config, epoch)
    metrics.csv/json  one row per epoch
    loss_curves.png   training / validation curves
    evaluation.json   (after ``pnp evaluate``) the test split's scores; evaluation_<split>.json otherwise
    predictions_<split>.npz / .png   per-sound predictions and scores, and their scatter plot

A non-empty directory is refused — unless it holds only the ``config.json`` of a run stopped
before its first checkpoint, which starts again; ``resume=True`` continues from
``checkpoint.pt`` (the trainer refuses a checkpoint whose configuration differs).  Files are
written to a temporary name and renamed, so an interrupted run never leaves a half-written file.
"""

from __future__ import annotations

import csv
import io
import os
from typing import Any, Mapping

import numpy as np

from pnp.files import atomic_write, write_json

CHECKPOINT, BEST, CONFIG, METRICS_CSV, METRICS_JSON, PLOT = (
    "checkpoint.pt", "best.pt", "config.json", "metrics.csv", "metrics.json", "loss_curves.png")
#: files a run directory may hold (anything else makes a non-empty directory "not a run")
RUN_FILES = (CHECKPOINT, BEST, CONFIG, METRICS_CSV, METRICS_JSON, PLOT)


class RunDirectoryError(ValueError):
    """``out`` cannot be used as asked: it already holds a run (``reason = "holds-a-run"``:
    resume it) or holds nothing to resume (``"nothing-to-resume"``).  ``path`` is the
    directory; front ends word the remedy in their own terms."""

    def __init__(self, path: str, reason: str, message: str):
        super().__init__(message)
        self.path, self.reason = path, reason


def write_csv(path: str, rows: list[Mapping[str, Any]], columns: tuple[str, ...]) -> None:
    """``rows`` as CSV with ``columns`` (None → empty cell), written atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})

    def w(tmp):
        with open(tmp, "w") as f:
            f.write(buf.getvalue())

    atomic_write(path, w)


def save_torch(path: str, obj: Any) -> None:
    """``torch.save`` written atomically."""
    import torch

    atomic_write(path, lambda tmp: torch.save(obj, tmp))


class RunDirectory:
    """A training run's directory: checks it, writes every epoch's files (a
    :meth:`pnp.training.Trainer.fit` callback), and loads the checkpoint to resume from."""

    def __init__(self, path: str | os.PathLike):
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
            raise TypeError(f"out must be a directory path, got {path!r}")
        self.path = os.path.abspath(os.fspath(path))

    def check(self, resume: bool) -> None:
        """Refuse a directory that cannot hold this run (see the module docs)."""
        out = self.path
        if os.path.exists(out) and not os.path.isdir(out):
            raise ValueError(f"out = {out} exists and is not a directory")
        entries = sorted(os.listdir(out)) if os.path.isdir(out) else []
        if resume:
            if CHECKPOINT not in entries:
                raise RunDirectoryError(out, "nothing-to-resume",
                                        f"cannot resume: no {CHECKPOINT} in {out} (start the run without resume)")
            return
        if entries == [CONFIG]:  # a run stopped before its first checkpoint: start it again
            return
        if entries:
            if CONFIG in entries or CHECKPOINT in entries:
                raise RunDirectoryError(out, "holds-a-run", f"out = {out} already holds a training run; resume it "
                                        "(resume=True) to continue it, or choose another (empty or new) directory")
            shown = ", ".join(entries[:3]) + (", …" if len(entries) > 3 else "")
            raise ValueError(f"out = {out} is not empty ({shown}) and holds no training run; choose an empty "
                             "or new directory")

    def checkpoint(self) -> dict[str, Any]:
        """The checkpoint dict to resume from."""
        from pnp.training.trainer import load_torch

        return load_torch(os.path.join(self.path, CHECKPOINT))

    def start(self, config: Mapping[str, Any]) -> None:
        """Before the first epoch: the directory and ``config.json``."""
        os.makedirs(self.path, exist_ok=True)
        write_json(os.path.join(self.path, CONFIG), config)

    def __call__(self, end) -> None:
        """After an epoch (an :class:`pnp.training.trainer.EpochEnd`): ``best.pt`` if it improved,
        the metrics, the loss curves and ``checkpoint.pt`` (last: it marks the epoch done)."""
        from pnp.training.plots import plot_loss_curves
        from pnp.training.trainer import COLUMNS

        if end.improved:
            save_torch(os.path.join(self.path, BEST), end.best_weights())
        write_csv(os.path.join(self.path, METRICS_CSV), end.history, COLUMNS)
        write_json(os.path.join(self.path, METRICS_JSON), {
            "config": end.config, "schedule": end.trainer.schedule_, "best_epoch": end.best_epoch,
            "best_val_loss": end.best_val_loss, "epochs": end.history})
        plot_loss_curves(end.history, os.path.join(self.path, PLOT),
                         title=f"{end.config['store_name']}: {end.trainer.loss}")
        save_torch(os.path.join(self.path, CHECKPOINT), end.checkpoint())


def fit_run(trainer, store: str | os.PathLike, out: str | os.PathLike, resume: bool = False):
    """``trainer.fit(store)`` with the run directory ``out`` (resumed from its checkpoint when
    ``resume``); returns the fitted trainer, with ``run_dir_`` set."""
    if not isinstance(resume, bool):
        raise TypeError(f"resume must be True or False, got {resume!r}")
    run = RunDirectory(out)
    run.check(resume)
    checkpoint = run.checkpoint() if resume else None
    try:
        trainer.fit(store, callbacks=[run], checkpoint=checkpoint, on_start=run.start)
    except ValueError as err:
        if str(err).startswith("cannot resume:"):
            raise ValueError(f"cannot resume {run.path}: {str(err)[len('cannot resume: '):]}") from None
        raise
    trainer.run_dir_ = run.path
    return trainer


def train(store: str | os.PathLike, loss: str = "pnp", out: str | os.PathLike | None = None, epochs: int = 30,
          batch_size: int = 32, lr: float = 1e-3, damping: str | None = None, lam: float | str | None = None,
          schedule: str = "constant", seed: int = 0, resume: bool = False, num_workers: int = 0,
          device: str = "cpu", progress: bool = True, encoder: Mapping[str, Any] | None = None,
          **protocol: Any):
    """Train an encoder on ``store`` and write the run to ``out``; returns the fitted
    :class:`pnp.training.Trainer` (``model_``, ``history_``, ``best_epoch_``, ``run_dir_``, …).
    ``protocol``: the other :class:`~pnp.training.Trainer` options (``accelerator``, ``brake``,
    ``lr_plateau``, ``pretrain_epochs``, ``steps_per_epoch``, ``order``, ``encoder_kind``)."""
    from pnp.training import Trainer

    if out is None:
        raise ValueError("out (the run directory) is required")
    trainer = Trainer(loss=loss, epochs=epochs, batch_size=batch_size, lr=lr, damping=damping, lam=lam,
                      schedule=schedule, seed=seed, num_workers=num_workers, device=device, progress=progress,
                      encoder=encoder, **protocol)
    return fit_run(trainer, store, out, resume=resume)


# ------------------------------------------------------------------------------ evaluation
def _out_name(split: str, stem: str, ext: str) -> str:
    return f"{stem}.{ext}" if (split == "test" and stem == "evaluation") else f"{stem}_{split}.{ext}"


def weights_file(run_dir: str | os.PathLike, weights: str = "best") -> str:
    """``run_dir/best.pt`` (``weights="final"``: ``checkpoint.pt``); ``FileNotFoundError`` without
    the directory or the file, ``ValueError`` for another ``weights``."""
    from pnp.training.evaluate import WEIGHTS

    run_dir = os.path.abspath(os.fspath(run_dir))
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"no run directory {run_dir}")
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {', '.join(map(repr, WEIGHTS))}, got {weights!r}")
    name = BEST if weights == "best" else CHECKPOINT
    path = os.path.join(run_dir, name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no {name} in {run_dir} (not a training run, or no epoch finished yet)")
    return path


def evaluate(run_dir: str | os.PathLike, split: str = "test", batch_size: int = 64, device: str = "cpu",
             progress: bool = True, write: bool = True, weights: str = "best",
             max_samples: int | None = None) -> dict[str, Any]:
    """Evaluate ``run_dir/best.pt`` (``weights="final"``: ``checkpoint.pt``) on ``split`` of its
    store with :func:`pnp.training.evaluate.score` (see there for the scores); ``max_samples``:
    only the split's first ``max_samples`` sounds (a fixed subset, in store order).

    Returns the JSON-able result dict; with ``write``, also ``run_dir/evaluation.json``
    (``evaluation_<split>.json`` for the other splits), ``predictions_<split>.npz`` (``index``,
    ``nu``, ``nu_hat`` and the per-sound ``jtfs_distance``, ``mss_distance``, ``mrstft``,
    ``ploss``) and the scatter plot ``predictions_<split>.png``.  Raises ``FileNotFoundError``
    without a run / store, ``ValueError`` for bad arguments.
    """
    from pnp.training.evaluate import score

    run_dir = os.path.abspath(os.fspath(run_dir))
    path = weights_file(run_dir, weights)
    result, arr = score(path, split=split, batch_size=batch_size, device=device, progress=progress,
                        max_samples=max_samples, label=os.path.basename(run_dir))
    result = {"run_dir": run_dir, "weights": weights, **result}
    if write:
        _write_evaluation(run_dir, split, result, arr)
    return result


def _write_evaluation(run_dir: str, split: str, result: Mapping[str, Any], arr: Mapping[str, Any]) -> None:
    from pnp.training.plots import plot_predictions

    write_json(os.path.join(run_dir, _out_name(split, "evaluation", "json")), result)
    err = arr["nu_hat"] - arr["nu"]
    np.savez(os.path.join(run_dir, f"predictions_{split}.npz"), index=arr["index"], nu=arr["nu"],
             nu_hat=arr["nu_hat"], jtfs_distance=arr["jtfs"], mss_distance=arr["mss"], mrstft=arr["mrstft"],
             ploss=(err**2).mean(axis=1))
    plot_predictions(arr["nu"], arr["nu_hat"], list(result["params"]), os.path.join(run_dir,
                     f"predictions_{split}.png"), title=f"{os.path.basename(run_dir)} ({result['loss']}), {split} split")


__all__ = ["BEST", "CHECKPOINT", "CONFIG", "METRICS_CSV", "METRICS_JSON", "PLOT", "RUN_FILES", "RunDirectory",
           "RunDirectoryError", "evaluate", "fit_run", "save_torch", "train", "weights_file", "write_csv"]
