"""pnp: differentiable time-frequency analysis and perceptual-neural-physical sound matching.

The ``pnp`` command: each sub-command lives in its own module exposing ``add_parser(subparsers)``
(which registers the parser and sets ``func``); the shared options come from
:mod:`pnp.cli.options`, which also makes argparse's errors one line.  ``main`` turns every bad
input (``ValueError``, ``TypeError``, file errors, ``OSError``, a missing optional package) into a
one-line message and exit code 2, never a traceback; Ctrl-C exits 130 with the resume hint;
``--out`` is checked writable before any work.  ``PNP_DEBUG=1`` re-raises those errors with
their traceback (for developers)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from pnp.allocator import tune_malloc
from pnp.cli.options import Parser
from pnp.errors import fail, run_reported

#: sub-command modules, in the order ``pnp --help`` lists them
COMMANDS = ("synth", "precompute", "store", "landscape", "match", "chirp_pairs", "train", "evaluate", "predict", "study",
            "knn", "embed", "listing", "spec")


def build_parser() -> argparse.ArgumentParser:
    """The ``pnp`` parser with every sub-command (one-line errors, see :class:`pnp.cli.options.Parser`)."""
    parser = Parser(prog="pnp", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action=_Version, help="print pnp's version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"pnp.cli.{name}").add_parser(sub)
    return parser


class _Version(argparse.Action):
    """``--version``, reading the installed version only when asked (importlib.metadata is slow)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"pnp {_version()}")
        parser.exit(0)


def _version() -> str:
    import importlib.metadata as md

    try:
        return md.version("pnp")
    except md.PackageNotFoundError:  # pragma: no cover - a source tree that is not installed
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    """Run ``pnp`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status (0 done,
    1 problems found, 2 bad input, 130 interrupted), also for ``--help`` / ``--version`` and
    argument errors (argparse's ``SystemExit`` becomes the return value)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else int(stop.code is not None)
    try:
        _check_outputs(args)  # before any work: a refused command creates nothing
    except ValueError as err:
        return fail(f"pnp {args.command}", str(err))
    if os.environ.get("PNP_TUNE_MALLOC", "1") != "0":
        tune_malloc()  # keep the JTFS's large temporaries on the heap (see pnp.allocator)
    return run_reported(f"pnp {args.command}", lambda: args.func(args), RESUME_HINTS.get(args.command, ""))


#: what Ctrl-C leaves, for the commands that resume
RESUME_HINTS = {
    "precompute": "; what was finished is kept: run the same command again to resume",
    "study": "; finished runs are kept: run the same command again to resume",
    "train": "; the last finished epoch is kept: run the same command with --resume to continue",
}


def _check_outputs(args: argparse.Namespace) -> None:
    """``ValueError`` unless ``--out`` (and ``pnp synth``'s ``--plot``, ``pnp predict``'s
    ``--resynth``) can be written; ``--out`` is a file for ``synth`` and ``predict``."""
    from pnp.files import check_output_path

    for option in ("out", "plot", "resynth"):
        path = getattr(args, option, None)
        if isinstance(path, str):
            is_file = option == "plot" or (option == "out" and args.command in ("synth", "predict"))
            check_output_path(path, f"--{option}", directory=not is_file)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
