"""``pnp train``: train an encoder (audio → ν̂) on a precompute store.

Usage::

    pnp train STORE --loss ploss|pnp|mss|jtfs|mrstft|specl2 --out RUN_DIR [--epochs N] [--batch-size B]
              [--lr LR] [--damping identity|diag|mean] [--lam L|max-eig-squared]
              [--schedule constant|decay|lm|adaptive] [--accelerator A] [--brake B]
              [--lr-plateau PATIENCE] [--pretrain-epochs N] [--steps-per-epoch S] [--order chunks|samples]
              [--encoder scalogram|effnet-cqt] [--seed S] [--workers N] [--device cpu|cuda|auto]
              [--resume] [--no-progress]

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

HELP = ("train an encoder (audio -> synth parameters) on a precompute store with the P-loss, PNP loss, or a "
        "spectral loss (MSS, JTFS, MRSTFT, specl2)")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``train`` on ``subparsers`` (``func=run``)."""
    from pnp.vocabulary import DAMPING_NAMES, DEVICES, ENCODER_KINDS, LAM0_AUTO, LOSSES, SCHEDULE_NAMES, SHUFFLES

    p = subparsers.add_parser("train", help=HELP, description=HELP + ". Writes RUN_DIR/{config.json, "
                              "checkpoint.pt, best.pt, metrics.csv, metrics.json, loss_curves.png}.")
    p.add_argument("store", metavar="STORE", help="precompute store (pnp precompute ... --store STORE)")
    p.add_argument("--loss", required=True, help=f"training loss: {', '.join(LOSSES)}")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory (new or empty; or --resume)")
    p.add_argument("--epochs", default="30", help="number of epochs (default 30; >= 1)")
    p.add_argument("--batch-size", default="32", help="batch size (default 32; >= 1)")
    p.add_argument("--lr", default="1e-3", help="Adam learning rate (default 1e-3; > 0)")
    p.add_argument("--damping", default=None, help=f"PNP damping matrix: {', '.join(DAMPING_NAMES)} (default identity; --loss pnp)")
    p.add_argument("--lam", default=None, help=f"initial PNP damping lambda (>= 0, or {LAM0_AUTO} with --schedule adaptive: "
                   "the square of the largest stored eigenvalue of M over the train split; default 0 with --schedule "
                   f"constant, {LAM0_AUTO} with adaptive, else 1; --loss pnp)")
    p.add_argument("--schedule", default="constant", help=f"lambda schedule: {', '.join(SCHEDULE_NAMES)} (default constant; "
                   "adaptive = the PNP authors' rule, lm = pnp's Levenberg-Marquardt variant that restores the best weights)")
    p.add_argument("--accelerator", default=None, help="lambda factor after a validation improvement, in (0, 1] "
                   "(--schedule lm: default 0.5; adaptive: 0.05)")
    p.add_argument("--brake", default=None, help="lambda factor after a non-improvement, >= 1 (lm: default 10; adaptive: 1)")
    p.add_argument("--lr-plateau", default=None, metavar="PATIENCE",
                   help="ReduceLROnPlateau on the validation loss with this patience (>= 0; default: constant lr)")
    p.add_argument("--pretrain-epochs", default="0", metavar="N",
                   help="epochs of P-loss before --loss (>= 0, < --epochs; the schedule starts at the switch)")
    p.add_argument("--steps-per-epoch", default=None, metavar="S",
                   help="batches per epoch, drawn i.i.d. (>= 1; needs --order samples; default: one pass)")
    p.add_argument("--order", default="chunks", help=f"batch order: {', '.join(SHUFFLES)} (default chunks: store chunks, "
                   "then samples within them; samples: uniform i.i.d. batches, the split cached in memory)")
    p.add_argument("--encoder", default="scalogram", help=f"encoder: {', '.join(ENCODER_KINDS)} (default scalogram, "
                   "the compact CPU CNN; effnet-cqt = the authors' EfficientNet-B0, needs pip install -e .[effnet])")
    p.add_argument("--seed", default="0", help="seed of the weights and the batch order (default 0)")
    p.add_argument("--workers", default="0", help="data-loader worker processes (default 0)")
    p.add_argument("--device", default="cpu", help=f"{', '.join(DEVICES)} (default cpu)")
    p.add_argument("--resume", action="store_true", help="continue RUN_DIR from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bars or per-epoch lines")
    p.set_defaults(func=run, _choices=(LOSSES, DAMPING_NAMES, SCHEDULE_NAMES, DEVICES, SHUFFLES, ENCODER_KINDS))
    return p


def run(args: argparse.Namespace) -> int:
    """Execute ``pnp train``; prints the best epoch and where the run is."""
    from pnp.training.trainer import LAM0_AUTO, train

    losses, dampings, schedules, devices, orders, encoders = args._choices
    loss = choice_option(args.loss, "loss", losses)
    damping = None if args.damping is None else choice_option(args.damping, "damping", dampings)
    schedule = choice_option(args.schedule, "schedule", schedules)
    device = choice_option(args.device, "device", devices)
    epochs = int_option(args.epochs, "epochs", 1)
    batch_size = int_option(args.batch_size, "batch-size", 1)
    lr = float_option(args.lr, "lr")
    if args.lam == LAM0_AUTO:
        lam: float | str | None = LAM0_AUTO
    else:
        lam = None if args.lam is None else float_option(args.lam, "lam", positive=False)
        if lam is not None and lam < 0:
            raise ValueError(f"--lam must be a finite number >= 0 (or {LAM0_AUTO}), got {args.lam!r}")
    if loss != "pnp" and (args.lam is not None or args.damping is not None):
        raise ValueError(f"--lam and --damping apply to --loss pnp only, not {loss}")
    seed = int_option(args.seed, "seed", 0)
    workers = int_option(args.workers, "workers", 0)
    protocol: dict[str, Any] = {
        "accelerator": None if args.accelerator is None else float_option(args.accelerator, "accelerator"),
        "brake": None if args.brake is None else float_option(args.brake, "brake"),
        "lr_plateau": None if args.lr_plateau is None else int_option(args.lr_plateau, "lr-plateau", 0),
        "pretrain_epochs": int_option(args.pretrain_epochs, "pretrain-epochs", 0),
        "steps_per_epoch": None if args.steps_per_epoch is None else int_option(args.steps_per_epoch, "steps-per-epoch", 1),
        "order": choice_option(args.order, "order", orders),
        "encoder_kind": choice_option(args.encoder, "encoder", encoders),
    }
    for name in ("accelerator", "brake"):
        if protocol[name] is not None and schedule not in ("lm", "adaptive"):
            raise ValueError(f"--{name} applies to --schedule lm or adaptive only, not {schedule}")
    if protocol["accelerator"] is not None and protocol["accelerator"] > 1:
        raise ValueError(f"--accelerator must be a number in (0, 1], got {args.accelerator!r}")
    if protocol["brake"] is not None and protocol["brake"] < 1:
        raise ValueError(f"--brake must be a number >= 1, got {args.brake!r}")
    if protocol["pretrain_epochs"] and protocol["pretrain_epochs"] >= epochs:
        raise ValueError(f"--pretrain-epochs must be < --epochs ({epochs}), got {protocol['pretrain_epochs']}")
    if protocol["steps_per_epoch"] is not None and protocol["order"] != "samples":
        raise ValueError("--steps-per-epoch needs --order samples (batches drawn i.i.d.)")
    trainer = train(args.store, loss=loss, out=args.out, epochs=epochs, batch_size=batch_size, lr=lr,
                    damping=damping, lam=lam, schedule=schedule, seed=seed, resume=args.resume,
                    num_workers=workers, device=device, progress=not args.no_progress, **protocol)
    last = trainer.history_[-1] if trainer.history_ else None
    if last is not None:
        print(f"{trainer.run_dir_}: {len(trainer.history_)} epochs, best epoch {trainer.best_epoch_} "
              f"(val {trainer.config_['loss']} {trainer.best_val_loss_:.4g}); last val P-loss {last['val_ploss']:.4g}")
    return 0
