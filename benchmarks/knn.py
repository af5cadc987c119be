"""Benchmark of the k-NN search backends on the same data: pnp's exact blocked search (the
default), the optional faiss backend (faiss's flat index re-ranked in float64), faiss's flat index
alone, and scikit-learn's brute force.

Usage::

    python benchmarks/knn.py [--train 16384] [--queries 2048] [--features 3637] [--k 5] [--threads 1]
                             [--repeats 2] [--json docs/results/bench_knn_backends.json]

The data are a smooth 3-parameter manifold in K dimensions (float32 rows cos(ν W + b), ν uniform
in [-1, 1]³; K = 3,637 is PNP's FTM JTFS size).  Prints, per backend, the best of ``--repeats``
wall times of one search of every query against the train set, the fraction of queries whose k
neighbours (in order) are the exact search's, and the largest distance difference.  Nothing is
asserted.  faiss is skipped (reported as missing) when it is not installed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def manifold(n: int, K: int, seed: int) -> np.ndarray:
    """(n, K) float32 rows cos(ν W + b) of ν uniform in [-1, 1]³ (W, b from seed 0)."""
    g = np.random.default_rng(0)
    W, b = g.standard_normal((3, K)) * 2.0, g.uniform(0, 2 * np.pi, K)
    nu = np.random.default_rng(seed).uniform(-1, 1, (n, 3))
    return np.cos(nu @ W + b).astype(np.float32)


def backends(k: int):
    """name → search(queries, train) returning (dist (q, k), ind (q, k)); None when not installed."""
    from sklearn.neighbors import NearestNeighbors

    from pnp.geometry.search import faiss_kneighbors, kneighbors

    def faiss_flat(Q, X):
        import faiss

        index = faiss.IndexFlatL2(X.shape[1])
        index.add(X)
        d2, ind = index.search(Q, k)
        return np.sqrt(np.maximum(d2, 0).astype(np.float64)), ind

    def sklearn_brute(Q, X):
        return NearestNeighbors(n_neighbors=k, algorithm="brute").fit(X).kneighbors(Q)

    try:
        import faiss  # noqa: F401
        have_faiss = True
    except ImportError:
        have_faiss = False
    return {
        "exact (pnp, default)": lambda Q, X: kneighbors(Q, X, k),
        "faiss (pnp backend, re-ranked in float64)": (lambda Q, X: faiss_kneighbors(Q, X, k)) if have_faiss else None,
        "faiss IndexFlatL2 alone (float32)": faiss_flat if have_faiss else None,
        "scikit-learn brute force": sklearn_brute,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=16384)
    ap.add_argument("--queries", type=int, default=2048)
    ap.add_argument("--features", type=int, default=3637)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    X, Q = manifold(args.train, args.features, 1), manifold(args.queries, args.features, 2)
    load = os.getloadavg()[0]
    print(f"# k-NN backends: {args.queries} queries x {args.train} train, K = {args.features}, k = {args.k}, "
          f"{args.threads} thread(s), best of {args.repeats}, load average {load:.2f}")
    results: dict[str, dict] = {}
    ref = None
    with threadpool_limits(args.threads):  # BLAS and OpenMP (faiss) alike
        for name, search in backends(args.k).items():
            if search is None:
                results[name] = {"installed": False}
                print(f"{name}: not installed (pip install 'pnp[faiss]')")
                continue
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                dist, ind = search(Q, X)
                times.append(time.perf_counter() - t0)
            ref = (dist, ind) if ref is None else ref
            same = float(np.mean(np.all(ind == ref[1], axis=1)))
            results[name] = {"installed": True, "seconds": min(times), "same_neighbours_fraction": same,
                             "max_abs_distance_difference": float(np.max(np.abs(dist - ref[0])))}
            r = results[name]
            print(f"{name}: {r['seconds']:.2f} s, same neighbours as exact for {100 * same:.2f} % of queries, "
                  f"max |distance difference| {r['max_abs_distance_difference']:.1e}")
    exact = results["exact (pnp, default)"]["seconds"]
    for r in results.values():
        if r.get("installed"):
            r["speedup_vs_exact"] = exact / r["seconds"]
    if args.json:
        from _report import header

        from pnp.files import write_json

        report = header("knn.py", argv)
        report["machine"]["load_average_before"] = load
        write_json(args.json, {
            **report,
            "train": args.train, "queries": args.queries, "features": args.features, "k": args.k,
            "threads": args.threads, "repeats": args.repeats, "backends": results})
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
