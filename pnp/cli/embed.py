"""``pnp embed``: low-dimensional manifold embedding of a store's features, coloured by parameter.

Usage::

    pnp embed STORE [--method isomap|pca|umap] [--n-neighbors 40] [--n-components 3]
              [--max-samples N] [--split test|val|train|all] [--seed 0] [--trust-samples 4096]
              [--trust-neighbors 5] [--compare OTHER_STORE ...] [--block-size 16..1024] [--threads 1] [--quiet] --out DIR

Fits the embedding (Isomap by default, as in DAFx'22: 40 neighbours, 3 components; PCA; UMAP
with the optional ``umap`` extra) on at most ``--max-samples`` random samples and transforms the
others block by block, then measures its quality: scikit-learn's trustworthiness (on at most
``--trust-samples`` samples) and, per parameter, the R² of a linear fit from the coordinates to
the normalised parameter.  Writes ``DIR/embedding.npz`` (coords, indices, nu, theta, fit),
``DIR/embedding.png`` (one scatter panel per parameter, coloured by it) and
``DIR/report.json``, and prints a table.  ``--compare`` runs the same on other stores of the
same grid and adds ``DIR/compare.json``, ``DIR/compare.png`` and ``DIR/compare/<label>/``.
Bad options print one line naming the option (exit 2).
"""

from __future__ import annotations

import argparse
from typing import Any

from pnp.cli.knn import add_shared_options
from pnp.cli.options import SPLITS, add_seed, add_split, integer

HELP = "manifold embedding (Isomap / PCA / UMAP) of a store's features and its quality"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("embed", help=HELP, description=HELP + ".")
    p.add_argument("store", metavar="STORE", help="precompute store (zarr)")
    p.add_argument("--method", choices=("isomap", "pca", "umap"), default="isomap",
                   help="isomap (default), pca or umap (pip install 'pnp[umap]')")
    p.add_argument("--n-neighbors", type=integer(1), default=40, metavar="N",
                   help="neighbours of the Isomap / UMAP graph (>= 1, < the fitted samples; default 40)")
    p.add_argument("--n-components", type=integer(1), default=3, metavar="C",
                   help="embedding dimension (>= 1, default 3)")
    p.add_argument("--max-samples", type=integer(2), default=4096, metavar="N",
                   help="fit on at most N random samples, transform the others (>= 2, default 4096; Isomap's memory "
                        "grows as 3 x N^2 x 8 bytes)")
    add_split(p, SPLITS, "all", "the samples embedded (an embedding is unsupervised: all by default)")
    add_seed(p, "the subsamples and solvers")
    p.add_argument("--trust-samples", type=integer(3), default=4096, metavar="N",
                   help="trustworthiness on at most N random samples (>= 3, default 4096; memory about N^2 x 32 bytes)")
    p.add_argument("--trust-neighbors", type=integer(1), default=5, metavar="K",
                   help="neighbours of the trustworthiness (>= 1, default 5)")
    add_shared_options(p, compare="embedded side by side", block_size="rows per distance tile / block")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from pnp.pipelines.evaluate import run_embed

    run_embed([args.store, *args.compare], args.out, method=args.method, n_neighbors=args.n_neighbors,
              n_components=args.n_components, max_samples=args.max_samples, split=args.split, seed=args.seed,
              trust_samples=args.trust_samples, trust_neighbors=args.trust_neighbors, block_size=args.block_size,
              threads=args.threads, progress=not args.quiet)
    return 0
