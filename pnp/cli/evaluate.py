"""``pnp evaluate``: errors of trained runs on a split of their store.

Usage::

    pnp evaluate RUN_DIR [--split test|val|train|all] [--compare RUN_DIR ...] [--batch-size 64]
                 [--weights best|final] [--device auto|cpu|cuda] [--threads 1] [--quiet]

Loads ``RUN_DIR/best.pt``, predicts ν̂ on the split and prints the per-parameter mean absolute
error in ν, the P-loss, the PNP loss (λ = 0), the JTFS distance (the store's representation) and
the MSS distance; writes ``RUN_DIR/evaluation.json`` (``evaluation_<split>.json`` for val / train /
all), ``predictions_<split>.npz`` and ``predictions_<split>.png``.  With ``--compare`` every run
is evaluated and the table has one column per run.  See :mod:`pnp.training.evaluate` and :mod:`pnp.pipelines.training`.
"""

from __future__ import annotations

import argparse
from typing import Any

from pnp.cli.options import SPLITS, add_batch_size, add_device, add_quiet, add_split, add_threads, set_threads

HELP = "evaluate trained runs on a split of their store (errors in nu, P-loss, PNP loss, JTFS and MSS distances)"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``evaluate`` on ``subparsers`` (``func=run``)."""
    p = subparsers.add_parser("evaluate", help=HELP, description=HELP + ".")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by pnp train")
    add_split(p, SPLITS, "test", "the samples evaluated")
    p.add_argument("--compare", nargs="+", default=[], metavar="RUN_DIR", help="more runs, shown side by side")
    add_batch_size(p, 64, "sounds")
    add_device(p)
    add_threads(p)
    p.add_argument("--weights", default="best", choices=("best", "final"),
                   help="best: the best validation epoch's weights (best.pt, default); final: the last epoch's "
                        "(checkpoint.pt, what the PNP authors test)")
    add_quiet(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Execute ``pnp evaluate``: prints the table."""
    from pnp.pipelines.training import evaluate
    from pnp.training.evaluate import compare_table

    set_threads(args.threads)
    runs = [args.run_dir, *args.compare]
    results = [evaluate(r, split=args.split, batch_size=args.batch_size, device=args.device, progress=not args.quiet,
                        weights=args.weights)
               for r in runs]
    print(f"{args.split} split ({results[0]['n']} samples of {results[0]['store']}):")
    print(compare_table(results))
    return 0
