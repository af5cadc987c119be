"""``pnp study pnp``: every loss × seed of the PNP training study under one protocol.

Usage::

    pnp study pnp STORE --out RUN_DIR [--losses ploss,pnp,pnp-pretrained,mrstft,specl2,jtfs]
              [--seeds 5] [--epochs E] [--samples-per-epoch S] [--batch-size 256]
              [--spectral-batch-size 64] [--lr 1e-3] [--lr-plateau 3] [--pretrain-epochs N]
              [--encoder scalogram|effnet-cqt] [--hop H] [--jtfs-epochs E] [--jtfs-seeds K]
              [--jtfs-samples-per-epoch S] [--test-samples N]
              [--workers 2 | --scheduler-file FILE] [--report-only] [--quiet]

Runs (or resumes) each run as a dask task on the embedded LocalCluster, then writes
``RUN_DIR/study.json``, ``study.md`` and ``figures/`` (see :mod:`pnp.pipelines.study`).
"""

from __future__ import annotations

import argparse
from typing import Any

from pnp.cli.landscape import choice_option, float_option, int_option

HELP = "the PNP training study: every loss x seed under the authors' protocol, resumable, with a table and figures"
KINDS = ("pnp",)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from pnp.pipelines.study import DEFAULT_LOSSES, VARIANTS
    from pnp.vocabulary import ENCODER_KINDS

    p = subparsers.add_parser("study", help=HELP, description=HELP + ".")
    p.add_argument("kind", choices=KINDS, help="which study (pnp: the PNP training study)")
    p.add_argument("store", metavar="STORE", help="precompute store with Jacobians and audio "
                   "(e.g. data/stores/amchirp_pnp_local.zarr)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="study directory (created; reused to resume)")
    p.add_argument("--losses", default=",".join(DEFAULT_LOSSES),
                   help=f"comma-separated losses among {', '.join(VARIANTS)} (default {','.join(DEFAULT_LOSSES)})")
    p.add_argument("--seeds", default="5", help="seeds per loss (>= 1; seeds 0 .. K-1; default 5)")
    p.add_argument("--epochs", default="70", help="epochs per run (>= 1; default 70, the authors')")
    p.add_argument("--samples-per-epoch", default=None, metavar="S",
                   help="sounds per epoch, drawn i.i.d. (>= 1; the authors' 25600; default one pass over the train split)")
    p.add_argument("--batch-size", default="256", help="batch of ploss / pnp runs (default 256, the authors')")
    p.add_argument("--spectral-batch-size", default="64", help="batch of the spectral losses (default 64, the authors')")
    p.add_argument("--lr", default="1e-3", help="Adam learning rate (default 1e-3)")
    p.add_argument("--lr-plateau", default="3", metavar="PATIENCE",
                   help="ReduceLROnPlateau patience on the validation loss (>= 0; 'none' for a constant lr; default 3)")
    p.add_argument("--pretrain-epochs", default=None, metavar="N",
                   help="P-loss epochs of pnp-pretrained (default half of --epochs)")
    p.add_argument("--encoder", default="scalogram", help=f"{', '.join(ENCODER_KINDS)} (default scalogram)")
    p.add_argument("--hop", default=None, metavar="H", help="encoder frame hop in samples, a power of two "
                   "(default: the encoder's; the authors' CQT hop is 256)")
    p.add_argument("--test-samples", default=None, metavar="N",
                   help="test on the first N sounds of the test split only (a fixed subset; default all)")
    p.add_argument("--jtfs-epochs", default=None, metavar="E", help="epochs of the jtfs runs (default --epochs)")
    p.add_argument("--jtfs-seeds", default=None, metavar="K", help="seeds of the jtfs runs (default --seeds)")
    p.add_argument("--jtfs-samples-per-epoch", default=None, metavar="S",
                   help="sounds per epoch of the jtfs runs (default --samples-per-epoch)")
    p.add_argument("--workers", default="2", help="dask worker processes of the embedded LocalCluster, 1 thread each "
                   "(>= 0; 0: in this process; default 2)")
    p.add_argument("--scheduler-file", default=None, metavar="FILE",
                   help="attach to a running dask.distributed cluster (dask-jobqueue, dask-cuda) instead")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing: summarise the runs finished so far (same options as the study)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run, _variants=tuple(VARIANTS), _encoders=ENCODER_KINDS)
    return p


def run(args: argparse.Namespace) -> int:
    from pnp.pipelines.study import Protocol, study, table
    from pnp.store import normalise_path

    losses = [x.strip() for x in str(args.losses).split(",") if x.strip()]
    for loss in losses:
        choice_option(loss, "losses", args._variants)
    seeds = list(range(int_option(args.seeds, "seeds", 1)))
    overrides: dict[str, dict[str, Any]] = {}
    if args.jtfs_epochs is not None:
        overrides.setdefault("jtfs", {})["epochs"] = int_option(args.jtfs_epochs, "jtfs-epochs", 1)
    if args.jtfs_samples_per_epoch is not None:
        overrides.setdefault("jtfs", {})["samples_per_epoch"] = int_option(args.jtfs_samples_per_epoch,
                                                                           "jtfs-samples-per-epoch", 1)
    if args.jtfs_seeds is not None:
        overrides.setdefault("jtfs", {})["seeds"] = list(range(int_option(args.jtfs_seeds, "jtfs-seeds", 1)))
    epochs = int_option(args.epochs, "epochs", 1)
    pretrain = None if args.pretrain_epochs is None else int_option(args.pretrain_epochs, "pretrain-epochs", 1, epochs - 1)
    protocol = Protocol(
        store=normalise_path(args.store), losses=losses, seeds=seeds, epochs=epochs,
        samples_per_epoch=None if args.samples_per_epoch is None else int_option(args.samples_per_epoch, "samples-per-epoch", 1),
        batch_size=int_option(args.batch_size, "batch-size", 1),
        spectral_batch_size=int_option(args.spectral_batch_size, "spectral-batch-size", 1),
        lr=float_option(args.lr, "lr"),
        lr_plateau=None if str(args.lr_plateau).lower() == "none" else int_option(args.lr_plateau, "lr-plateau", 0),
        pretrain_epochs=pretrain, encoder_kind=choice_option(args.encoder, "encoder", args._encoders),
        encoder={} if args.hop is None else {"hop": int_option(args.hop, "hop", 1)},
        overrides=overrides,
        test_samples=None if args.test_samples is None else int_option(args.test_samples, "test-samples", 1),
    )
    report = study(protocol, args.out, workers=int_option(args.workers, "workers", 0), progress=not args.quiet,
                   scheduler_file=args.scheduler_file, report_only=args.report_only)
    print(table(report))
    if report.get("missing_runs"):
        print(f"{len(report['missing_runs'])} runs not finished yet ({', '.join(report['missing_runs'][:4])}"
              f"{', …' if len(report['missing_runs']) > 4 else ''}): run the same command without --report-only")
    print(f"wrote {args.out}/study.json, study.md and figures/")
    return 0
