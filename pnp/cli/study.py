"""``pnp study pnp``: every loss × seed of the PNP training study under one protocol.

Usage::

    pnp study pnp STORE --out RUN_DIR [--losses ploss,pnp,pnp-pretrained,mrstft,specl2,jtfs,scrapl]
              [--seeds 5] [--epochs E] [--samples-per-epoch S] [--batch-size 256]
              [--spectral-batch-size 64] [--lr 1e-3] [--lr-plateau 3] [--pretrain-epochs N]
              [--encoder scalogram|effnet-cqt] [--hop H] [--jtfs-epochs E] [--jtfs-seeds K]
              [--jtfs-samples-per-epoch S] [--test-samples N] [--theta-is N] [--scrapl-is-seeds K]
              [--workers 2 | --scheduler-file FILE] [--report-only] [--quiet]

Runs (or resumes) each run as a dask task on the embedded LocalCluster, then writes
``RUN_DIR/study.json``, ``study.md`` and ``figures/`` (see :mod:`pnp.pipelines.study`).
"""

from __future__ import annotations

import argparse
from typing import Any

from pnp.cli.options import add_batch_size, add_out, add_quiet, choice_option, integer, number

HELP = "the PNP training study: every loss x seed under the authors' protocol, resumable, with a table and figures"
KINDS = ("pnp",)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from pnp.vocabulary import ENCODER_KINDS
    from pnp.vocabulary import STUDY_DEFAULT_LOSSES as DEFAULT_LOSSES
    from pnp.vocabulary import STUDY_LOSSES as VARIANTS

    p = subparsers.add_parser("study", help=HELP, description=HELP + ".")
    p.add_argument("kind", choices=KINDS, help="which study (pnp: the PNP training study)")
    p.add_argument("store", metavar="STORE", help="precompute store with Jacobians and audio "
                   "(e.g. data/stores/amchirp_pnp_local.zarr)")
    add_out(p, "RUN_DIR", "study directory (created; reused to resume)")
    p.add_argument("--losses", default=",".join(DEFAULT_LOSSES),
                   help=f"comma-separated losses among {', '.join(VARIANTS)} (default {','.join(DEFAULT_LOSSES)})")
    p.add_argument("--seeds", type=integer(1), default=5, metavar="K", help="seeds per loss (>= 1; seeds 0 .. K-1; default 5)")
    p.add_argument("--epochs", type=integer(1), default=70, metavar="E", help="epochs per run (>= 1; default 70, the authors')")
    p.add_argument("--samples-per-epoch", type=integer(1), default=None, metavar="S",
                   help="sounds per epoch, drawn i.i.d. (>= 1; the authors' 25600; default one pass over the train split)")
    add_batch_size(p, 256, "sounds of the ploss / pnp runs")
    p.add_argument("--spectral-batch-size", type=integer(1), default=64, metavar="B",
                   help="sounds per batch of the spectral losses (>= 1, default 64, the authors')")
    p.add_argument("--lr", type=number(0, open_low=True), default=1e-3, help="Adam learning rate (> 0, default 1e-3)")
    p.add_argument("--lr-plateau", type=_patience, default=3, metavar="PATIENCE",
                   help="ReduceLROnPlateau patience on the validation loss (>= 0; 'none' for a constant lr; default 3)")
    p.add_argument("--pretrain-epochs", type=integer(1), default=None, metavar="N",
                   help="P-loss epochs of pnp-pretrained (>= 1, < --epochs; default half of --epochs)")
    p.add_argument("--encoder", choices=ENCODER_KINDS, default="scalogram", help=f"{', '.join(ENCODER_KINDS)} (default scalogram)")
    p.add_argument("--hop", type=integer(1), default=None, metavar="H", help="encoder frame hop in samples, a power of two "
                   "(default: the encoder's; the authors' CQT hop is 256)")
    p.add_argument("--test-samples", type=integer(1), default=None, metavar="N",
                   help="test on the first N sounds of the test split only (>= 1, a fixed subset; default all)")
    p.add_argument("--jtfs-epochs", type=integer(1), default=None, metavar="E", help="epochs of the jtfs runs (default --epochs)")
    p.add_argument("--jtfs-seeds", type=integer(1), default=None, metavar="K", help="seeds of the jtfs runs (default --seeds)")
    p.add_argument("--jtfs-samples-per-epoch", type=integer(1), default=None, metavar="S",
                   help="sounds per epoch of the jtfs runs (default --samples-per-epoch)")
    p.add_argument("--theta-is", type=integer(1), default=1, metavar="N",
                   help="training sounds of the θ-IS warm-up of the scrapl-is runs (>= 1, default 1)")
    p.add_argument("--scrapl-is-seeds", type=integer(1), default=None, metavar="K",
                   help="seeds of the scrapl-is runs (default --seeds)")
    p.add_argument("--workers", type=integer(0), default=2, metavar="N",
                   help="dask worker processes of the embedded LocalCluster, 1 thread each (>= 0; 0: in this process; "
                   "default 2)")
    p.add_argument("--scheduler-file", default=None, metavar="FILE",
                   help="attach to a running dask.distributed cluster (dask-jobqueue, dask-cuda) instead")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing: summarise the runs finished so far (same options as the study)")
    add_quiet(p)
    p.set_defaults(func=run, _variants=tuple(VARIANTS))
    return p


def _patience(text: str) -> int | None:
    """argparse ``type`` of ``--lr-plateau``: an integer >= 0, or ``none``."""
    if str(text).strip().lower() == "none":
        return None
    try:
        return integer(0)(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0 or none, got {text}") from None


def run(args: argparse.Namespace) -> int:
    from pnp.pipelines.study import Protocol, study, table
    from pnp.store import normalise_path

    losses = [x.strip() for x in str(args.losses).split(",") if x.strip()]
    for loss in losses:
        choice_option(loss, "losses", args._variants)
    overrides: dict[str, dict[str, Any]] = {}
    if args.jtfs_epochs is not None:
        overrides.setdefault("jtfs", {})["epochs"] = args.jtfs_epochs
    if args.jtfs_samples_per_epoch is not None:
        overrides.setdefault("jtfs", {})["samples_per_epoch"] = args.jtfs_samples_per_epoch
    if args.jtfs_seeds is not None:
        overrides.setdefault("jtfs", {})["seeds"] = list(range(args.jtfs_seeds))
    if args.scrapl_is_seeds is not None:
        overrides.setdefault("scrapl-is", {})["seeds"] = list(range(args.scrapl_is_seeds))
    if args.pretrain_epochs is not None and args.pretrain_epochs >= args.epochs:
        raise ValueError(f"--pretrain-epochs must be an integer in [1, {args.epochs - 1}], got {args.pretrain_epochs}")
    protocol = Protocol(
        store=normalise_path(args.store), losses=losses, seeds=list(range(args.seeds)), epochs=args.epochs,
        samples_per_epoch=args.samples_per_epoch, batch_size=args.batch_size,
        spectral_batch_size=args.spectral_batch_size, lr=args.lr, lr_plateau=args.lr_plateau,
        pretrain_epochs=args.pretrain_epochs, encoder_kind=args.encoder,
        encoder={} if args.hop is None else {"hop": args.hop},
        overrides=overrides, test_samples=args.test_samples, theta_is=args.theta_is,
    )
    report = study(protocol, args.out, workers=args.workers, progress=not args.quiet,
                   scheduler_file=args.scheduler_file, report_only=args.report_only)
    print(table(report))
    if report.get("missing_runs"):
        print(f"{len(report['missing_runs'])} runs not finished yet ({', '.join(report['missing_runs'][:4])}"
              f"{', …' if len(report['missing_runs']) > 4 else ''}): run the same command without --report-only")
    print(f"wrote {args.out}/study.json, study.md and figures/")
    return 0
