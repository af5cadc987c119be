"""Named failpoints for pnp's fault-injection tests.

:func:`failpoint` is a no-op unless the environment variable ``PNP_FAILPOINT`` names the point:
``PNP_FAILPOINT=name`` kills the calling process's whole process group with ``SIGKILL`` at the
first pass, ``name@k`` at the k-th pass in that process (for example the second chunk a worker
writes); ``name@k:sleep=S`` holds the process there for S seconds instead (so that a test can
interrupt it at a known point), writing the file named by ``PNP_FAILPOINT_READY`` first.  The points mark the phases of store creation and writing (``directory-created``,
``marker-written``, ``group-created``, ``arrays-created``, ``split-written``, ``ready``, ``wipe``,
``data-before-status``, ``chunk-done``, ``run-end``); a test starts ``pnp precompute`` in its own
session with the variable set, then checks that the next run resumes to an identical store.
"""

from __future__ import annotations

import os
import signal
import time

ENV = "PNP_FAILPOINT"
#: with ``:sleep=S``, a file that the failpoint writes (its process id) once the process is held
READY_ENV = "PNP_FAILPOINT_READY"
_passes: dict[str, int] = {}


def failpoint(name: str) -> None:
    """Kill the process group here if ``PNP_FAILPOINT`` names ``name`` (see the module docs)."""
    want = os.environ.get(ENV)
    if not want:
        return
    want, _, action = want.partition(":")
    point, _, count = want.partition("@")
    if point != name:
        return
    _passes[name] = _passes.get(name, 0) + 1
    if _passes[name] != (int(count) if count.isdigit() else 1):
        return
    if action.startswith("sleep="):  # hold the process here (a test interrupts it meanwhile)
        ready = os.environ.get(READY_ENV)
        if ready:  # tell the test that the process is now held here
            with open(ready, "w") as fh:
                fh.write(str(os.getpid()))
        time.sleep(float(action[len("sleep="):]))
        return
    os.killpg(os.getpgrp(), signal.SIGKILL)
