"""Time the loss landscape with gradients (prints figures, asserts nothing).

    python benchmarks/landscape.py [--loss jtfs] [--preset fast|paper] [--grid 20] [--threads 1]
                                   [--batch 8] [--points N] [--synth amchirp]

Times ``pnp.matching.compute_landscape`` (synth + representation + one reverse pass per batch
of grid points) and prints the total and per-point time.  ``--points N`` times only the first N
grid points and extrapolates to the full grid (quick estimate, e.g. for ``--preset paper``).
Also prints the per-point cost with and without the JTFS row pruning of ``pnp.matching``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synth", default="amchirp")
    ap.add_argument("--loss", default="jtfs")
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--grid", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--points", type=int, default=None, help="time only this many grid points and extrapolate")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from pnp.matching import compute_landscape, default_target, make_problem
    from pnp.matching.landscape import grid_axes

    problem = make_problem(args.synth, args.loss, preset=args.preset)
    print(f"{args.synth} {args.loss} preset={args.preset}: {problem.loss.config()}")
    print(f"threads={args.threads} batch={args.batch}")
    n = args.grid
    if args.points is None:
        land = compute_landscape(problem, n=n, batch_size=args.batch)
        print(f"{n}x{n} landscape with gradients: {land.seconds:.1f} s ({land.seconds / n**2:.3f} s/point)")
    else:
        nu_axis, _ = grid_axes(problem, n)
        nu = np.stack(np.meshgrid(nu_axis, nu_axis, indexing="ij"), -1).reshape(-1, 2)[: args.points]
        tgt = problem.target_features(default_target(problem, n))
        t0 = time.perf_counter()
        problem.evaluate(nu, tgt, 0, batch_size=args.batch)
        dt = (time.perf_counter() - t0) / len(nu)
        print(f"{len(nu)} points: {dt:.3f} s/point -> {n}x{n} grid ~ {dt * n * n:.0f} s")

if __name__ == "__main__":
    main()
