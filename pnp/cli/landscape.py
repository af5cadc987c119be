"""``pnp landscape``: loss surface and gradient field over (f_m, γ) under JTFS or MSS.

Usage::

    pnp landscape --synth amchirp --loss jtfs|mss [--grid 20] [--target F_M,GAMMA]
                  [--shift [TAU] | --random-shift [A:B]] [--preset fast|paper] --out DIR

Computes ``‖Φ S_τ g(θ̃) − Φ g(θ*)‖²`` and its gradient with respect to the normalised log
parameters at every point of a log-spaced ``grid × grid`` grid of (f_m 4–16 Hz, γ 0.5–4 oct/s)
(f_c = 512 Hz for the AM chirp), batched, and writes ``DIR/landscape.png`` (3-D surface and
contour + −∇L quiver, as the Mesostructures paper's Figs. 3 and 5), ``DIR/landscape.npz`` (all
arrays) and ``DIR/summary.json``.  ``--shift`` alone shifts the predicted sound by 1024
samples; ``--random-shift`` alone by 2**n samples, n uniform in {8, ..., 12}, per grid point.
Prints the time the grid took.  Bad option values raise ``ValueError`` (one line, exit 2).

This module also holds the option helpers shared by ``pnp match`` and ``pnp chirp-pairs``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from typing import Any

from pnp.cli.options import add_batch_size, add_out, add_quiet, add_seed, add_threads, int_option, integer, set_threads

HELP = "loss landscape and gradient field over (f_m, gamma) under JTFS or MSS"
SYNTHS = ("amchirp", "arpeggio")
LOSSES = ("jtfs", "mss")
PRESETS = ("fast", "paper")
DEFAULT_SHIFT = 1024
DEFAULT_RANDOM_SHIFT = "8:12"


# ----------------------------------------------------------------------------- shared options
def power_of_two(text: str) -> int:
    """argparse ``type``: a power of two >= 1."""
    try:
        value = int(str(text).strip())
    except ValueError:
        value = 0
    if value < 1 or value & (value - 1):
        raise argparse.ArgumentTypeError(f"must be a power of two >= 1, got {text}")
    return value


def add_common(p: argparse.ArgumentParser, loss: bool = True, synths: tuple[str, ...] = SYNTHS) -> None:
    """Options shared by the DTFA commands (synth, loss, representation, execution, output)."""
    p.add_argument("--synth", choices=synths, default="amchirp",
                   help=f"synthesizer: {', '.join(synths)} (default amchirp)")
    if loss:
        p.add_argument("--loss", choices=LOSSES, required=True, help="representation of the loss: jtfs or mss")
    p.add_argument(
        "--preset",
        choices=PRESETS,
        default="fast",
        help="JTFS preset (pnp list presets): fast (default; the paper's JTFS on the sound decimated by 4 for "
        "amchirp, 2 for arpeggio -- same filters in Hz, ~5x cheaper) or paper (J=12, Q=(8,2), J_fr=5, Q_fr=2, "
        "F=0, T=2**13 on 2**15 samples)",
    )
    p.add_argument("--decimation", type=power_of_two, default=None, metavar="D",
                   help="JTFS decimation factor, a power of two >= 1 (default: the preset's; --loss jtfs only)")
    p.add_argument("--synth-config", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="synth config entries (pnp list synths shows the keys)")
    p.add_argument(
        "--loss-config", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
        help="representation arguments overriding the preset (e.g. J=8 T=512; pnp list representations)",
    )
    add_batch_size(p, 8, "grid points / initialisations / chirps")
    add_threads(p)
    add_seed(p, "the initialisations and random shifts")
    add_quiet(p)
    add_out(p)


def parse_config(items: list[str], name: str) -> dict[str, Any]:
    """``["k=v", ...]`` → dict (JSON values when possible, else strings)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--{name} entries must look like key=value, got {item!r}")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    if "Q" in out and isinstance(out["Q"], list):
        out["Q"] = tuple(out["Q"])
    return out


def parse_point(text: str, name: str, problem: Any) -> Any:
    """``"a,b"`` → free physical parameters checked against the parameter space."""
    import numpy as np

    names = problem.free
    parts = [s.strip() for s in str(text).split(",")]
    try:
        if len(parts) != len(names):
            raise ValueError
        values = [float(s) for s in parts]
        if not all(math.isfinite(v) for v in values):
            raise ValueError
    except ValueError:
        raise ValueError(
            f"--{name} must be {len(names)} comma-separated numbers {','.join(names)} (e.g. 8.49,1.49), got {text!r}"
        ) from None
    for v, p in zip(values, problem.space.parameters):
        if not p.lo <= v <= p.hi:
            raise ValueError(f"--{name}: {p.name} = {v:g} is outside the parameter space {p.bounds_str()}")
    return np.asarray(values, dtype=np.float64)


def build_problem(args: argparse.Namespace, loss: str | None = None, use_loss_config: bool = True,
                  free: tuple[str, ...] | None = None, fixed: dict[str, float] | None = None):
    """Set the threads and build the MatchingProblem from the common options (``free`` /
    ``fixed``: the free parameters and the values of the others, default the synth's)."""
    from pnp.matching import make_problem

    loss = loss or args.loss
    decimation = args.decimation if loss == "jtfs" else None
    set_threads(args.threads)
    loss_config = parse_config(args.loss_config, "loss-config") if use_loss_config else {}
    return make_problem(
        args.synth,
        loss,
        preset=args.preset,
        decimation=decimation,
        synth_config=parse_config(args.synth_config, "synth-config"),
        loss_config=loss_config,
        free=free,
        fixed=fixed,
    )


def prepare_out(path: str) -> str:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise ValueError(f"--out: cannot create directory {path!r}: {err.strerror or err}") from None
    if not os.access(path, os.W_OK):
        raise ValueError(f"--out: directory {path!r} is not writable")
    return path


def parse_shift(value: Any, name: str, n_samples: int) -> int:
    return int_option(value, name, 0, n_samples - 1)


# ----------------------------------------------------------------------------- command
def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``landscape`` on ``subparsers`` (``func=run``)."""
    p = subparsers.add_parser(
        "landscape",
        help=HELP,
        description=HELP + ": writes DIR/landscape.png (surface + gradient quiver), landscape.npz and summary.json, "
        "and prints the time taken.",
    )
    add_common(p)
    p.add_argument("--grid", type=integer(2), default=20, metavar="N",
                   help="points per parameter, log-spaced (>= 2, default 20)")
    p.add_argument("--target", default=None, metavar="F_M,GAMMA", help="target parameters (default: the grid centre node)")
    p.add_argument(
        "--shift", nargs="?", const=str(DEFAULT_SHIFT), default=None, metavar="TAU",
        help=f"shift the predicted sound by TAU samples (alone: {DEFAULT_SHIFT})",
    )
    p.add_argument(
        "--random-shift", nargs="?", const=DEFAULT_RANDOM_SHIFT, default=None, metavar="A:B",
        help=f"shift each grid point's predicted sound by 2**n samples, n uniform integer in [A, B] (alone: {DEFAULT_RANDOM_SHIFT})",
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from pnp.matching import compute_landscape, parse_random_shift
    from pnp.matching.plots import plot_landscape

    grid = args.grid
    if args.shift is not None and args.random_shift is not None:
        raise ValueError("--shift and --random-shift are mutually exclusive: give one of them")
    problem = build_problem(args)
    N = problem.n_samples
    shift = parse_shift(args.shift, "shift", N) if args.shift is not None else 0
    random_shift = parse_random_shift(args.random_shift, N, "--random-shift") if args.random_shift is not None else None
    target = parse_point(args.target, "target", problem) if args.target is not None else None
    out = prepare_out(args.out)  # after every option is validated: a refused command creates nothing
    land = compute_landscape(
        problem,
        n=grid,
        target=target,
        shift=shift,
        random_shift=random_shift,
        seed=args.seed,
        batch_size=args.batch_size,
        progress=not args.quiet,
    )
    paths = land.save(out)
    png = os.path.join(out, "landscape.png")
    plot_landscape(land, png)
    s = land.summary()
    print(
        f"landscape {problem.synth.name} {problem.loss.name} ({grid}x{grid} = {grid * grid} points, "
        f"with gradients): {land.seconds:.1f} s"
    )
    print(
        f"target {tuple(round(float(v), 4) for v in land.target)}; grid minimum at {tuple(round(float(v), 4) for v in s['argmin_theta'])} "
        f"(nu-distance {s['argmin_distance_nu']:.3f}); -grad points towards the target at "
        f"{100 * (s['descent_alignment']['fraction_cos_positive'] or 0):.0f}% of the grid"
    )
    print(f"wrote {png}, {paths['npz']}, {paths['json']}")
    return 0
