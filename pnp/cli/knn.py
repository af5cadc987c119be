"""``pnp knn``: k-nearest-neighbour regression of the synthesis parameters from a store's features.

Usage::

    pnp knn STORE [--k 5] [--space features|metric] [--split test|val|train]
            [--compare OTHER_STORE ...] [--block-size 16..1024] [--threads 1] [--quiet] --out DIR

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

from pnp.cli.options import add_out, add_quiet, add_split, add_threads, integer

#: the range of --block-size (rows per distance tile); the default is computed in it
BLOCK_ROWS = (16, 1024)
HELP = "k-NN regression of the parameters from a store's features (DAFx'22 ratios)"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("knn", help=HELP, description=HELP + ".")
    p.add_argument("store", metavar="STORE", help="precompute store (zarr)")
    p.add_argument("--k", type=integer(1), default=5, help="neighbours per query (>= 1, default 5)")
    p.add_argument("--space", choices=("features", "metric"), default="features",
                   help="features (default: Euclidean distances) or metric (the stored Riemannian metric; needs Jacobians)")
    add_split(p, ("test", "val", "train"), "test", "the samples queried (leave-one-out for train)")
    add_shared_options(p, compare="evaluated side by side", block_size="rows per distance tile")
    p.set_defaults(func=run)
    return p


def add_shared_options(p: argparse.ArgumentParser, compare: str, block_size: str) -> None:
    """The options ``pnp knn`` and ``pnp embed`` share: --compare, --block-size, --threads,
    --quiet, --out (``compare``: how the other stores are treated; ``block_size``: its help)."""
    p.add_argument("--compare", nargs="+", default=[], metavar="OTHER_STORE",
                   help=f"other stores of the same grid, {compare}")
    low, high = BLOCK_ROWS
    p.add_argument("--block-size", type=integer(low, high), default=None, metavar="N",
                   help=f"{block_size}, an integer in [{low}, {high}] (default: a 32 MiB float64 tile, clipped to that range)")
    add_threads(p, "BLAS")
    add_quiet(p)
    add_out(p)


def run(args: argparse.Namespace) -> int:
    from pnp.pipelines.evaluate import run_knn

    run_knn([args.store, *args.compare], args.out, k=args.k, space=args.space, split=args.split,
            block_size=args.block_size, threads=args.threads, progress=not args.quiet)
    return 0
