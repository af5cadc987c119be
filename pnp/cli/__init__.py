"""pnp: differentiable time-frequency analysis and perceptual-neural-physical sound matching.

The ``pnp`` command: each sub-command lives in its own module exposing ``add_parser(subparsers)`` (which registers
the parser and sets ``func``). ``main`` turns every ``ValueError`` into a one-line message
(``ValueError``, ``TypeError``, file errors, ``OSError``) and exit code 2, never a traceback;
Ctrl-C exits 130 with the resume hint; ``--out`` is checked writable before any work.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from pnp.allocator import tune_malloc

#: sub-command modules, in the order ``pnp --help`` lists them
COMMANDS = ("synth", "precompute", "store", "landscape", "match", "chirp_pairs", "train", "evaluate", "study", "knn", "embed")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pnp", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"pnp {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"pnp.cli.{name}").add_parser(sub)
    return parser


def _version() -> str:
    import importlib.metadata as md

    try:
        return md.version("pnp")
    except md.PackageNotFoundError:  # pragma: no cover - a source tree that is not installed
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out = getattr(args, "out", None)
    if isinstance(out, str):  # before any work: a refused command creates nothing
        from pnp.files import check_output_path

        try:
            check_output_path(out, "--out", directory=args.command != "synth")
        except ValueError as err:
            print(f"pnp {args.command}: error: {err}", file=sys.stderr)
            return 2
    if os.environ.get("PNP_TUNE_MALLOC", "1") != "0":
        tune_malloc()  # keep the JTFS's large temporaries on the heap (see pnp.allocator)
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, PermissionError) as err:
        print(f"pnp {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # e.g. a cluster that does not start, a lost connection
        print(f"pnp {args.command}: error: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"pnp {args.command}: interrupted; what was finished is kept: run the same command again to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
