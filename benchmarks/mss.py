"""Benchmark of the multi-scale spectrogram's STFT: pnp's (``torch.stft``) against gathering the
frames with an index tensor + ``rfft`` (pnp's earlier implementation, still used under a plain
``vmap``), in the autodiff modes the sound-matching experiments use.

Usage::

    python benchmarks/mss.py [--n 8192] [--batch 8] [--repeats 5] [--threads 1] [--json docs/results/bench_mss.json]

Prints, for each implementation, the median seconds of a forward pass, ``vmap(grad)`` (per-sound
gradients of the MSS distance) and ``jacfwd`` (forward-mode Jacobian of the features with respect
to 8 synth-like parameters), whether torch warned that ``vmap`` fell back to a per-sample loop,
and the largest difference between the two implementations' spectrograms.  Nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8192)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    import torch

    from pnp.scattering import mss as pmss
    from pnp.scattering.jtfs.modulus import modulus

    torch.set_num_threads(args.threads)

    class GatheredFrames(pmss.MultiScaleSpectrogram):
        """The earlier implementation: frames gathered by index + rfft, everywhere."""

        def spectrograms(self, x):
            return [modulus(pmss._gathered_stft(x, w, h, torch.hann_window(w, periodic=True, dtype=x.dtype)))
                    for w, h in zip(self.window_sizes, self.hops)]

    impls = {"torch.stft (pnp)": pmss.MultiScaleSpectrogram(), "gathered frames+rfft": GatheredFrames()}
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, args.n, generator=g)
    y = torch.randn(args.batch, args.n, generator=g)
    basis = torch.randn(8, args.n, generator=g) / args.n ** 0.5
    a, b = impls.values()
    diff = max(float((p - q).abs().max()) for p, q in zip(a.spectrograms(x), b.spectrograms(x)))

    def timed(fn):
        fn()
        out = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
        return statistics.median(out)

    from _report import header

    report = {**header("mss.py", argv), "torch": torch.__version__, "n": args.n, "batch": args.batch,
              "threads": args.threads, "max_abs_difference": diff, "impls": {}}
    print(f"torch {torch.__version__}, N = {args.n}, batch {args.batch}, {args.threads} thread(s); "
          f"max |difference| between the implementations: {diff:.2e}")
    print(f"  {'implementation':<20} {'forward':>9} {'vmap(grad)':>11} {'jacfwd':>9}  vmap fallback")
    for name, mss in impls.items():
        def grad_one(xi, yi, m=mss):
            return torch.func.grad(lambda u: m.distance(u[None], yi[None]).sum())(xi)

        def jac(m=mss):
            return torch.func.jacfwd(lambda c: m(x[:1] + c @ basis))(torch.zeros(8))

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t_vg = timed(lambda g1=grad_one: torch.func.vmap(g1)(x, y))
            t_jf = timed(jac)
        fallback = any("batching rule" in str(w.message) for w in caught)
        t_fw = timed(lambda m=mss: m(x))
        report["impls"][name] = {"forward_s": t_fw, "vmap_grad_s": t_vg, "jacfwd_s": t_jf, "vmap_fallback": fallback}
        print(f"  {name:<20} {t_fw:9.4f} {t_vg:11.4f} {t_jf:9.4f}  {'yes' if fallback else 'no'}")
    if args.json:
        from pnp.files import write_json

        write_json(args.json, report)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
