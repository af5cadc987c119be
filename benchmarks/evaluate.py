"""Time and peak memory of the geometry evaluations (k-NN, embedding), in memory vs chunked.

Writes a synthetic store (FTM parameter space, random grid of ``--samples`` samples split
82 / 8 / 10 % like PNP's 10⁵-sample set, ``--features`` float32 coefficients per sample — by
default K = 3637, the PNP JTFS — a smooth function of ν; chunks of 64 samples, Blosc-zstd) to a
temporary directory, then runs every case in a fresh child process (so that its peak RSS is its
own) and prints a table:

* ``knn``: k = 5 neighbours of every test sample among the train samples (exact, float64);
* ``embed``: Isomap (40 neighbours, 3 components) fitted on ``--max-samples`` random samples,
  every other sample transformed;

each *in memory* (every feature read into a numpy array first, as a user without dask would) and
*chunked* (the store's dask arrays read by blocks).  Both must give identical results (checked).
Peak memory is the child's peak RSS (``ru_maxrss``) and its increase over the RSS after imports.

    python benchmarks/evaluate.py                       # 20,000 samples (~2 min here)
    python benchmarks/evaluate.py --samples 100000      # the PNP size (~20 min here)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

CASES = ("knn-memory", "knn-chunked", "embed-memory", "embed-chunked")
SPEC = """
name = "bench_geometry"
[synth]
name = "ftm"
[grid]
kind = "random"
size = {n}
seed = 0
[split]
rule = "random"
fractions = [0.8224, 0.0776, 0.1]
seed = 0
[representation]
name = "mss"
[features]
compression = "log1p"
[store]
chunk_size = 64
jacobian = false
"""


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make_store(path: str, n: int, K: int, seed: int = 0) -> float:
    """Write the synthetic store; returns the seconds it took."""
    from tqdm.auto import tqdm

    from pnp import store as pstore
    from pnp.spec import loads_spec

    t0 = time.perf_counter()
    spec = loads_spec(SPEC.format(n=n), source="benchmarks/evaluate.py")
    synth = spec.build_synth()
    param = spec.parametrization(synth)
    attrs = pstore.provenance(spec, synth, spec.build_representation(synth), param, K, "cpu")
    group = pstore.create_store(path, spec, attrs, K)
    nu_all = spec.layout().nu
    rng = np.random.default_rng(seed)
    W1 = rng.standard_normal((nu_all.shape[1], 24))
    W2 = rng.standard_normal((24, K)) / 2.0
    offset = rng.uniform(2.0, 6.0, K)
    ranges = pstore.chunk_ranges(n, 64)
    for c, (a, b) in enumerate(tqdm(ranges, desc="synthetic store", unit="chunk")):
        feats = np.tanh(nu_all[a:b] @ W1) @ W2 + offset  # smooth in ν, like log1p(|S|/c) values
        pstore.write_chunk(group, c, {"features": feats.astype(np.float32)}, np.ones(b - a, np.uint8))
    return time.perf_counter() - t0


def child(case: str, store: str, out: str, k: int, max_samples: int, threads: int) -> dict:
    """Run one case in this process; writes its result array to ``out`` and returns figures."""
    from threadpoolctl import threadpool_limits

    from pnp.geometry import Embedding, KNNRegressor
    from pnp.store import open_store

    sd = open_store(store)
    sd.theta(), sd.nu()
    base = rss_mb()
    t0 = time.perf_counter()
    with threadpool_limits(limits=threads):
        if case.startswith("knn"):
            tr, te = sd.indices("train"), sd.indices("test")
            Xtr, Xte = sd.features(tr), sd.features(te)
            if case.endswith("memory"):
                Xtr, Xte = np.asarray(Xtr), np.asarray(Xte)
            dist, ind = KNNRegressor(k=k).fit(Xtr, sd.nu(tr)).kneighbors(Xte)
            result, n_query, n_ref = ind, te.size, tr.size
        else:
            X = sd.features()
            if case.endswith("memory"):
                X = np.asarray(X)
            emb = Embedding("isomap", n_neighbors=40, n_components=3, max_samples=max_samples)
            result, n_query, n_ref = emb.fit_transform(X), X.shape[0], emb.fit_rows_.size
    seconds = time.perf_counter() - t0
    np.save(out, result)
    return {"case": case, "seconds": seconds, "peak_rss_mb": rss_mb(), "base_rss_mb": base, "n_query": int(n_query),
            "n_ref": int(n_ref)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=20000, help="samples in the synthetic store (default 20000)")
    p.add_argument("--features", type=int, default=3637, help="coefficients per sample (default 3637, PNP's JTFS)")
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--max-samples", type=int, default=2048, help="samples the Isomap is fitted on (default 2048)")
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}")
    p.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    p.add_argument("--dir", default=None, help="where to write the store (default: a temporary directory)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--store", default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.store, args.out, args.k, args.max_samples, args.threads)))
        return 0
    cases = args.cases.split(",")
    unknown = sorted(set(cases) - set(CASES))
    if unknown or args.samples < 100 or args.features < 1:
        p.error(f"--cases from {CASES}; --samples >= 100; --features >= 1 (unknown cases: {unknown})")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        store = os.path.join(tmp, "bench.zarr")
        t_store = make_store(store, args.samples, args.features)
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(store) for f in fs)
        print(f"synthetic store: {args.samples} samples x {args.features} float32 features "
              f"({args.samples * args.features * 4 / 1e9:.2f} GB raw, {size / 1e9:.2f} GB on disk), written in "
              f"{t_store:.1f} s", flush=True)
        rows = []
        for case in cases:
            out = os.path.join(tmp, f"{case}.npy")
            cmd = [sys.executable, os.path.abspath(__file__), "--child", case, "--store", store, "--out", out,
                   "--k", str(args.k), "--max-samples", str(args.max_samples), "--threads", str(args.threads)]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                print(res.stderr, file=sys.stderr)
                return 1
            r = json.loads(res.stdout.strip().splitlines()[-1])
            rows.append(r)
            print(f"{case}: {r['seconds']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB "
                  f"(+{r['peak_rss_mb'] - r['base_rss_mb']:.0f} MB over {r['base_rss_mb']:.0f} MB after imports)",
                  flush=True)
        same = {}
        for kind in ("knn", "embed"):
            files = [os.path.join(tmp, f"{kind}-{m}.npy") for m in ("memory", "chunked")]
            if all(os.path.exists(f) for f in files):
                same[kind] = bool(np.array_equal(np.load(files[0]), np.load(files[1])))
    print()
    print("| case | work | time (s) | peak RSS (MB) | over imports (MB) |")
    print("|---|---|---|---|---|")
    for r in rows:
        kind = r["case"].split("-")[0]
        work = (f"{r['n_query']} queries x {r['n_ref']} train, k={args.k}" if kind == "knn" else
                f"{r['n_query']} samples, Isomap fitted on {r['n_ref']}")
        print(f"| {r['case']} | {work} | {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} | "
              f"{r['peak_rss_mb'] - r['base_rss_mb']:.0f} |")
    for kind, ok in same.items():
        print(f"{kind}: in-memory and chunked results identical: {ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
