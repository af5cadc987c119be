"""``pnp train``: train an encoder (audio → ν̂) on a precompute store.

Usage::

    pnp train STORE --loss ploss|pnp|mss|jtfs|mrstft|specl2|scrapl --out RUN_DIR [--epochs N] [--batch-size B]
              [--lr LR] [--optimizer adam|p-adam-saga|p-adam|p-saga] [--theta-is N]
              [--damping identity|diag|mean] [--lam L|max-eig-squared]
              [--schedule constant|decay|lm|adaptive] [--accelerator A] [--brake B]
              [--lr-plateau PATIENCE] [--pretrain-epochs N] [--steps-per-epoch S] [--order chunks|samples]
              [--encoder scalogram|effnet-cqt] [--seed 0] [--loader-workers N] [--device auto|cpu|cuda]
              [--threads 1] [--resume] [--quiet]

Trains :class:`pnp.training.Encoder` on the store's train split with the chosen loss, validates
after every epoch on its val split, and writes ``RUN_DIR/{config.json, checkpoint.pt, best.pt,
metrics.csv, metrics.json, loss_curves.png}``.  ``--resume`` continues ``RUN_DIR`` from its last
checkpoint (up to ``--epochs`` epochs); a different configuration is refused.  See
:mod:`pnp.training.trainer`.
"""

from __future__ import annotations

import argparse
from typing import Any

from pnp.cli.options import (
    add_batch_size,
    add_device,
    add_loader_workers,
    add_out,
    add_quiet,
    add_seed,
    add_threads,
    float_option,
    integer,
    number,
    set_threads,
)

HELP = ("train an encoder (audio -> synth parameters) on a precompute store with the P-loss, PNP loss, a "
        "spectral loss (MSS, JTFS, MRSTFT, specl2) or SCRAPL (random JTFS paths)")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``train`` on ``subparsers`` (``func=run``)."""
    from pnp.vocabulary import (
        DAMPING_NAMES,
        DEFAULT_SCRAPL_OPTIMIZER,
        ENCODER_KINDS,
        LAM0_AUTO,
        LOSSES,
        OPTIMIZERS,
        SCHEDULE_NAMES,
        SHUFFLES,
    )

    p = subparsers.add_parser("train", help=HELP, description=HELP + ". Writes RUN_DIR/{config.json, "
                              "checkpoint.pt, best.pt, metrics.csv, metrics.json, loss_curves.png}.")
    p.add_argument("store", metavar="STORE", help="precompute store (pnp precompute ... --store STORE)")
    p.add_argument("--loss", choices=LOSSES, required=True, help=f"training loss: {', '.join(LOSSES)}")
    add_out(p, "RUN_DIR", "run directory (new or empty; or --resume)")
    p.add_argument("--epochs", type=integer(1), default=30, metavar="N", help="number of epochs (>= 1, default 30)")
    add_batch_size(p, 32, "sounds")
    p.add_argument("--lr", type=number(0, open_low=True), default=1e-3,
                   help="learning rate of Adam or of the path-wise optimiser's SGD (> 0, default 1e-3)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None,
                   help=f"optimiser: {', '.join(OPTIMIZERS)} (default adam; --loss scrapl: {DEFAULT_SCRAPL_OPTIMIZER}, "
                   "SCRAPL's SGD behind path-wise Adam and SAGA; the p-* optimisers need --loss scrapl)")
    p.add_argument("--theta-is", type=integer(1), default=None, metavar="N",
                   help="--loss scrapl: sample the JTFS paths by theta-IS probabilities measured on N training sounds "
                   "(>= 1; costly; default: uniform)")
    p.add_argument("--damping", choices=DAMPING_NAMES, default=None,
                   help=f"PNP damping matrix: {', '.join(DAMPING_NAMES)} (default identity; --loss pnp)")
    p.add_argument("--lam", default=None, metavar="L", help=f"initial PNP damping lambda (>= 0, or {LAM0_AUTO} with "
                   "--schedule adaptive: the square of the largest stored eigenvalue of M over the train split; "
                   f"default 0 with --schedule constant, {LAM0_AUTO} with adaptive, else 1; --loss pnp)")
    p.add_argument("--schedule", choices=SCHEDULE_NAMES, default="constant",
                   help=f"lambda schedule: {', '.join(SCHEDULE_NAMES)} (default constant; adaptive = the PNP authors' "
                   "rule, lm = pnp's Levenberg-Marquardt variant that restores the best weights)")
    p.add_argument("--accelerator", type=number(0, 1, open_low=True), default=None, metavar="A",
                   help="lambda factor after a validation improvement, in (0, 1] (--schedule lm: default 0.5; adaptive: 0.05)")
    p.add_argument("--brake", type=number(1), default=None, metavar="B",
                   help="lambda factor after a non-improvement, >= 1 (lm: default 10; adaptive: 1)")
    p.add_argument("--lr-plateau", type=integer(0), default=None, metavar="PATIENCE",
                   help="ReduceLROnPlateau on the validation loss with this patience (>= 0; default: constant lr)")
    p.add_argument("--pretrain-epochs", type=integer(0), default=0, metavar="N",
                   help="epochs of P-loss before --loss (>= 0, < --epochs, default 0; the schedule starts at the switch)")
    p.add_argument("--steps-per-epoch", type=integer(1), default=None, metavar="S",
                   help="batches per epoch, drawn i.i.d. (>= 1; needs --order samples; default: one pass)")
    p.add_argument("--order", choices=SHUFFLES, default="chunks",
                   help=f"batch order: {', '.join(SHUFFLES)} (default chunks: store chunks, then samples within "
                   "them; samples: uniform i.i.d. batches, the split cached in memory)")
    p.add_argument("--encoder", choices=ENCODER_KINDS, default="scalogram",
                   help=f"encoder: {', '.join(ENCODER_KINDS)} (default scalogram, the compact CPU CNN; effnet-cqt = "
                   "the authors' EfficientNet-B0, needs pip install -e .[effnet])")
    add_seed(p, "the weights and the batch order")
    add_loader_workers(p)
    add_device(p)
    add_threads(p)
    p.add_argument("--resume", action="store_true", help="continue RUN_DIR from its last checkpoint")
    add_quiet(p, "no progress bars or per-epoch lines")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Execute ``pnp train``; prints the best epoch and where the run is."""
    from pnp.pipelines.training import train
    from pnp.vocabulary import LAM0_AUTO

    if args.lam == LAM0_AUTO:
        lam: float | str | None = LAM0_AUTO
    else:
        lam = None if args.lam is None else float_option(args.lam, "lam", positive=False)
        if lam is not None and lam < 0:
            raise ValueError(f"--lam must be a finite number >= 0 (or {LAM0_AUTO}), got {args.lam}")
    if args.loss != "pnp" and (args.lam is not None or args.damping is not None):
        raise ValueError(f"--lam and --damping apply to --loss pnp only, not {args.loss}")
    if args.loss != "scrapl" and args.optimizer not in (None, "adam"):
        raise ValueError(f"--optimizer {args.optimizer} (SCRAPL's path-wise optimiser) applies to --loss scrapl only, "
                         f"not {args.loss}; use --optimizer adam")
    if args.loss != "scrapl" and args.theta_is is not None:
        raise ValueError(f"--theta-is applies to --loss scrapl only, not {args.loss}")
    protocol: dict[str, Any] = {
        "accelerator": args.accelerator, "brake": args.brake, "lr_plateau": args.lr_plateau,
        "pretrain_epochs": args.pretrain_epochs, "steps_per_epoch": args.steps_per_epoch,
        "order": args.order, "encoder_kind": args.encoder, "optimizer": args.optimizer, "theta_is": args.theta_is,
    }
    for name in ("accelerator", "brake"):
        if protocol[name] is not None and args.schedule not in ("lm", "adaptive"):
            raise ValueError(f"--{name} applies to --schedule lm or adaptive only, not {args.schedule}")
    if args.pretrain_epochs and args.pretrain_epochs >= args.epochs:
        raise ValueError(f"--pretrain-epochs must be < --epochs ({args.epochs}), got {args.pretrain_epochs}")
    if args.steps_per_epoch is not None and args.order != "samples":
        raise ValueError("--steps-per-epoch needs --order samples (batches drawn i.i.d.)")
    set_threads(args.threads)
    from pnp.pipelines.training import RunDirectoryError

    try:
        trainer = train(args.store, loss=args.loss, out=args.out, epochs=args.epochs, batch_size=args.batch_size,
                        lr=args.lr, damping=args.damping, lam=lam, schedule=args.schedule, seed=args.seed,
                        resume=args.resume, num_workers=args.loader_workers, device=args.device,
                        progress=not args.quiet, **protocol)
    except RunDirectoryError as err:  # the library's remedy, in this command's options
        if err.reason == "holds-a-run":
            raise ValueError(f"{err.path} already holds a training run; pass --resume to continue it, or choose "
                             "another (empty or new) --out directory") from None
        raise ValueError(f"cannot --resume: {err.path} holds no checkpoint (start the run without --resume)") from None
    last = trainer.history_[-1] if trainer.history_ else None
    if last is not None:
        print(f"{trainer.run_dir_}: {len(trainer.history_)} epochs, best epoch {trainer.best_epoch_} "
              f"(val {trainer.config_['loss']} {trainer.best_val_loss_:.4g}); last val P-loss {last['val_ploss']:.4g}")
    return 0
