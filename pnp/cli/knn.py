"""``pnp knn``: k-nearest-neighbour regression of the synthesis parameters from a store's features.

Usage::

    pnp knn STORE [--k 5] [--space features|metric] [--split test|val|train]
            [--compare OTHER_STORE ...] [--block-size N] [--threads 1] [--quiet] --out DIR

Fits on the train split, finds the ``k`` nearest train samples of every sample of ``--split``
(exact Euclidean distances between features, read from the store chunk by chunk; or, with
``--space metric``, the stored Riemannian metric, which uses the query's ν) and reports per
parameter the R² and mean absolute error of the neighbours' mean ν, and the median and
interquartile range of the DAFx'22 log2 ratio log2(exp(mean log θ_neighbours) / θ).
Writes ``DIR/report.json``, ``DIR/knn.png`` (log2-ratio distributions per parameter) and
``DIR/neighbours.npz``, and prints a table.  ``--compare`` runs the same on other stores of the
same grid (same θ and split; an error otherwise) and adds ``DIR/compare.json``,
``DIR/compare.png``, ``DIR/compare/<label>/`` and a side-by-side table.  ``--split train`` is
leave-one-out.  Bad options print one line naming the option (exit 2).
"""

from __future__ import annotations

import argparse
from typing import Any

HELP = "k-NN regression of the parameters from a store's features (DAFx'22 ratios)"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("knn", help=HELP, description=HELP + ".")
    p.add_argument("store", metavar="STORE", help="precompute store (zarr)")
    p.add_argument("--k", type=int, default=5, help="neighbours per query (default 5)")
    p.add_argument("--space", default="features", help="features (default) or metric (needs stored Jacobians)")
    p.add_argument("--split", default="test", help="queries: test (default), val or train (leave-one-out)")
    add_shared_options(p, compare="evaluated side by side",
                       block_size="rows per distance tile (default: 32 MiB of float64 rows, 16..1024)")
    p.set_defaults(func=run)
    return p


def add_shared_options(p: argparse.ArgumentParser, compare: str, block_size: str) -> None:
    """The options ``pnp knn`` and ``pnp embed`` share: --compare, --block-size, --threads,
    --quiet, --out (``compare``: how the other stores are treated; ``block_size``: its help)."""
    p.add_argument("--compare", nargs="+", default=[], metavar="OTHER_STORE",
                   help=f"other stores of the same grid, {compare}")
    p.add_argument("--block-size", type=int, default=None, metavar="N", help=block_size)
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS threads (default 1: on a shared machine more threads spin-wait and run slower)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created if needed)")


def run(args: argparse.Namespace) -> int:
    from pnp.pipelines.evaluate import run_knn

    run_knn([args.store, *args.compare], args.out, k=args.k, space=args.space, split=args.split,
            block_size=args.block_size, threads=args.threads, progress=not args.quiet)
    return 0
