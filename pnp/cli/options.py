"""The option vocabulary of the ``pnp`` command, written once: every sub-command declares its
shared options through these helpers, so that a name means one thing with one default
everywhere (the README's CLI table lists them):

``--out``            where results go (a directory; a WAV file for ``pnp synth``)
``--batch-size B``   items per batch (grid points, initialisations, sounds)
``--workers N``      dask worker processes;  ``--loader-workers N``: PyTorch DataLoader processes
``--device D``       auto (default: cuda when torch sees a GPU, else cpu), cpu or cuda
``--split S``        which samples a command evaluates (test, val, train, all)
``--quiet``          no progress bars (``--no-progress``: a deprecated alias)
``--seed S``         integer >= 0, default 0
``--threads T``      torch / BLAS threads of this process, default 1

:class:`Parser` makes every argparse error one line (``pnp knn: error: --k must be an integer
>= 1, got 0``), without the usage block; :func:`integer` and :func:`number` are argparse
``type`` functions that enforce a range and say it.  Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import math
import re
from typing import Any, Callable, NoReturn, Sequence

#: devices a command may ask for, the default first
from pnp.devices import DEVICES  # noqa: E402 - the one list (torch-free)

DEFAULT_DEVICE = "auto"
DEFAULT_SEED = 0
DEFAULT_THREADS = 1
#: split names in the order every command lists them ("all": every sample)
SPLITS = ("test", "val", "train", "all")

_ARGUMENT = re.compile(r"^argument (\S+?)(?:/\S+)?: ")
_VERDICT = ("must ", "is ", "needs ", "applies ")


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are one line: ``PROG: error: MESSAGE``, where a
    bad value reads ``--opt must be ..., got VALUE`` (exit status 2, as argparse's)."""

    def error(self, message: str) -> NoReturn:
        m = _ARGUMENT.match(message)
        if m:  # "argument --k: must be ..." -> "--k must be ..."
            rest = message[m.end():]
            message = f"{m.group(1)}{' ' if rest.startswith(_VERDICT) else ': '}{rest}"
        if message.startswith(("unrecognized arguments", "the following arguments are required")):
            message += f" (see {self.prog} --help)"
        self.exit(2, f"{self.prog}: error: {message}\n")

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if not hasattr(namespace, "_prog"):  # the innermost sub-command parser finishes first
            namespace._prog = self.prog
        return namespace, extras

    def parse_args(self, args=None, namespace=None):
        """As argparse's, with unrecognised arguments reported by the sub-command they follow."""
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            prog = namespace._prog
            self.exit(2, f"{prog}: error: unrecognized arguments: {' '.join(extras)} (see {prog} --help)\n")
        return namespace

    def _check_value(self, action: argparse.Action, value: Any) -> None:  # argparse's hook for choices
        if action.choices is not None and value not in action.choices:
            choices = ", ".join(map(str, action.choices))
            raise argparse.ArgumentError(action, f"must be one of {choices}, got {_shown(value)}")


def _shown(text: Any) -> str:
    """``text`` as an error message shows it: bare when it is a plain word or number."""
    s = str(text)
    return s if re.fullmatch(r"[-+.\w]+", s) else repr(s)


def range_text(low: float | None, high: float | None, kind: str = "an integer", open_low: bool = False) -> str:
    """``"an integer >= 1"``, ``"an integer in [16, 1024]"``, ``"a number > 0"``, ``"a number in (0, 1]"``."""
    if low is None and high is None:
        return kind
    if high is None:
        return f"{kind} {'>' if open_low else '>='} {low:g}"
    if low is None:
        return f"{kind} <= {high:g}"
    return f"{kind} in {'(' if open_low else '['}{low:g}, {high:g}]"


def integer(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """argparse ``type``: an integer in ``[low, high]`` (either end open when ``None``)."""
    allowed = range_text(low, high)

    def parse(text: str) -> int:
        try:
            value = int(str(text).strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {_shown(text)}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {_shown(text)}")
        return value

    parse.__name__ = "integer"
    return parse


def number(low: float | None = None, high: float | None = None, open_low: bool = False) -> Callable[[str], float]:
    """argparse ``type``: a finite float in ``[low, high]`` (``(low, high]`` when ``open_low``)."""
    allowed = range_text(low, high, "a finite number", open_low)

    def parse(text: str) -> float:
        try:
            value = float(str(text).strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {_shown(text)}") from None
        bad_low = low is not None and (value <= low if open_low else value < low)
        if not math.isfinite(value) or bad_low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {_shown(text)}")
        return value

    parse.__name__ = "number"
    return parse


# ----------------------------------------------------------------------------- run-time checks
def int_option(value: Any, name: str, low: int | None = None, high: int | None = None) -> int:
    """``int(value)`` or ``ValueError`` naming ``--name`` and the allowed range (for ranges known
    only once the inputs are read, e.g. a shift below the sound's length)."""
    try:
        return integer(low, high)(value)
    except argparse.ArgumentTypeError as err:
        raise ValueError(f"--{name} {err}") from None


def float_option(value: Any, name: str, positive: bool = True) -> float:
    """``float(value)`` (finite, and > 0 when ``positive``) or ``ValueError`` naming ``--name``."""
    try:
        return number(0.0 if positive else None, open_low=positive)(value)
    except argparse.ArgumentTypeError as err:
        raise ValueError(f"--{name} {err}") from None


def choice_option(value: str, name: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``, else ``ValueError`` naming ``--name`` and them."""
    if value not in choices:
        raise ValueError(f"--{name} must be one of {', '.join(choices)}, got {_shown(value)}")
    return value


# ----------------------------------------------------------------------------- the vocabulary
def add_out(p: argparse.ArgumentParser, metavar: str = "DIR", what: str = "output directory (created if needed)",
            required: bool = True) -> None:
    p.add_argument("--out", required=required, metavar=metavar, help=what)


def add_quiet(p: argparse.ArgumentParser, what: str = "no progress bars") -> None:
    """``--quiet``, and ``--no-progress`` as a hidden deprecated alias."""
    p.add_argument("--quiet", action="store_true", help=what)
    p.add_argument("--no-progress", dest="quiet", action="store_true", help=argparse.SUPPRESS)


def add_device(p: argparse.ArgumentParser, what: str = "where the computation runs") -> None:
    p.add_argument("--device", choices=DEVICES, default=DEFAULT_DEVICE,
                   help=f"{what}: auto (default: cuda when torch sees a GPU, else cpu), cpu or cuda")


def add_seed(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--seed", type=integer(0), default=DEFAULT_SEED, metavar="S",
                   help=f"seed of {what} (integer >= 0, default {DEFAULT_SEED})")


def add_threads(p: argparse.ArgumentParser, what: str = "torch") -> None:
    p.add_argument("--threads", type=integer(1), default=DEFAULT_THREADS, metavar="T",
                   help=f"{what} threads of this process (>= 1, default {DEFAULT_THREADS}: on a shared machine "
                        "more threads spin-wait and run slower)")


def add_batch_size(p: argparse.ArgumentParser, default: int, what: str) -> None:
    """``--batch-size`` (>= 1), and ``--batch`` as a hidden deprecated alias."""
    p.add_argument("--batch-size", type=integer(1), default=default, metavar="B",
                   help=f"{what} per batch (>= 1, default {default})")
    p.add_argument("--batch", dest="batch_size", type=integer(1), help=argparse.SUPPRESS)


def add_split(p: argparse.ArgumentParser, choices: Sequence[str], default: str, what: str) -> None:
    p.add_argument("--split", choices=tuple(choices), default=default,
                   help=f"{what}: {', '.join(choices)} (default {default})")


def add_loader_workers(p: argparse.ArgumentParser) -> None:
    """``--loader-workers`` (DataLoader processes); ``--workers`` is refused with a pointer to it
    (``--workers`` means dask workers everywhere)."""
    p.add_argument("--loader-workers", type=integer(0), default=0, metavar="N",
                   help="PyTorch DataLoader worker processes (>= 0, default 0: load in this process)")
    p.add_argument("--workers", action=_Renamed, nargs="?", help=argparse.SUPPRESS,
                   new="--loader-workers", why="--workers means dask workers; the DataLoader's processes")


class _Renamed(argparse.Action):
    """A retired option: refuses itself, naming its replacement."""

    def __init__(self, option_strings: Sequence[str], dest: str, new: str = "", why: str = "", **kwargs: Any):
        super().__init__(option_strings, dest, **kwargs)
        self.new, self.why = new, why

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        raise argparse.ArgumentError(self, f"is not an option of this command ({self.why} are {self.new})")


def set_threads(threads: int) -> None:
    """Torch intra-op threads of this process (imports torch: call from a command's ``run``)."""
    import torch

    torch.set_num_threads(int(threads))
