"""``pnp spec``: dataset specs without computing them.

Usage::

    pnp spec check SPEC [--time-samples N] [--device auto|cpu|cuda] [--threads T] [--json] [--quiet]

``check`` validates the spec and prints every problem, one line each (exit status 2); a valid
spec prints its grid size, split counts, K (coefficients per sample: builds the representation),
the store's arrays, its size (raw, and projected on disk under the spec's codec) and the
precompute time projected from computing ``N`` samples here (see :mod:`pnp.store.projection`).
The fields of a spec: ``docs/specs.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pnp.cli.options import add_device, add_quiet, add_threads, integer, set_threads

HELP = "check a dataset spec: every problem at once, or its grid, splits, K, store size and precompute time"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``spec`` (sub-command ``check``) on ``subparsers``."""
    p = subparsers.add_parser("spec", help=HELP, description=HELP + ". The fields of a spec: docs/specs.md.")
    sub = p.add_subparsers(dest="spec_command", required=True, metavar="{check}")
    c = sub.add_parser("check", help="validate a spec (all problems, one line each) and project its store",
                       description="Validate a dataset spec (every problem, one line each, exit 2) and print its "
                                   "grid size, split counts, K, the store's size and a projected precompute time.")
    c.add_argument("spec", metavar="SPEC", help="dataset spec (TOML), e.g. data/demo.toml")
    c.add_argument("--time-samples", type=integer(0), default=1, metavar="N",
                   help="samples computed and timed for the projections, after one warm-up sample (>= 0, default 1; "
                        "0: no timing and no on-disk size, K from one forward pass)")
    add_device(c, "where the timed samples are computed")
    add_threads(c)
    c.add_argument("--json", action="store_true", help="print the numbers as JSON")
    add_quiet(c, "no progress message")
    c.set_defaults(func=run_check)
    return p


def _grid(spec, params: tuple[str, ...]) -> str:
    g = spec.grid
    counts = g["counts"] if isinstance(g["counts"], list) else [g["counts"]] * len(params)
    axes = " x ".join(map(str, counts))
    if g["kind"] == "random":
        return f"random, {spec.n_samples:,} samples ({axes} bins of {', '.join(params)} for the split)"
    return f"{g['kind']} {axes} = {spec.n_samples:,} samples ({', '.join(params)})"


def _size(n: float | None) -> str:
    from pnp.store import human_bytes

    return "?" if n is None else human_bytes(n)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


def describe(spec, p) -> list[str]:
    """The lines ``pnp spec check`` prints for a valid ``spec`` and its projection ``p``
    (:class:`pnp.store.projection.StoreProjection`)."""
    st = spec.store
    lines = [f"spec {spec.source}: valid ({spec.name!r}, hash {spec.hash})"]
    fixed = ", ".join(f"{k} = {v:g}" for k, v in spec.fixed.items())
    lines.append(f"  synth       {spec.synth_name}: {len(p.params)} free parameters ({', '.join(p.params)})"
                 + (f", fixed {fixed}" if fixed else "") + f"; {p.n_time:,} audio samples per sound")
    lines.append(f"  grid        {_grid(spec, p.params)}")
    lines.append("  splits      " + ", ".join(f"{k} {v:,}" for k, v in p.split_counts.items())
                 + f" (rule {spec.split['rule']!r})")
    lines.append(f"  features    K = {p.n_coefs:,} coefficients per sample ({spec.representation_name}, "
                 f"compression {spec.compression['compression']})")
    lines.append(f"  store       {p.n_chunks:,} chunks of {p.chunk_size} samples; arrays "
                 + ", ".join(f"{k}{tuple(s)} {d}" for k, (s, d) in p.arrays.items()))
    codec = "no compression" if st["codec"] == "none" else f"{st['codec']} level {st['level']}"
    disk = ("" if p.disk_bytes is None else
            f"; {_size(p.disk_bytes)} projected on disk with {codec} (compression of {p.timed_samples + 1} "
            "computed samples)")
    lines.append(f"  size        {_size(p.raw_bytes)} uncompressed{disk}")
    if p.precompute_seconds is None:
        lines.append("  precompute  not projected (--time-samples 0)")
    else:
        lines.append(f"  precompute  {_duration(p.precompute_seconds)} projected on one worker: {p.n_samples:,} samples "
                     f"x {p.seconds_per_sample:.3g} s per sample, a projection from {p.timed_samples} timed "
                     f"sample(s) on {p.device} (after 1 warm-up sample); W such workers take about 1/W of it")
    return lines


def run_check(args: argparse.Namespace) -> int:
    from pnp.spec import SpecError, load_spec

    try:
        return _report(load_spec(args.spec), args)
    except SpecError as err:  # the representation's config is checked when it is built: no source there
        for p in err.problems:
            print(f"pnp spec: error: {err.source or args.spec}: {p.message}", file=sys.stderr)
        return 2


def _report(spec, args: argparse.Namespace) -> int:
    from pnp.devices import resolve_device
    from pnp.store.compute import describe_device
    from pnp.store.projection import project, to_dict

    set_threads(args.threads)
    device = resolve_device(args.device)
    if args.time_samples and not args.quiet:
        print(f"computing 1 warm-up + {min(args.time_samples, spec.n_samples)} timed sample(s) of {spec.source} on "
              f"{describe_device(device)} ...", file=sys.stderr, flush=True)
    p = project(spec, device=device, timed_samples=args.time_samples)
    if args.json:
        out = {"spec": spec.source, "name": spec.name, "hash": spec.hash, **to_dict(p)}
        print(json.dumps(out, indent=2))
    else:
        print("\n".join(describe(spec, p)))
    return 0
