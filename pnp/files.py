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


def check_output_path(path: str | os.PathLike, option: str, directory: bool = True) -> None:
    """Raise ``ValueError`` (naming ``option``) unless ``path`` can be created or written:
    ``path`` itself, if it exists, is a directory (``directory``) or a regular file (otherwise),
    and its nearest existing ancestor is a writable directory.  Creates nothing: call it before
    any work, so that a refused command leaves nothing behind."""
    full = os.path.abspath(os.fspath(path))
    if os.path.exists(full):
        if directory and not os.path.isdir(full):
            raise ValueError(f"{option} {path}: exists and is not a directory")
        if not directory and os.path.isdir(full):
            raise ValueError(f"{option} {path}: is a directory, expected a file path")
        target = full if directory else os.path.dirname(full)
    else:
        target = os.path.dirname(full)
        while not os.path.exists(target):
            target = os.path.dirname(target)
        if not os.path.isdir(target):
            raise ValueError(f"{option} {path}: {target} is a regular file, not a directory")
    if not os.access(target, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {path}: directory {target} is not writable")
