"""``pnp match``: sound matching by gradient descent (bold driver) under JTFS or MSS.

Usage::

    pnp match --synth amchirp --loss jtfs|mss [--target F_M,GAMMA] [--init far|near|anywhere]
              [--n-inits 5] [--iters 100] [--shift [TAU] | --shifts T1,T2,...] --out DIR

Gradient descent on the normalised log parameters ν of (f_m, γ) from ``--n-inits`` initial
points (``far``: ν-distance to the target >= 1; ``near``: distance in [0.05, 0.2]; ``anywhere``:
uniform in the box), with the bold-driver rule (learning rate × 1.2 when the loss decreases,
÷ 2 and step undone otherwise).  ``--shift`` shifts the predicted sound (alone: 1024 samples);
``--shifts`` repeats the experiment for each shift from the same initial points.  Writes
``DIR/summary.json`` (every trajectory; ``final_distance``: one value per initialisation, or per
shift a list of them with ``--shifts``) and ``DIR/match.png`` (distance over iterations: mean and
range over initialisations; with ``--shifts`` also the final distance per shift).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from pnp.cli.landscape import DEFAULT_SHIFT, add_common, build_problem, parse_point, parse_shift, prepare_out
from pnp.cli.options import int_option, integer, number

HELP = "sound matching by gradient descent (bold driver) from several initialisations"
INITS = ("far", "near", "anywhere")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``match`` on ``subparsers`` (``func=run``)."""
    p = subparsers.add_parser(
        "match",
        help=HELP,
        description=HELP + ": writes DIR/summary.json (every trajectory, final_distance per initialisation) "
        "and DIR/match.png.",
    )
    add_common(p)
    p.add_argument("--target", default=None, metavar="F_M,GAMMA", help="target (f_m, gamma) (default: the 20x20 grid centre, 8.30,1.49)")
    p.add_argument("--init", choices=INITS, default="far",
                   help="initialisation scheme: far (default; nu-distance to the target >= 1), near (distance in "
                        "[0.05, 0.2]) or anywhere (uniform in the box)")
    p.add_argument("--n-inits", type=integer(1), default=5, metavar="N", help="number of initialisations (>= 1, default 5)")
    p.add_argument("--iters", type=integer(1), default=100, metavar="N",
                   help="gradient-descent iterations (>= 1, default 100)")
    p.add_argument(
        "--shift", nargs="?", const=str(DEFAULT_SHIFT), default=None, metavar="TAU",
        help=f"shift the predicted sound by TAU samples (alone: {DEFAULT_SHIFT})",
    )
    p.add_argument("--shifts", default=None, metavar="T1,T2,...", help="run once per time shift (samples), e.g. 4,8,128,1024")
    p.add_argument("--lr", type=number(0, open_low=True), default=None,
                   help="initial learning rate, > 0 (default: auto, a first step of length --step0 in nu units)")
    p.add_argument("--step0", type=number(0, open_low=True), default=0.1,
                   help="length of the first step in nu units when --lr is not given (> 0, default 0.1)")
    p.add_argument("--threshold", type=number(0, open_low=True), default=0.1,
                   help="nu-distance counted as converged in the summary (> 0, default 0.1)")
    p.set_defaults(func=run)
    return p


def parse_shifts(text: str, n_samples: int) -> list[int]:
    parts = [s.strip() for s in str(text).split(",") if s.strip()]
    if not parts:
        raise ValueError(f"--shifts must be comma-separated integers in [0, {n_samples - 1}], got {text!r}")
    out = []
    for s in parts:
        out.append(int_option(s, "shifts", 0, n_samples - 1))
    if len(set(out)) != len(out):
        raise ValueError(f"--shifts must not repeat a value, got {text!r}")
    return out


def run(args: argparse.Namespace) -> int:
    from pnp.matching.plots import plot_match_summary
    from pnp.pipelines.matching import run_matching

    threshold = args.threshold
    if args.shift is not None and args.shifts is not None:
        raise ValueError("--shift and --shifts are mutually exclusive: give one of them")
    problem = build_problem(args)
    N = problem.n_samples
    if args.shifts is not None:
        shifts = parse_shifts(args.shifts, N)
    else:
        shifts = [parse_shift(args.shift, "shift", N) if args.shift is not None else 0]
    target = parse_point(args.target, "target", problem) if args.target is not None else None
    out = prepare_out(args.out)  # after every option is validated: a refused command creates nothing
    summary = run_matching(
        problem,
        target=target,
        init=args.init,
        n_inits=args.n_inits,
        iters=args.iters,
        shifts=shifts,
        seed=args.seed,
        lr=args.lr,
        step0=args.step0,
        batch_size=args.batch_size,
        threshold=threshold,
        progress=not args.quiet,
    )
    js = os.path.join(out, "summary.json")
    with open(js, "w") as f:
        json.dump(summary, f)
    png = os.path.join(out, "match.png")
    plot_match_summary(summary, png)
    for r in summary["runs"]:
        fd = ", ".join(f"{d:.3f}" for d in r["final_distance"])
        print(
            f"{problem.loss.name} shift {r['shift']}: final nu-distance [{fd}]; "
            f"{100 * r['converged_fraction']:.0f}% within {threshold:g} ({r['seconds']:.1f} s)"
        )
    print(f"wrote {js}, {png}")
    return 0
