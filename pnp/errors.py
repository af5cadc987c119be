"""How the command-line entry points report a failure: one line on stderr, never a traceback.

Shared by the ``pnp`` command (:mod:`pnp.cli`) and the workflows' module entry points
(``python -m pnp.pipelines.<workflow>``), which may not import the CLI.
"""

from __future__ import annotations

import os
import sys
from typing import Callable

#: bad input (a wrong value, type or path) and environment failures (a cluster that does not
#: start, a lost connection, an optional package missing): one line, exit status 2
REPORTED = (ValueError, TypeError, OSError, ImportError)


def one_line(err: BaseException) -> str:
    """``err`` as one line: its message with whitespace collapsed; ``path: reason`` for a file
    error; the exception's name in front of other OS and import errors (whose messages alone
    rarely say what failed)."""
    if isinstance(err, OSError) and err.strerror and err.filename:
        return f"{err.filename}: {err.strerror}"
    text = " ".join(str(err).split())
    if isinstance(err, (ValueError, TypeError, FileNotFoundError, FileExistsError, PermissionError)):
        return text or type(err).__name__
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def fail(prog: str, message: str) -> int:
    """Print ``PROG: error: MESSAGE`` on one line of stderr; returns 2."""
    print(f"{prog}: error: {' '.join(message.split())}", file=sys.stderr)
    return 2


def run_reported(prog: str, body: Callable[[], int], interrupted_hint: str = "") -> int:
    """``body()``'s exit status; a :data:`REPORTED` error becomes ``PROG: error: …`` (exit 2),
    Ctrl-C ``PROG: interrupted`` + ``interrupted_hint`` (exit 130), a closed stdout (``… | head``)
    a quiet stop (exit 0).  ``PNP_DEBUG`` set (not ``0``) re-raises the errors instead."""
    try:
        return int(body() or 0)
    except BrokenPipeError:  # the reader went away: stop quietly, as cat does
        sys.stdout = open(os.devnull, "w")
        return 0
    except REPORTED as err:
        if os.environ.get("PNP_DEBUG", "0") not in ("", "0"):
            raise
        return fail(prog, one_line(err))
    except KeyboardInterrupt:
        print(f"{prog}: interrupted{interrupted_hint}", file=sys.stderr)
        return 130


__all__ = ["REPORTED", "fail", "one_line", "run_reported"]
