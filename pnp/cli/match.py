"""``pnp match``: sound matching by gradient descent (bold driver or Adam) under JTFS or MSS.

Usage::

    pnp match --synth amchirp|arpeggio|ftm --loss jtfs|mss [--target V1,V2,... | --target-audio FILE [--truth V1,...]]
              [--free NAME,NAME,...] [--fixed NAME=VALUE ...] [--init far|near|anywhere|grid] [--init-from RUN_DIR]
              [--n-inits 5] [--iters 100] [--optimizer bold|adam] [--shift [TAU] | --shifts T1,T2,...] --out DIR

Gradient descent on the normalised log parameters ν of the free parameters (default: (f_m, γ)
for the chirps, f_c = 512 Hz fixed; all five for the FTM drum) from ``--n-inits`` initial points
(``far``: ν-distance to the target >= 1; ``near``: distance in [0.05, 0.2]; ``anywhere``: uniform
in the box; ``grid``: the lowest-loss nodes of a ``--init-grid``-point per parameter grid;
``--init-from RUN_DIR``: a trained encoder's prediction, then ``near`` points around it), with the
bold-driver rule (learning rate × 1.2 when the loss decreases, ÷ 2 and step undone otherwise) or
projected Adam.  The target is synthetic (``--target``, default the grid centre) or a sound
(``--target-audio``: conditioned to the synth's format as ``pnp predict`` does; ``--truth`` gives
its parameters when known, for the ν-distances).  ``--shift`` shifts the predicted sound (alone:
1024 samples); ``--shifts`` repeats the experiment for each shift from the same initial points.
Writes ``DIR/summary.json`` (every trajectory; ``final_distance``: one value per initialisation,
or per shift with ``--shifts``, None without a truth; ``final_loss``; ``best``: the lowest-loss
initialisation's θ̂), ``DIR/match.png`` and ``DIR/resynthesis.wav``.
"""

from __future__ import annotations

import argparse
import math
import os
from typing import Any

from pnp.cli.landscape import DEFAULT_SHIFT, add_common, build_problem, parse_point, parse_shift, prepare_out
from pnp.cli.options import add_device, int_option, integer, number

HELP = "sound matching by gradient descent (bold driver or Adam) of a synthetic target or a sound file"
INITS = ("far", "near", "anywhere", "grid")
SYNTHS = ("amchirp", "arpeggio", "ftm")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``match`` on ``subparsers`` (``func=run``)."""
    p = subparsers.add_parser(
        "match",
        help=HELP,
        description=HELP + ": writes DIR/summary.json (every trajectory, final_distance per initialisation), "
        "DIR/match.png and DIR/resynthesis.wav.",
    )
    add_common(p, synths=SYNTHS)
    p.add_argument("--target", default=None, metavar="V1,V2,...",
                   help="synthetic target: the free parameters' values, e.g. F_M,GAMMA (default: the 20-point grid "
                        "centre, 8.30,1.49 for the chirps)")
    p.add_argument("--target-audio", default=None, metavar="FILE",
                   help="match this sound file (WAV, FLAC, ...; mono-mixed, resampled, trimmed / zero-padded to the "
                        "synth's format, each step printed)")
    p.add_argument("--truth", default=None, metavar="V1,V2,...",
                   help="the free parameters of --target-audio when known: reports the nu-distance per init")
    p.add_argument("--free", default=None, metavar="NAME,...",
                   help="free parameters (default: f_m,gamma for amchirp / arpeggio, all five for ftm)")
    p.add_argument("--fixed", nargs="+", action="extend", default=[], metavar="NAME=VALUE",
                   help="values of parameters that are not free, physical units (default: mid-range; f_c = 512 Hz)")
    p.add_argument("--init", choices=INITS, default=None,
                   help="initialisation scheme: far (default with a target or --truth; nu-distance to it >= 1), near "
                        "(distance in [0.05, 0.2]), anywhere (uniform in the box; default for --target-audio alone) or "
                        "grid (the lowest-loss nodes of a grid, see --init-grid)")
    p.add_argument("--init-grid", type=integer(1), default=3, metavar="G",
                   help="--init grid: points per free parameter (>= 1, default 3)")
    p.add_argument("--init-from", default=None, metavar="RUN_DIR",
                   help="start from a trained encoder's prediction for --target-audio (pnp train run), then refine; "
                        "the other --n-inits - 1 starts are near it (default --n-inits 1 here)")
    p.add_argument("--n-inits", type=integer(1), default=None, metavar="N",
                   help="number of initialisations (>= 1, default 5; 1 with --init-from)")
    p.add_argument("--iters", type=integer(1), default=100, metavar="N",
                   help="gradient-descent iterations (>= 1, default 100)")
    p.add_argument("--optimizer", choices=("bold", "adam"), default="bold",
                   help="step rule: bold (default; bold driver) or adam (projected Adam, fixed --lr, default 0.02)")
    p.add_argument(
        "--shift", nargs="?", const=str(DEFAULT_SHIFT), default=None, metavar="TAU",
        help=f"shift the predicted sound by TAU samples (alone: {DEFAULT_SHIFT})",
    )
    p.add_argument("--shifts", default=None, metavar="T1,T2,...", help="run once per time shift (samples), e.g. 4,8,128,1024")
    p.add_argument("--lr", type=number(0, open_low=True), default=None,
                   help="initial learning rate, > 0 (default: bold: auto, a first step of length --step0 in nu units; "
                        "adam: 0.02)")
    p.add_argument("--step0", type=number(0, open_low=True), default=0.1,
                   help="length of the first step in nu units when --lr is not given (> 0, default 0.1)")
    p.add_argument("--threshold", type=number(0, open_low=True), default=0.1,
                   help="nu-distance counted as converged in the summary (> 0, default 0.1)")
    p.add_argument("--level", default="auto", choices=("auto", "asis", "peak"),
                   help="--target-audio level: auto (default: peak for ftm, asis for the chirps), asis or peak")
    p.add_argument("--align", default="auto", choices=("auto", "start", "centre", "loudest"),
                   help="--target-audio length rule: auto (default: centre for the chirps, start for ftm), start, "
                        "centre or loudest (see pnp predict --help)")
    add_device(p, "where --init-from's encoder runs")
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


def parse_free(text: str | None, synth: str) -> tuple[str, ...] | None:
    """``"a,b"`` → names of the synth's parameters (``ValueError`` naming the allowed ones)."""
    if text is None:
        return None
    import pnp.synth

    names = pnp.synth.get(synth).space.names
    free = tuple(s.strip() for s in str(text).split(",") if s.strip())
    bad = [n for n in free if n not in names]
    if not free or bad:
        raise ValueError(f"--free must be comma-separated parameters of {synth} ({', '.join(names)}), got {text!r}")
    if len(set(free)) != len(free):
        raise ValueError(f"--free must not repeat a parameter, got {text!r}")
    return free


def parse_fixed(items: list[str], synth: str, free: tuple[str, ...] | None) -> dict[str, float] | None:
    """``["name=value", ...]`` → {name: value} (finite numbers, names of the synth not free)."""
    if not items:
        return None
    import pnp.synth
    from pnp.matching.problem import DEFAULT_FREE

    names = pnp.synth.get(synth).space.names
    free = free if free is not None else DEFAULT_FREE[synth]
    out: dict[str, float] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not sep or key not in names or key in free or not math.isfinite(value):
            others = ", ".join(n for n in names if n not in free) or "none: every parameter is free"
            raise ValueError(f"--fixed entries must look like NAME=VALUE, NAME a parameter that is not free ({others}) "
                             f"and VALUE a finite number, got {item!r}")
        out[key] = value
    return out


def _resolve(args: argparse.Namespace) -> tuple[str, int]:
    """The initialisation scheme and the number of initialisations (defaults depend on the target)."""
    if args.target_audio is None:
        for option in ("truth", "init_from"):
            if getattr(args, option) is not None:
                raise ValueError(f"--{option.replace('_', '-')} applies to --target-audio only")
    elif args.target is not None:
        raise ValueError("--target and --target-audio are mutually exclusive: give one of them")
    if args.init_from is not None and args.init is not None:
        raise ValueError("--init and --init-from are mutually exclusive: --init-from starts from the encoder's prediction")
    has_reference = args.target_audio is None or args.truth is not None
    init = args.init or ("far" if has_reference else "anywhere")
    if init in ("far", "near") and not has_reference:
        raise ValueError(f"--init {init} is measured from the truth: give --truth, or use --init anywhere or grid, or "
                         "--init-from RUN_DIR")
    n_inits = args.n_inits if args.n_inits is not None else (1 if args.init_from is not None else 5)
    return init, n_inits


def run(args: argparse.Namespace) -> int:
    from pnp.pipelines.matching import predicted_start, run_matching, save_matching
    from pnp.pipelines.predict import resolve_conditioning

    if args.shift is not None and args.shifts is not None:
        raise ValueError("--shift and --shifts are mutually exclusive: give one of them")
    init, n_inits = _resolve(args)
    free = parse_free(args.free, args.synth)
    problem = build_problem(args, free=free, fixed=parse_fixed(args.fixed, args.synth, free))
    N = problem.n_samples
    P = len(problem.free)
    if init == "grid" and args.init_from is None and args.init_grid**P < n_inits:
        raise ValueError(f"--init grid: {args.init_grid}**{P} = {args.init_grid**P} nodes, fewer than --n-inits "
                         f"{n_inits}; raise --init-grid or lower --n-inits")
    if args.shifts is not None:
        shifts = parse_shifts(args.shifts, N)
    else:
        shifts = [parse_shift(args.shift, "shift", N) if args.shift is not None else 0]
    target = parse_point(args.target, "target", problem) if args.target is not None else None
    truth = parse_point(args.truth, "truth", problem) if args.truth is not None else None
    target_audio, start, start_record = None, None, None
    if args.target_audio is not None:
        from pnp.audio import load

        level, align = resolve_conditioning(args.level, args.align, problem.synth)
        target_audio = load(args.target_audio, problem.synth.sample_rate, N, level, align)
        if args.init_from is not None:
            start, start_record = predicted_start(args.init_from, args.target_audio, problem, device=args.device)
    out = prepare_out(args.out)  # after every option and input is validated: a refused command creates nothing
    summary = run_matching(
        problem, target=target, init=init, n_inits=n_inits, iters=args.iters, shifts=shifts, seed=args.seed,
        lr=args.lr, step0=args.step0, batch_size=args.batch_size, threshold=args.threshold, progress=not args.quiet,
        target_audio=target_audio, truth=truth, start=start, optimizer=args.optimizer, init_grid=args.init_grid,
    )
    summary["init_from"] = start_record
    paths = save_matching(out, problem, summary, target_audio)
    _report(problem, summary, target_audio, start_record, args.threshold)
    print(f"wrote {', '.join(paths)}")
    return 0


def _report(problem, summary: dict[str, Any], target_audio, start_record, threshold: float) -> None:
    """The console lines: the conditioning, the prediction, per shift the distances or losses and θ̂."""
    if target_audio is not None and target_audio.steps:
        print(f"{os.path.basename(target_audio.report['path'])}: {'; '.join(target_audio.steps)}")
    if start_record is not None:
        print("encoder prediction: " + ", ".join(f"{k} {v:.4g}" for k, v in start_record["theta_hat"].items()))
    for r in summary["runs"]:
        theta = ", ".join(f"{k} {v:.4g}" for k, v in r["best"]["theta"].items())
        head = f"{problem.loss.name} shift {r['shift']}: "
        if r["final_distance"] is not None:
            fd = ", ".join(f"{d:.3f}" for d in r["final_distance"])
            head += (f"final nu-distance [{fd}]; {100 * r['converged_fraction']:.0f}% within {threshold:g}; ")
        print(head + f"lowest final loss {r['best']['loss']:.4g} (init {r['best']['init']}) at {theta} "
              f"({r['seconds']:.1f} s)")
