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

HELP = "loss landscape and gradient field over (f_m, gamma) under JTFS or MSS"
SYNTHS = ("amchirp", "arpeggio")
LOSSES = ("jtfs", "mss")
PRESETS = ("fast", "paper")
DEFAULT_SHIFT = 1024
DEFAULT_RANDOM_SHIFT = "8:12"


# ----------------------------------------------------------------------------- shared options
def add_common(p: argparse.ArgumentParser, loss: bool = True) -> None:
    """Options shared by the DTFA commands (synth, loss, representation, execution, output)."""
    p.add_argument("--synth", default="amchirp", help="synthesizer: amchirp (default) or arpeggio")
    if loss:
        p.add_argument("--loss", required=True, help="representation of the loss: jtfs or mss")
    p.add_argument(
        "--preset",
        default="fast",
        help="JTFS preset: 'fast' (default; the paper's JTFS on the sound decimated by 4 for amchirp, "
        "2 for arpeggio -- same filters in Hz, ~5x cheaper) or 'paper' (J=12, Q=(8,2), J_fr=5, Q_fr=2, "
        "F=0, T=2**13 on 2**15 samples)",
    )
    p.add_argument("--decimation", type=str, default=None, help="JTFS decimation factor (power of two), overrides the preset's")
    p.add_argument("--synth-config", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help="synth config entries")
    p.add_argument(
        "--loss-config", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
        help="representation arguments overriding the preset (e.g. J=8 T=512)",
    )
    p.add_argument("--batch", default="8", help="grid points / initialisations per batch (default 8)")
    p.add_argument(
        "--threads", default="1",
        help="torch intra-op threads (default 1: on a shared 2-core machine two threads are several times slower)",
    )
    p.add_argument("--seed", default="0", help="random seed (initialisations, random shifts; default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created if needed)")


def int_option(value: Any, name: str, low: int | None = None, high: int | None = None) -> int:
    """``int(value)`` or ``ValueError`` naming ``--name`` and the allowed range."""
    rng = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
    if low is None:
        rng = "an integer"
    try:
        v = int(str(value).strip())
    except (TypeError, ValueError):
        raise ValueError(f"--{name} must be {rng}, got {value!r}") from None
    if (low is not None and v < low) or (high is not None and v > high):
        raise ValueError(f"--{name} must be {rng}, got {value!r}")
    return v


def float_option(value: Any, name: str, positive: bool = True) -> float:
    try:
        v = float(str(value).strip())
    except (TypeError, ValueError):
        raise ValueError(f"--{name} must be a number{' > 0' if positive else ''}, got {value!r}") from None
    if not math.isfinite(v) or (positive and v <= 0):
        raise ValueError(f"--{name} must be a finite number{' > 0' if positive else ''}, got {value!r}")
    return v


def choice_option(value: str, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"--{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


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


def build_problem(args: argparse.Namespace, loss: str | None = None, use_loss_config: bool = True):
    """Validate the common options, set the threads, and build the MatchingProblem."""
    import torch

    from pnp.matching import make_problem

    synth = choice_option(args.synth, "synth", SYNTHS)
    loss = loss or choice_option(args.loss, "loss", LOSSES)
    preset = choice_option(args.preset, "preset", PRESETS)
    decimation = None
    if args.decimation is not None:
        decimation = int_option(args.decimation, "decimation", 1)
        if decimation & (decimation - 1):
            raise ValueError(f"--decimation must be a power of two >= 1, got {args.decimation!r}")
        if loss != "jtfs":
            decimation = None
    args.batch_n = int_option(args.batch, "batch", 1)
    args.seed_n = int_option(args.seed, "seed", 0)
    threads = int_option(args.threads, "threads", 1)
    torch.set_num_threads(threads)
    loss_config = parse_config(args.loss_config, "loss-config") if use_loss_config else {}
    return make_problem(
        synth,
        loss,
        preset=preset,
        decimation=decimation,
        synth_config=parse_config(args.synth_config, "synth-config"),
        loss_config=loss_config,
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
    p.add_argument("--grid", default="20", help="points per parameter, log-spaced (default 20; >= 2)")
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

    grid = int_option(args.grid, "grid", 2)
    if args.shift is not None and args.random_shift is not None:
        raise ValueError("--shift and --random-shift are mutually exclusive: give one of them")
    problem = build_problem(args)
    N = problem.n_samples
    shift = parse_shift(args.shift, "shift", N) if args.shift is not None else 0
    random_shift = parse_random_shift(args.random_shift, N) if args.random_shift is not None else None
    target = parse_point(args.target, "target", problem) if args.target is not None else None
    out = prepare_out(args.out)  # after every option is validated: a refused command creates nothing
    land = compute_landscape(
        problem,
        n=grid,
        target=target,
        shift=shift,
        random_shift=random_shift,
        seed=args.seed_n,
        batch_size=args.batch_n,
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
