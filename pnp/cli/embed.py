"""``pnp embed``: low-dimensional manifold embedding of a store's features, coloured by parameter.

Usage::

    pnp embed STORE [--method isomap|pca|umap] [--n-neighbors 40] [--n-components 3]
              [--max-samples N] [--split all|train|val|test] [--seed 0] [--trust-samples 4096]
              [--trust-neighbors 5] [--compare OTHER_STORE ...] [--block-size N] [--threads 1] [--quiet] --out DIR

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

HELP = "manifold embedding (Isomap / PCA / UMAP) of a store's features and its quality"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("embed", help=HELP, description=HELP + ".")
    p.add_argument("store", metavar="STORE", help="precompute store (zarr)")
    p.add_argument("--method", default="isomap", help="isomap (default), pca or umap (pip install 'pnp[umap]')")
    p.add_argument("--n-neighbors", type=int, default=40, help="neighbours of the Isomap / UMAP graph (default 40)")
    p.add_argument("--n-components", type=int, default=3, help="embedding dimension (default 3)")
    p.add_argument("--max-samples", type=int, default=4096, metavar="N",
                   help="fit on at most N random samples, transform the others (default 4096; Isomap's memory "
                        "grows as 3 x N^2 x 8 bytes)")
    p.add_argument("--split", default="all", help="samples embedded: all (default), train, val or test")
    p.add_argument("--seed", type=int, default=0, help="seed of the subsamples and solvers (default 0)")
    p.add_argument("--trust-samples", type=int, default=4096, metavar="N",
                   help="trustworthiness on at most N random samples (default 4096; memory about N^2 x 32 bytes)")
    p.add_argument("--trust-neighbors", type=int, default=5, help="neighbours of the trustworthiness (default 5)")
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
