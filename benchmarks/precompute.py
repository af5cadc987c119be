"""Benchmark of ``pnp precompute``: pipeline overhead, worker scaling, memory, store size.

Usage::

    python benchmarks/precompute.py [--spec data/demo.toml] [--samples 48] [--no-ftm]

Prints (all on the same first ``--samples`` samples of the spec, rounded up to whole chunks):

1. the bare library loop — ``pnp.jacobian.features_and_jacobian`` + ``metric`` +
   ``eigenvalues`` chunk by chunk, one process, one torch thread, no dask, no store — run in
   a child process with the same environment as the dask workers (malloc settings, 1 thread);
2. the pipeline with 1 worker (1 thread): end-to-end time (cluster start, store creation,
   writes) and steady-state time (first submit → last result), and their overhead over (1);
3. the pipeline with 2 workers (the machine's 2 cores);
4. the peak resident memory per worker (reported by the tasks), for runs covering different
   numbers of samples (it depends on the chunk, not on the grid size);
5. the bytes per sample in the store, per array;
6. for ``data/ftm_pnp.toml``: the measured CPU time per sample (one thread) and projections
   of the 10^5-sample precompute.

``--precision`` instead measures, side by side in one child process (one thread), the
per-sample cost of float64, mixed (float64 synth and tangents, float32 representation) and
float32 on the first ``--samples`` samples of ``data/ftm_pnp.toml`` and
``data/amchirp_pnp.toml``, the share of the synth and its ``jacfwd`` tangents, the relative
errors of J and M against float64, and the CPU-day projections of the full sets; it writes
``docs/results/bench_precision.json``.

The machine may be shared: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker_env() -> dict[str, str]:
    """The environment dask gives the embedded cluster's workers (see pnp.pipelines.precompute)."""
    from pnp.pipelines.precompute import WORKER_CONFIG

    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    for key, value in WORKER_CONFIG.items():
        if key.startswith("distributed.nanny.pre-spawn-environ."):
            env[key.rsplit(".", 1)[1]] = str(value)
    return env


def bare(spec_path: str, n: int, whole_chunks: bool = True) -> dict:
    """The bare library loop on the first ``n`` samples (rounded up to whole chunks unless
    ``whole_chunks`` is False), in this process."""
    import resource

    import numpy as np
    import torch

    from pnp.jacobian import eigenvalues, features_and_jacobian, metric
    from pnp.spec import load_spec

    torch.set_num_threads(1)
    spec = load_spec(spec_path)
    t0 = time.perf_counter()
    synth = spec.build_synth()
    rep = spec.build_representation(synth)
    param = spec.parametrization(synth)
    build = time.perf_counter() - t0
    c = spec.store["chunk_size"]
    n = min(spec.n_samples, -(-n // c) * c if whole_chunks else n)
    nu = spec.layout().nu[:n]
    t0, cpu0 = time.perf_counter(), time.thread_time()
    for a in range(0, n, c):
        x = torch.as_tensor(nu[a : a + c], dtype=spec.dtype)
        S, J = features_and_jacobian(synth, rep, x, batch_size=spec.compute["batch_size"], parametrization=param,
                                     jacobian=spec.store["jacobian"], representation_dtype=spec.representation_dtype)
        if J is not None:
            M = metric(J)
            E = eigenvalues(M)
            np.asarray(J.float()), np.asarray(E)
        np.asarray(S.float())
    seconds, cpu = time.perf_counter() - t0, time.thread_time() - cpu0
    return {"samples": n, "seconds": seconds, "cpu_seconds": cpu, "build_seconds": build,
            "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def run_bare(spec_path: str, n: int, whole_chunks: bool = True) -> dict:
    out = subprocess.run([sys.executable, __file__, "--bare", spec_path, str(n), str(int(whole_chunks))], env=worker_env(),
                         capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def array_bytes(path: Path, n_done: int, n_total: int) -> dict[str, float]:
    """Bytes per sample of every array (computed arrays per done sample)."""
    from pnp.store import COMPUTED

    out = {}
    for d in sorted(p for p in path.iterdir() if p.is_dir()):
        size = sum(f.stat().st_size for f in d.rglob("*") if f.is_file())
        out[d.name] = size / max(1, n_done if d.name in COMPUTED else n_total)
    return out


def raw_bytes(K: int, P: int) -> int:
    """Uncompressed bytes per sample: features, jacobian (float32), metric, eigvals, theta
    (float64), nu (float32), bin (int32), split, status (1 byte each)."""
    return 4 * K + 4 * K * P + 8 * P * P + 8 * P + 8 * P + 4 * P + 4 * P + 2


def s1_attrs(path: Path) -> dict:
    from pnp.store import open_group

    return dict(open_group(str(path)).attrs)


def fmt_bytes(n: float) -> str:
    from pnp.store import human_bytes

    return human_bytes(n)


def ftm_projection(ratio: float | None) -> None:
    """Measure one ftm_pnp sample (bare loop, one CPU thread) and project the 10^5 samples."""
    from pnp.spec import load_spec

    ftm = run_bare(str(ROOT / "data" / "ftm_pnp.toml"), 2, whole_chunks=False)
    per_sample = ftm["seconds"] / ftm["samples"]
    fspec = load_spec(ROOT / "data" / "ftm_pnp.toml")
    total_cpu = per_sample * fspec.n_samples
    K = int(math.prod(fspec.build_representation().output_shape))
    raw = raw_bytes(K, 5)
    print(f"ftm_pnp (10^5 samples, N = 2^16, K = {K}, P = 5, {fspec.compute['dtype']}): {per_sample:.1f} s/sample on one CPU "
          f"thread (mean of {ftm['samples']}), peak memory {fmt_bytes(ftm['maxrss'])} → {total_cpu / 86400:.1f} "
          f"CPU-days: {total_cpu / 2 / 86400:.1f} days on this 2-core machine, {total_cpu / 256 / 3600:.1f} h on "
          f"256 cores, {total_cpu / 1024 / 3600:.1f} h on 1024 cores (linear scaling, ~2 GB per task)")
    size = f"≈ {fmt_bytes(raw)}/sample uncompressed ({fmt_bytes(raw * fspec.n_samples)} in total)"
    if ratio:
        size += (f", ≈ {fmt_bytes(raw * ratio * fspec.n_samples)} at the demo's compression ratio "
                 f"({ratio:.2f})")
    print("  store: " + size)


PRECISION_SPECS = ("ftm_pnp", "amchirp_pnp")
PRECISIONS = (("float64", "float64", None), ("mixed", "float64", "float32"), ("float32", "float32", None))


def precision_child(spec_name: str, n: int) -> dict:
    """One thread, this process: per-sample seconds of each precision, synth + tangent seconds,
    and the relative errors of J and M (per sample, Frobenius) against float64."""
    import numpy as np
    import torch
    from torch.func import jacfwd, vmap

    from pnp.jacobian import features_and_jacobian, metric
    from pnp.spec import load_spec

    torch.set_num_threads(1)
    spec = load_spec(ROOT / "data" / f"{spec_name}.toml")
    synth = spec.build_synth()
    rep = spec.build_representation(synth)
    param = spec.parametrization(synth)
    nu = torch.as_tensor(spec.layout().nu[:n], dtype=torch.float64)
    features_and_jacobian(synth, rep, nu[:1], parametrization=param)  # warm-up (plans, allocator)
    out: dict = {"spec": spec_name, "samples": n, "n_total": spec.n_samples, "seconds_per_sample": {}, "errors": {}}
    results = {}
    for name, nu_dtype, rep_dtype in PRECISIONS:
        x = nu.to(getattr(torch, nu_dtype))
        t0 = time.perf_counter()
        S, J = features_and_jacobian(synth, rep, x, parametrization=param,
                                     representation_dtype=getattr(torch, rep_dtype) if rep_dtype else None)
        out["seconds_per_sample"][name] = (time.perf_counter() - t0) / n
        results[name] = (S.double(), J.double(), metric(J))

    def audio(v):
        y = synth(param.theta(v)[None], validate=False)[0]
        return y, y

    t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(n):
            vmap(jacfwd(audio, has_aux=True))(nu[i : i + 1])
    out["tangent_seconds_per_sample"] = (time.perf_counter() - t0) / n

    def rel(a, b):
        return ((a - b).flatten(1).norm(dim=1) / b.flatten(1).norm(dim=1)).numpy()

    S0, J0, M0 = results["float64"]
    for name in ("mixed", "float32"):
        S, J, M = results[name]
        out["errors"][name] = {
            key: {"max": float(np.max(e)), "median": float(np.median(e))}
            for key, e in (("S", rel(S, S0)), ("J", rel(J, J0)), ("M", rel(M, M0)))
        }
    return out


def precision(n: int) -> None:
    import datetime
    import platform

    from pnp.files import write_json

    report = {"command": f"python benchmarks/precompute.py --precision --samples {n}",
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                          "cpus": os.cpu_count(), "load_average_before": os.getloadavg()[0]},
              "threads": 1, "specs": {}}
    print(f"# precision benchmark: {n} samples per spec, one thread, load average {os.getloadavg()[0]:.2f}")
    for name in PRECISION_SPECS:
        proc = subprocess.run([sys.executable, __file__, "--precision-child", name, str(n)], env=worker_env(),
                              capture_output=True, text=True, cwd=ROOT, check=True)
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        t = r["seconds_per_sample"]
        print(f"{name} ({r['n_total']} samples): s/sample float64 {t['float64']:.2f}, mixed {t['mixed']:.2f} "
              f"(x{t['float64'] / t['mixed']:.2f}), float32 {t['float32']:.2f}; synth + jacfwd tangents "
              f"{r['tangent_seconds_per_sample']:.3f} s/sample ({100 * r['tangent_seconds_per_sample'] / t['mixed']:.1f} % of mixed)")
        for p, e in r["errors"].items():
            print(f"  {p} vs float64 (relative, per sample; max / median over {n}): "
                  + ", ".join(f"{k} {v['max']:.1e} / {v['median']:.1e}" for k, v in e.items()))
        r["cpu_days"] = {p: t[p] * r["n_total"] / 86400 for p in t}
        print(f"  full set: {r['cpu_days']['float64']:.1f} CPU-days float64, {r['cpu_days']['mixed']:.1f} mixed "
              f"({r['cpu_days']['mixed'] * 1440 / 256:.2g} min on 256 cores)")
        report["specs"][name] = r
    report["machine"]["load_average_after"] = os.getloadavg()[0]
    path = ROOT / "docs" / "results" / "bench_precision.json"
    write_json(path, report)
    print(f"# wrote {path.relative_to(ROOT)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=str(ROOT / "data" / "demo.toml"))
    ap.add_argument("--samples", type=int, default=48)
    ap.add_argument("--no-ftm", action="store_true", help="skip the ftm_pnp per-sample measurement")
    ap.add_argument("--repeat", type=int, default=2, help="bare / 1-worker repetitions, best kept (default 2)")
    ap.add_argument("--bare", nargs=3, metavar=("SPEC", "N", "WHOLE_CHUNKS"), help=argparse.SUPPRESS)
    ap.add_argument("--ftm-only", action="store_true", help="only the ftm_pnp per-sample measurement")
    ap.add_argument("--precision", action="store_true",
                    help="float64 vs mixed vs float32 on ftm_pnp and amchirp_pnp (first --samples samples)")
    ap.add_argument("--precision-child", nargs=2, metavar=("SPEC", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.precision_child:
        print(json.dumps(precision_child(args.precision_child[0], int(args.precision_child[1]))))
        return
    if args.precision:
        precision(args.samples)
        return
    if args.bare:
        print(json.dumps(bare(args.bare[0], int(args.bare[1]), bool(int(args.bare[2])))))
        return
    if args.ftm_only:
        ftm_projection(None)
        return

    from pnp.pipelines.precompute import precompute
    from pnp.spec import load_spec

    spec = load_spec(args.spec)
    c = spec.store["chunk_size"]
    n = min(spec.n_samples, -(-args.samples // c) * c)
    print(f"# pnp precompute benchmark — spec {spec.name} ({args.spec}), {n} samples ({n // c} chunks of {c})")
    print(f"# load average before: {os.getloadavg()[0]:.2f} (cpus: {os.cpu_count()})")
    with tempfile.TemporaryDirectory(prefix="pnp-bench-") as tmp:
        # bare loop and 1-worker pipeline interleaved, best of --repeat (the machine may be shared)
        bares, ones = [], []
        for i in range(args.repeat):
            bares.append(run_bare(args.spec, n))
            ones.append(precompute(args.spec, Path(tmp) / f"w1-{i}.zarr", workers=1, limit=n, progress=False,
                                   out=None))
        t = min(bares, key=lambda r: r["seconds"])
        cpu_bare = min(b["cpu_seconds"] for b in bares)
        cpu_pipe = min(o.task_cpu_seconds for o in ones)
        r_bare = t["samples"] / t["seconds"]
        runs = ", ".join(f"{b['seconds']:.1f}" for b in bares)
        print(f"bare library loop (1 process, 1 thread): {t['seconds']:.1f} s, {r_bare:.3f} samples/s "
              f"({t['seconds'] / t['samples']:.2f} s/sample; best of {len(bares)}: {runs} s); "
              f"CPU {cpu_bare / t['samples']:.2f} s/sample; build {t['build_seconds']:.1f} s; "
              f"peak memory {fmt_bytes(t['maxrss'])}")
        s1 = max(ones, key=lambda r: r.steady_throughput or 0)
        results = {1: (s1, Path(tmp) / f"w1-{ones.index(s1)}.zarr")}
        path = Path(tmp) / "w2.zarr"
        results[2] = (precompute(args.spec, path, workers=2, limit=n, progress=False, out=None), path)
        for workers in (1, 2):
            s = results[workers][0]
            steady = s.steady_throughput or float("nan")
            print(f"pipeline, {workers} worker(s) x 1 thread: end-to-end {s.seconds:.1f} s "
                  f"({s.throughput:.3f} samples/s, cluster start and store creation included); "
                  f"steady state {steady:.3f} samples/s ({1 / steady:.2f} s/sample; after the first chunk); "
                  f"in tasks {s.task_seconds / s.computed:.2f} s/sample, CPU {s.task_cpu_seconds / s.computed:.2f} s/sample; "
                  f"peak worker memory {fmt_bytes(s.peak_worker_memory or 0)}")
            if workers == 1:
                print(f"  overhead vs the bare loop: steady state {100 * (r_bare / steady - 1):+.1f} % "
                      f"(runs: {', '.join(f'{100 * (r_bare / o.steady_throughput - 1):+.1f}' for o in ones)} %), "
                      f"CPU time {100 * (cpu_pipe / cpu_bare - 1):+.1f} %, "
                      f"end-to-end {100 * (s.seconds / t['seconds'] - 1):+.1f} % "
                      f"(fixed start-up {s.seconds - s.computed / steady:.1f} s)")
        s1, s2 = results[1][0], results[2][0]
        print(f"  2 workers vs 1: x{(s2.steady_throughput or 0) / (s1.steady_throughput or 1):.2f} (steady state), "
              f"x{s2.throughput / s1.throughput:.2f} (end-to-end)")
        # memory vs number of samples: a run over a third of the samples
        small = max(c, (n // 3) // c * c)
        s3 = precompute(args.spec, Path(tmp) / "small.zarr", workers=1, limit=small, progress=False, out=None)
        print(f"peak worker memory: {fmt_bytes(s3.peak_worker_memory or 0)} after {s3.computed} samples, "
              f"{fmt_bytes(s1.peak_worker_memory or 0)} after {s1.computed} samples (1 worker; chunk of {c})")
        per = array_bytes(results[1][1], s1.done, s1.n_samples)
        total = sum(per.values())
        print(f"store bytes per sample: {fmt_bytes(total)} — " + ", ".join(f"{k} {fmt_bytes(v)}" for k, v in per.items()))
        K, P = int(s1_attrs(results[1][1])["n_coefs"]), spec.parametrization().dim
        raw = raw_bytes(K, P)
        print(f"  uncompressed {fmt_bytes(raw)}/sample: compression ratio {total / raw:.2f}")
        if not args.no_ftm:
            ftm_projection(total / raw)
    print(f"# load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
