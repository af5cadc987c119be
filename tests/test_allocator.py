"""pnp.allocator: glibc malloc settings apply on Linux/glibc, once, and never raise elsewhere."""

from __future__ import annotations

import platform
import subprocess
import sys


def test_tune_malloc_applies_on_glibc_and_is_idempotent():
    """In a fresh process: True on Linux with glibc (every mallopt call accepted), the same
    answer on a second call, and a large allocate/free/allocate cycle still works."""
    code = (
        "import torch; from pnp.allocator import tune_malloc;"
        "a = tune_malloc(); b = tune_malloc();"
        "x = torch.ones(2**23); del x; y = torch.zeros(2**23);"
        "print(a, b, float(y.sum()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    a, b, total = out.stdout.split()
    assert a == b
    assert float(total) == 0.0
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert a == str(glibc)
