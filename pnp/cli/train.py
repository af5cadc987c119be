"""``pnp train``: train an encoder (audio → ν̂) on a precompute store.

Usage::

    pnp train STORE --loss ploss|pnp|mss|jtfs --out RUN_DIR [--epochs N] [--batch-size B] [--lr LR]
              [--damping identity|diag|mean] [--lam L] [--schedule constant|decay|lm] [--seed S]
              [--workers N] [--device cpu|cuda|auto] [--resume] [--no-progress]

Trains :class:`pnp.training.Encoder` on the store's train split with the chosen loss, validates
after every epoch on its val split, and writes ``RUN_DIR/{config.json, checkpoint.pt, best.pt,
metrics.csv, metrics.json, loss_curves.png}``.  ``--resume`` continues ``RUN_DIR`` from its last
checkpoint (up to ``--epochs`` epochs); a different configuration is refused.  See
:mod:`pnp.training.trainer`.
"""

from __future__ import annotations

import argparse
from typing import Any

from pnp.cli.landscape import choice_option, float_option, int_option

HELP = "train an encoder (audio -> synth parameters) on a precompute store with the P-loss, PNP loss, MSS or JTFS"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``train`` on ``subparsers`` (``func=run``)."""
    from pnp.training.trainer import DAMPING_NAMES, DEVICES, LOSSES, SCHEDULE_NAMES

    p = subparsers.add_parser("train", help=HELP, description=HELP + ". Writes RUN_DIR/{config.json, "
                              "checkpoint.pt, best.pt, metrics.csv, metrics.json, loss_curves.png}.")
    p.add_argument("store", metavar="STORE", help="precompute store (pnp precompute ... --store STORE)")
    p.add_argument("--loss", required=True, help=f"training loss: {', '.join(LOSSES)}")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory (new or empty; or --resume)")
    p.add_argument("--epochs", default="30", help="number of epochs (default 30; >= 1)")
    p.add_argument("--batch-size", default="32", help="batch size (default 32; >= 1)")
    p.add_argument("--lr", default="1e-3", help="Adam learning rate (default 1e-3; > 0)")
    p.add_argument("--damping", default=None, help=f"PNP damping matrix: {', '.join(DAMPING_NAMES)} (default identity; --loss pnp)")
    p.add_argument("--lam", default=None, help="initial PNP damping lambda (>= 0; default 0 with --schedule constant, else 1; --loss pnp)")
    p.add_argument("--schedule", default="constant", help=f"lambda schedule: {', '.join(SCHEDULE_NAMES)} (default constant)")
    p.add_argument("--seed", default="0", help="seed of the weights and the batch order (default 0)")
    p.add_argument("--workers", default="0", help="data-loader worker processes (default 0)")
    p.add_argument("--device", default="cpu", help=f"{', '.join(DEVICES)} (default cpu)")
    p.add_argument("--resume", action="store_true", help="continue RUN_DIR from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bars or per-epoch lines")
    p.set_defaults(func=run, _choices=(LOSSES, DAMPING_NAMES, SCHEDULE_NAMES, DEVICES))
    return p


def run(args: argparse.Namespace) -> int:
    """Execute ``pnp train``; prints the best epoch and where the run is."""
    from pnp.training.trainer import train

    losses, dampings, schedules, devices = args._choices
    loss = choice_option(args.loss, "loss", losses)
    damping = None if args.damping is None else choice_option(args.damping, "damping", dampings)
    schedule = choice_option(args.schedule, "schedule", schedules)
    device = choice_option(args.device, "device", devices)
    epochs = int_option(args.epochs, "epochs", 1)
    batch_size = int_option(args.batch_size, "batch-size", 1)
    lr = float_option(args.lr, "lr")
    lam = None if args.lam is None else float_option(args.lam, "lam", positive=False)
    if lam is not None and lam < 0:
        raise ValueError(f"--lam must be a finite number >= 0, got {args.lam!r}")
    if loss != "pnp" and (args.lam is not None or args.damping is not None):
        raise ValueError(f"--lam and --damping apply to --loss pnp only, not {loss}")
    seed = int_option(args.seed, "seed", 0)
    workers = int_option(args.workers, "workers", 0)
    trainer = train(args.store, loss=loss, out=args.out, epochs=epochs, batch_size=batch_size, lr=lr,
                    damping=damping, lam=lam, schedule=schedule, seed=seed, resume=args.resume,
                    num_workers=workers, device=device, progress=not args.no_progress)
    last = trainer.history_[-1] if trainer.history_ else None
    if last is not None:
        print(f"{trainer.run_dir_}: {len(trainer.history_)} epochs, best epoch {trainer.best_epoch_} "
              f"(val {trainer.config_['loss']} {trainer.best_val_loss_:.4g}); last val P-loss {last['val_ploss']:.4g}")
    return 0
