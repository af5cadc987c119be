"""``pnp chirp-pairs``: the Mesostructures paper's Fig. 1.

Usage::

    pnp chirp-pairs [--synth amchirp] [--reference F_M,GAMMA] [--shift 2048] [--n-rates 25] [--quiet] --out DIR

The distance ``‖Φ x_ref(t − τ) − Φ x(γ)‖₂`` between a reference chirp displaced by ``τ``
samples and a chirp whose chirp rate γ sweeps 0.5–4 oct/s (``--n-rates`` log-spaced values plus
the reference's γ), under MSS and JTFS; also without displacement for comparison.  Writes ``DIR/chirp_pairs.png``
and ``DIR/summary.json`` (the distances, each curve's arg-min γ, and the Spearman correlation
between distance and chirp-rate mismatch |log2(γ/γ_ref)|).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from pnp.cli.landscape import add_common, build_problem, parse_point, parse_shift, prepare_out
from pnp.cli.options import integer

HELP = "distance between a chirp and a time-displaced chirp vs chirp rate, MSS and JTFS (paper Fig. 1)"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``chirp-pairs`` on ``subparsers`` (``func=run``)."""
    p = subparsers.add_parser("chirp-pairs", help=HELP, description=HELP + ": writes DIR/chirp_pairs.png and DIR/summary.json.")
    add_common(p, loss=False)
    p.add_argument("--reference", default=None, metavar="F_M,GAMMA", help="reference chirp (default: the 20x20 grid centre)")
    p.add_argument("--shift", default="2048", help="displacement of the reference chirp in samples (default 2048 = 2**11)")
    p.add_argument("--n-rates", type=integer(2), default=25, metavar="N",
                   help="log-spaced chirp rates of the sweep over 0.5-4 oct/s, to which the reference's rate is added "
                        "(>= 2, default 25: 26 rates, or 25 when the reference's is one of them)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from pnp.cli.landscape import parse_config
    from pnp.matching.plots import plot_chirp_pairs
    from pnp.pipelines.matching import chirp_pairs

    problem = build_problem(args, loss="mss", use_loss_config=False)  # validates the shared options, sets threads
    if args.loss_config or args.decimation is not None:
        build_problem(args, loss="jtfs")  # --loss-config / --decimation refused before --out is created
    shift = parse_shift(args.shift, "shift", problem.n_samples)
    reference = parse_point(args.reference, "reference", problem) if args.reference is not None else None
    loss_config = parse_config(args.loss_config, "loss-config")
    out = prepare_out(args.out)  # after every option is validated: a refused command creates nothing
    result = chirp_pairs(
        synth=problem.synth.name,
        reference=reference,
        shift=shift,
        n_rates=args.n_rates,
        preset=args.preset,
        decimation=args.decimation,
        synth_config=parse_config(args.synth_config, "synth-config"),
        loss_configs={"jtfs": loss_config} if loss_config else None,
        batch_size=args.batch_size,
        progress=not args.quiet,
    )
    js = os.path.join(out, "summary.json")
    with open(js, "w") as f:
        json.dump(result, f, indent=1)
    png = os.path.join(out, "chirp_pairs.png")
    plot_chirp_pairs(result, png)
    ref_g = result["reference"][1]
    for loss, r in result["losses"].items():
        d = r["displaced"]
        print(
            f"{loss.upper()}: displaced by {shift} samples, minimum at gamma = {d['argmin_gamma']:.3g} "
            f"(reference {ref_g:.3g}); Spearman(distance, |log2 gamma/gamma_ref|) = {d['spearman_vs_rate_mismatch']:.2f}"
        )
    print(f"wrote {js}, {png}")
    return 0
