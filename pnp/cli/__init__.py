"""pnp: differentiable time-frequency analysis and perceptual-neural-physical sound matching.

The ``pnp`` command: each sub-command lives in its own module exposing ``add_parser(subparsers)`` (which registers
the parser and sets ``func``). ``main`` turns every ``ValueError`` into a one-line message
and a non-zero exit code, never a traceback.
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
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"pnp.cli.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if os.environ.get("PNP_TUNE_MALLOC", "1") != "0":
        tune_malloc()  # keep the JTFS's large temporaries on the heap (see pnp.allocator)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError, PermissionError) as err:
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
