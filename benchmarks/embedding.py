"""Benchmark of :class:`pnp.geometry.Embedding` against scikit-learn on the same data: Isomap
(pnp's blocked exact k-NN graph fed to scikit-learn's ``Isomap`` vs ``Isomap`` on the rows) and
PCA (pnp's blocked covariance / Gram eigensolver vs ``PCA``'s solvers).

Usage::

    python benchmarks/embedding.py [--isomap-samples 2048] [--features 3637] [--threads 1] [--repeats 2]
                                   [--json docs/results/bench_embedding.json]

Data: the smooth 3-parameter manifold of ``benchmarks/knn.py`` (float32).  PCA runs on two
shapes, K ≤ n (pnp: covariance) and K > n (pnp: Gram matrix), with scikit-learn given the rows in
float64 (it computes in the rows' dtype: float32 rows give float32 results), and Isomap on float32
and float64 rows.  Prints the best of ``--repeats`` wall times of one fit + transform of the fitted
rows and the largest
coordinate difference to pnp's after aligning each axis' sign (relative to the largest
coordinate).  Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


REPEATS = 2


def timed(fn):
    """(result as float64, best of REPEATS wall times)."""
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        out = np.asarray(fn(), dtype=np.float64)
        times.append(time.perf_counter() - t0)
    return out, min(times)


def difference(a: np.ndarray, ref: np.ndarray) -> float:
    """max |a − ref| / max |ref| after flipping each column of a to ref's sign."""
    signs = np.sign(np.sum(a * ref, axis=0))
    return float(np.max(np.abs(a * signs - ref)) / np.max(np.abs(ref)))


def isomap_case(n: int, K: int) -> dict:
    from knn import manifold
    from sklearn.manifold import Isomap

    from pnp.geometry import Embedding

    X = manifold(n, K, 1)
    ours, t_ours = timed(lambda: Embedding("isomap", n_neighbors=40, n_components=3).fit_transform(X))
    out = {"samples": n, "features": K, "pnp_seconds": t_ours, "sklearn_Isomap": {}}
    for dtype in ("float32", "float64"):  # scikit-learn computes in the rows' dtype; pnp in float64
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            ref, t = timed(lambda d=dtype: Isomap(n_neighbors=40, n_components=3).fit_transform(X.astype(d)))
        out["sklearn_Isomap"][dtype] = {"seconds": t, "max_relative_coordinate_difference": difference(ref, ours)}
    return out


def pca_case(n: int, K: int) -> dict:
    from knn import manifold
    from sklearn.decomposition import PCA

    from pnp.geometry import Embedding

    X = manifold(n, K, 2)
    ours, t_ours = timed(lambda: Embedding("pca", n_components=3).fit_transform(X))
    out = {"samples": n, "features": K, "pnp_seconds": t_ours, "sklearn": {}}
    X64 = X.astype(np.float64)
    solvers = ["full", "arpack", "randomized"] + (["covariance_eigh"] if K <= n else [])
    for solver in solvers:
        ref, t = timed(lambda s=solver: PCA(3, svd_solver=s, random_state=0).fit_transform(X64))
        out["sklearn"][solver] = {"seconds": t, "max_relative_coordinate_difference": difference(ref, ours)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--isomap-samples", type=int, default=2048)
    ap.add_argument("--features", type=int, default=3637)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    global REPEATS
    REPEATS = args.repeats
    from threadpoolctl import threadpool_limits

    load = os.getloadavg()[0]
    print(f"# embeddings vs scikit-learn, {args.threads} thread(s), load average {load:.2f}")
    with threadpool_limits(args.threads):
        iso = isomap_case(args.isomap_samples, args.features)
        print(f"isomap {iso['samples']} x {iso['features']}: pnp {iso['pnp_seconds']:.2f} s; scikit-learn Isomap on "
              + ", ".join(f"{d} rows {r['seconds']:.2f} s (difference {r['max_relative_coordinate_difference']:.1e})"
                          for d, r in iso["sklearn_Isomap"].items()))
        pcas = [pca_case(4096, 1024), pca_case(1024, 4096)]
        for p in pcas:
            print(f"pca {p['samples']} x {p['features']}: pnp {p['pnp_seconds']:.2f} s; scikit-learn "
                  + ", ".join(f"{s} {r['seconds']:.2f} s (difference {r['max_relative_coordinate_difference']:.1e})"
                              for s, r in p["sklearn"].items()))
    if args.json:
        from _report import header

        from pnp.files import write_json

        report = header("embedding.py", argv)
        report["machine"]["load_average_before"] = load
        write_json(args.json, {
            **report,
            "threads": args.threads, "repeats": args.repeats, "isomap": iso, "pca": {f"{p['samples']}x{p['features']}": p for p in pcas}})
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
