"""``python -m pnp.pipelines.<workflow>`` entry points: bad inputs and failures as one line.

The ``pnp`` command (:mod:`pnp.cli`) reports its sub-commands' failures the same way, with the
same library helper (:func:`pnp.errors.run_reported`); these module entry points are for the
experiment drivers that have no sub-command.
"""

from __future__ import annotations

from typing import Callable


def run(prog: str, body: Callable[[], int]) -> int:
    """``body()``; a ``ValueError`` / ``TypeError`` / ``OSError`` / ``ImportError`` is printed as
    ``prog: error: …`` (one line, exit 2), Ctrl-C as ``prog: interrupted`` (exit 130).
    ``PNP_DEBUG=1`` re-raises."""
    from pnp.errors import run_reported

    return run_reported(prog, body)
