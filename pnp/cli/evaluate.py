"""``pnp evaluate``: errors of trained runs on a split of their store.

Usage::

    pnp evaluate RUN_DIR [--split test] [--compare RUN_DIR ...] [--batch-size B] [--device cpu|cuda|auto]

Loads ``RUN_DIR/best.pt``, predicts ν̂ on the split and prints the per-parameter mean absolute
error in ν, the P-loss, the PNP loss (λ = 0), the JTFS distance (the store's representation) and
the MSS distance; writes ``RUN_DIR/evaluation.json`` (``evaluation_<split>.json`` for val / train /
all), ``predictions_<split>.npz`` and ``predictions_<split>.png``.  With ``--compare`` every run
is evaluated and the table has one column per run.  See :mod:`pnp.training.evaluate`.
"""

from __future__ import annotations

import argparse
from typing import Any

from pnp.cli.landscape import choice_option, int_option

HELP = "evaluate trained runs on a split of their store (errors in nu, P-loss, PNP loss, JTFS and MSS distances)"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``evaluate`` on ``subparsers`` (``func=run``)."""
    p = subparsers.add_parser("evaluate", help=HELP, description=HELP + ".")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by pnp train")
    p.add_argument("--split", default="test", help="test (default), val, train or all")
    p.add_argument("--compare", nargs="+", default=[], metavar="RUN_DIR", help="more runs, shown side by side")
    p.add_argument("--batch-size", default="64", help="samples per batch (default 64)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    p.add_argument("--weights", default="best", choices=("best", "final"),
                   help="best: the best validation epoch's weights (best.pt, default); final: the last epoch's "
                        "(checkpoint.pt, what the PNP authors test)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Execute ``pnp evaluate``: prints the table."""
    from pnp.training.evaluate import compare_table, evaluate

    split = choice_option(args.split, "split", ("test", "val", "train", "all"))
    device = choice_option(args.device, "device", ("cpu", "cuda", "auto"))
    batch_size = int_option(args.batch_size, "batch-size", 1)
    runs = [args.run_dir, *args.compare]
    results = [evaluate(r, split=split, batch_size=batch_size, device=device, progress=not args.no_progress,
                        weights=args.weights)
               for r in runs]
    print(f"{split} split ({results[0]['n']} samples of {results[0]['store']}):")
    print(compare_table(results))
    return 0
