"""CPU memory-allocator settings for long numeric runs (glibc's malloc; a no-op elsewhere).

The JTFS allocates and frees dozens of tensors of 1–30 MB per signal (spectra, filtered
stacks, scalogram chunks). With glibc's defaults, blocks above the mmap threshold (128 kB,
raised dynamically to at most 32 MB) are mapped fresh on every allocation, and free heap space
above the trim threshold is handed back to the kernel; either way the next tensor of that size
lands on new pages that the kernel must fault in and zero. On the 2-core CPU VM of this project
that costs about 35 % on a batch-8 JTFS forward pass and 25-30 % on a Jacobian (nothing
measurable on a batch-1 forward): ``benchmarks/jtfs.py`` with and without ``--default-malloc``.

:func:`tune_malloc` keeps those blocks inside the process: every allocation below 32 MB (the
ceiling of glibc's own dynamic threshold) comes from the heap, and freed memory stays there
for the next one.
The price is that the process keeps its peak heap size until it exits (it never gives memory
back early), which is what a precompute worker or a training process wants anyway. It is never
applied on import: the ``pnp`` command applies it to its own process (``PNP_TUNE_MALLOC=0``
turns that off), ``pnp precompute`` to the workers of its embedded cluster (not to the workers
of a cluster it attaches to, unless ``--tune-malloc``; for ``dask worker`` processes, set
``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` in their environment instead), the
benchmarks to themselves; a library user may call it once at start-up.
"""

from __future__ import annotations

import ctypes
import sys

#: glibc's ``mallopt`` parameter numbers (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
#: blocks below this are served from the heap: glibc's ceiling for its own dynamic threshold
#: on 64-bit systems (``mallopt`` accepts larger values; 1 GB showed no clear gain for the JTFS
#: in our measurements while it would keep multi-GB arrays on the heap too)
MMAP_THRESHOLD = 32 * 1024 * 1024
#: free heap space kept at the top of the heap instead of being returned to the kernel
TRIM_THRESHOLD = 1 << 30
#: extra space requested from the kernel each time the heap grows
TOP_PAD = 64 * 1024 * 1024

_STATE: dict[str, bool | None] = {"tuned": None}


def tune_malloc() -> bool:
    """Apply the settings above once per process; returns True where they took effect (Linux
    with glibc), False elsewhere (macOS, Windows, musl: nothing is changed)."""
    if _STATE["tuned"] is not None:
        return _STATE["tuned"]
    ok = False
    if sys.platform.startswith("linux"):
        try:
            mallopt = ctypes.CDLL(None).mallopt  # the C library the process already uses
            mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
            settings = ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD), (_M_TOP_PAD, TOP_PAD))
            accepted = [mallopt(param, value) == 1 for param, value in settings]  # every one, even after a refusal
            ok = all(accepted)
        except (OSError, AttributeError):
            ok = False
    _STATE["tuned"] = ok
    return ok
