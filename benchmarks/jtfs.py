"""Speed and memory of pnp's JTFS on the PNP configuration (prints figures, asserts nothing).

    python benchmarks/jtfs.py [--device cpu|cuda] [--threads 2] [--no-kymatio] [--quick]

Measures, for ``J=13, J_fr=3, Q=(12, 1), Q_fr=1, F=2, T='global', shape=(2**16,)``:

* per-sample forward time at batch 1 and batch 8;
* per-sample Jacobian time (forward mode over the 5 normalised parameters of the ``ftm`` synth,
  through synth + JTFS + log1p(|S|/1e-3), via ``pnp.jacobian.features_and_jacobian``: synth
  tangents by ``jacfwd``, then the JTFS's dual-batch JVP) at batch 1 and 8, and its ratio to our
  forward; and, for reference, plain ``torch.func.jacfwd`` through the whole chain at batch 1;
* peak memory of each case (a fresh subprocess per case: peak RSS on CPU,
  ``torch.cuda.max_memory_allocated`` on CUDA);
* kymatio 0.4's forward on the same input and the speed-up, when kymatio 0.4 can be imported
  (dev-only: from the ``scrapl-loss`` package's bundled copy, or a ``kymatio>=0.4`` install).

``--quick`` uses a small configuration (J=10, N=2**13) to check the script itself.

Every case runs in its own process, after one warm-up call, and reports the fastest of
``--repeats`` calls (the usual estimate on a shared machine, where slow calls are noise from
other tenants). The two ratios of the goals are taken within one process, with the two
computations timed alternately (kymatio / pnp forward; Jacobian / forward), so that a slow
period of the machine affects both sides alike. Each process first applies :func:`pnp.allocator.tune_malloc`, as pnp's own
commands do (kymatio's process too, so the comparison stays fair); ``--default-malloc`` measures
with glibc's default allocator settings instead.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

PNP_CONFIG = dict(J=13, J_fr=3, Q=(12, 1), Q_fr=1, F=2, T="global", shape=(2**16,))
QUICK_CONFIG = dict(J=10, J_fr=3, Q=(12, 1), Q_fr=1, F=2, T="global", shape=(2**13,))


def _peak_memory_bytes(device: str) -> int:
    import resource

    import torch

    if device == "cuda":
        return int(torch.cuda.max_memory_allocated())
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _import_kymatio04():
    """kymatio 0.4's torch JTFS class, or None (never a runtime dependency of pnp)."""
    try:
        import kymatio

        if tuple(int(p) for p in kymatio.__version__.split(".")[:2]) >= (0, 4):
            from kymatio.scattering1d.frontend.torch_frontend import TimeFrequencyScatteringTorch

            return TimeFrequencyScatteringTorch
    except Exception:
        pass
    try:
        import importlib.util

        spec = importlib.util.find_spec("scrapl")
        if spec is None or not spec.submodule_search_locations:
            return None
        bundled = os.path.join(list(spec.submodule_search_locations)[0], "kymatio")
        for name in [m for m in sys.modules if m == "kymatio" or m.startswith("kymatio.")]:
            del sys.modules[name]
        sys.path.insert(0, bundled)
        from kymatio.scattering1d.frontend.torch_frontend import TimeFrequencyScatteringTorch

        return TimeFrequencyScatteringTorch
    except Exception:
        return None


def _fastest(fn, repeats: int, device: str) -> tuple[float, object]:
    """Seconds of the fastest of ``repeats`` calls of ``fn`` (after none: warm up first), and
    the last result."""
    best, out = float("inf"), None
    for _ in range(max(1, repeats)):
        _sync(device)
        t0 = time.perf_counter()
        out = fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best, out


def run_case(case: str, batch: int, device: str, threads: int, quick: bool, repeats: int,
             default_malloc: bool = False) -> dict:
    """One measurement, meant to run in its own process (clean peak-memory figure)."""
    import torch

    from pnp.allocator import tune_malloc

    if not default_malloc:
        tune_malloc()

    torch.set_num_threads(threads)
    config = QUICK_CONFIG if quick else PNP_CONFIG
    N = config["shape"][0]
    gen = torch.Generator().manual_seed(0)
    if case == "kymatio":  # kymatio 0.4 and pnp, interleaved call by call (same machine state)
        import pnp.scattering

        ours = pnp.scattering.get("jtfs", **config)  # built before kymatio 0.4 replaces kymatio 0.3
        cls = _import_kymatio04()
        if cls is None:
            return dict(case=case, available=False)
        jtfs = cls(**config, format="time").to(device)
        x = torch.randn(batch, N, generator=gen).to(device)
        jtfs(x)  # warm-up, as for pnp
        with torch.no_grad():
            ours(x)
            theirs, mine = float("inf"), float("inf")
            for _ in range(max(1, repeats)):
                seconds, S = _fastest(lambda: jtfs(x), 1, device)
                theirs = min(theirs, seconds)
                mine = min(mine, _fastest(lambda: ours(x), 3, device)[0])
        return dict(case=case, batch=batch, seconds_per_sample=theirs / batch, ours_seconds_per_sample=mine / batch,
                    shape=list(S.shape), peak_bytes=_peak_memory_bytes(device), available=True)

    import pnp.scattering
    import pnp.synth

    rep = pnp.scattering.get("jtfs", **config, log1p_c=1e-3)
    if case == "forward":
        x = torch.randn(batch, N, generator=gen).to(device)
        rep(x)  # warm-up (builds the per-device operator cache)
        with torch.no_grad():
            seconds, S = _fastest(lambda: rep(x), repeats, device)
        return dict(case=case, batch=batch, seconds_per_sample=seconds / batch, shape=list(S.shape),
                    peak_bytes=_peak_memory_bytes(device))
    if case in ("jacobian", "jacfwd"):
        from pnp.jacobian import Parametrization, features_and_jacobian

        synth = pnp.synth.get("ftm", n_samples=N) if quick else pnp.synth.get("ftm")
        theta = torch.as_tensor(synth.space.uniform(batch, seed=0).theta, dtype=torch.float32, device=device)
        nu = synth.space.normalize(theta)
        if case == "jacobian":  # pnp's path: synth tangents, then the JTFS's dual-batch JVP

            def jacobian():
                return features_and_jacobian(synth, rep, nu)
        else:  # reference: torch.func.jacfwd through synth + JTFS + log1p, sample by sample
            param = Parametrization(synth.space)

            def features(v):
                return rep.features(synth(param.theta(v)[None], validate=False))[0]

            def jacobian():
                J = torch.stack([torch.func.jacfwd(features)(v) for v in nu])
                return None, J

        x = synth(theta)
        jacobian()  # warm-up
        with torch.no_grad():
            rep(x)
        seconds, forward = float("inf"), float("inf")
        for _ in range(max(1, repeats)):  # forward interleaved with the Jacobian (same machine state)
            t, (S, Jac) = _fastest(jacobian, 1, device)
            seconds = min(seconds, t)
            with torch.no_grad():
                forward = min(forward, _fastest(lambda: rep(x), 1, device)[0])
        return dict(case=case, batch=batch, seconds_per_sample=seconds / batch, forward_seconds_per_sample=forward / batch,
                    shape=list(Jac.shape),
                    finite=bool(torch.isfinite(Jac).all()), peak_bytes=_peak_memory_bytes(device))
    raise ValueError(f"unknown case {case!r}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-kymatio", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--default-malloc", action="store_true", help="keep glibc's default allocator settings")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:  # child process
        print(json.dumps(run_case(args.case, args.batch, args.device, args.threads, args.quick, args.repeats,
                                  args.default_malloc)))
        return 0

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available on this machine", file=sys.stderr)
        return 2
    config = QUICK_CONFIG if args.quick else PNP_CONFIG
    print(f"pnp JTFS benchmark  device={args.device}  threads={args.threads}  torch={torch.__version__}  "
          f"malloc={'default' if args.default_malloc else 'tuned'}  fastest of {args.repeats}")
    print(f"config: {config}")
    plan = [("forward", 1), ("forward", 8), ("jacobian", 1), ("jacobian", 8), ("jacfwd", 1)]
    if not args.no_kymatio:
        plan.append(("kymatio", 1))
    results = {}
    for case, batch in plan:
        cmd = [sys.executable, __file__, "--case", case, "--batch", str(batch), "--device", args.device,
               "--threads", str(args.threads), "--repeats", str(args.repeats)] + (["--quick"] if args.quick else []) + (
            ["--default-malloc"] if args.default_malloc else [])
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{case} b{batch}: failed\n{out.stderr[-2000:]}")
            continue
        res = json.loads(out.stdout.strip().splitlines()[-1])
        results[(case, batch)] = res
        if not res.get("available", True):
            print(f"{case:>9} b{batch}: kymatio 0.4 not importable, skipped")
            continue
        print(f"{case:>9} b{batch}: {res['seconds_per_sample']:8.3f} s/sample   "
              f"peak {res['peak_bytes'] / 2**30:6.2f} GiB   output {res['shape']}", flush=True)
    for b in (1, 8):
        if ("jacobian", b) in results:
            res = results[("jacobian", b)]
            ratio = res["seconds_per_sample"] / res["forward_seconds_per_sample"]
            print(f"Jacobian / forward at batch {b}: {ratio:.2f}x  (goal <= 4x; forward "
                  f"{res['forward_seconds_per_sample']:.3f} s/sample, timed interleaved with the Jacobian)")
    if ("jacfwd", 1) in results and ("jacobian", 1) in results:
        gain = results[("jacfwd", 1)]["seconds_per_sample"] / results[("jacobian", 1)]["seconds_per_sample"]
        print(f"plain jacfwd through synth + JTFS / pnp's Jacobian at batch 1: {gain:.2f}x")
    kym = results.get(("kymatio", 1))
    if kym and kym.get("available"):
        print(f"kymatio 0.4 forward / pnp forward at batch 1: {kym['seconds_per_sample'] / kym['ours_seconds_per_sample']:.1f}x"
              f"  (goal >= 20x; pnp {kym['ours_seconds_per_sample']:.3f} s/sample, timed interleaved with kymatio)")
    if ("jacobian", 8) in results:
        print(f"peak memory of the batch-8 Jacobian: {results[('jacobian', 8)]['peak_bytes'] / 2**30:.2f} GiB (goal <= 6 GB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
