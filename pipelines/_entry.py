"""``python -m pnp.pipelines.<workflow>`` entry points: bad inputs and failures as one line.

The ``pnp`` command (:mod:`pnp.cli`) does the same for its sub-commands; these module entry
points are for the experiment drivers that have no sub-command.
"""

from __future__ import annotations

import os
import sys
from typing import Callable


def run(prog: str, body: Callable[[], int]) -> int:
    """``body()``; a ``ValueError`` / ``TypeError`` / ``OSError`` is printed as ``prog: error: …``
    (one line, exit 2), Ctrl-C as ``prog: interrupted`` (exit 130).  ``PNP_DEBUG=1`` re-raises."""
    try:
        return body()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError) as err:
        if os.environ.get("PNP_DEBUG") == "1":
            raise
        text = " ".join(str(err).split()) or type(err).__name__
        if isinstance(err, OSError) and err.strerror and err.filename:
            text = f"{err.filename}: {err.strerror}"
        print(f"{prog}: error: {text}", file=sys.stderr)
        return 2
