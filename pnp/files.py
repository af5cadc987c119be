"""Atomic file output: a result is written to a temporary file in the same directory and renamed
into place, so an interrupted run never leaves a half-written report, figure or checkpoint."""

from __future__ import annotations

import json
import os
from typing import Any, Callable


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any]) -> None:
    """Create ``path``'s directory, call ``write(tmp_path)``, then rename ``tmp_path`` to ``path``.

    ``tmp_path`` keeps ``path``'s extension (writers such as ``np.savez`` and ``fig.savefig``
    read the format from it); it is removed if ``write`` fails."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    root, ext = os.path.splitext(path)
    tmp = f"{root}.tmp{os.getpid()}{ext}"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path: str | os.PathLike, data: Any) -> None:
    """``data`` as indented JSON (with a final newline) at ``path``, atomically."""
    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")

    atomic_write(path, write)
