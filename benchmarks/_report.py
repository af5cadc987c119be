"""The header every benchmark JSON starts with: the command that made it, when, on what machine."""

from __future__ import annotations

import datetime
import os
import platform
import sys
from typing import Any, Sequence


def header(script: str, argv: Sequence[str] | None = None) -> dict[str, Any]:
    """``command`` (``python benchmarks/<script> <args>``), ``date`` (UTC, ISO 8601) and
    ``machine`` (platform, processor, CPU count, 1-minute load average now, torch version)."""
    args = list(argv) if argv is not None else sys.argv[1:]
    try:
        import torch

        torch_version: str | None = torch.__version__
        cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:  # pragma: no cover - every benchmark here needs torch
        torch_version, cuda = None, None
    return {
        "command": " ".join(["python", f"benchmarks/{script}", *args]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "load_average_before": os.getloadavg()[0], "torch": torch_version,
                    "cuda_device": cuda},
    }
