"""One writer per store: an OS file lock inside the store directory, and the holder's record.

``pnp precompute`` and ``pnp store verify --repair`` hold :class:`WriterLock` for as long as they
may write.  The lock is ``STORE/.pnp.lock`` taken with :mod:`filelock` (``flock(2)`` on POSIX):
the kernel releases it when the holding process ends, however it ends, so a lock is never left
behind by a killed run.  Beside it, ``STORE/.pnp-writer.json`` records the holder (host, process
id, start time, command) so that a refused second writer can name it, and so that the next
holder can say that it takes over from a run that died (the record is still there, the lock is
free) — a warning, not an error.

Shared filesystems: on NFSv4 and Lustre ``flock`` is enforced across hosts (with the default
``local_lock=none`` / ``flock`` mount options); on NFSv3 without a lock manager, or a filesystem
mounted with ``local_lock=all`` / ``localflock``, it holds on one host only, and two hosts could
write at once — mount with cross-host locks, or run one writer per store.  Object storage
(``s3://``, ``gs://``, …) has no lock at all: :meth:`WriterLock.acquire` says so once and lets
the run go on; run one writer per store there.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from filelock import BaseFileLock

#: file names inside a store directory (pnp's own, never touched by zarr)
LOCK_FILE = ".pnp.lock"
HOLDER_FILE = ".pnp-writer.json"


class StoreBusyError(ValueError):
    """Another process is writing the store."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_holder(path: str) -> dict[str, Any] | None:
    """The holder record of the store directory ``path`` (None if absent or unreadable)."""
    try:
        with open(os.path.join(path, HOLDER_FILE), encoding="utf-8") as fh:
            value = json.load(fh)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def describe_holder(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "another process (no holder record)"
    return (f"{holder.get('command', 'a pnp command')} (pid {holder.get('pid', '?')} on host "
            f"{holder.get('host', '?')}, since {holder.get('started', '?')})")


class WriterLock:
    """The writer lock of the local store directory ``path`` (a context manager).

    ``acquire()`` never waits: a store held by a live process raises :class:`StoreBusyError`
    naming the holder.  URLs (object storage) are not locked (see the module docs).
    """

    def __init__(self, path: str, command: str = "pnp precompute"):
        from pnp.store import is_url, normalise_path

        self.path = normalise_path(path)
        self.command = command
        self.url = is_url(self.path)
        self._lock: BaseFileLock | None = None
        #: the record of a dead previous holder that this lock took over from (None otherwise)
        self.took_over: dict[str, Any] | None = None

    @property
    def held(self) -> bool:
        return self._lock is not None and self._lock.is_locked

    def acquire(self) -> "WriterLock":
        if self.url:
            warnings.warn(f"{self.path}: object storage has no lock; make sure that only one run writes this store",
                          stacklevel=2)
            return self
        from filelock import FileLock, Timeout

        from pnp.store import now

        if not os.path.isdir(self.path):
            raise FileNotFoundError(f"no store directory at {self.path}")
        lock = FileLock(os.path.join(self.path, LOCK_FILE), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise StoreBusyError(f"the store {self.path} is in use by {describe_holder(read_holder(self.path))}; "
                                 "wait for it to finish (one writer per store)") from None
        except OSError as err:
            raise PermissionError(f"cannot lock the store at {self.path}: {err.strerror or err}") from None
        previous = read_holder(self.path)
        if previous and not (previous.get("host") == socket.gethostname() and previous.get("pid") == os.getpid()):
            self.took_over = previous
            here = previous.get("host") == socket.gethostname() and isinstance(previous.get("pid"), int)
            why = "is no longer running" if here and not _pid_alive(previous["pid"]) else "no longer holds the lock"
            warnings.warn(f"{self.path}: taking over the writer lock from {describe_holder(previous)}, which {why}",
                          stacklevel=2)
        record = {"host": socket.gethostname(), "pid": os.getpid(), "started": now(), "command": self.command,
                  "argv": list(sys.argv)}
        try:
            tmp = os.path.join(self.path, HOLDER_FILE + f".{os.getpid()}.tmp")
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(record, fh)
            os.replace(tmp, os.path.join(self.path, HOLDER_FILE))
        except OSError as err:
            lock.release()
            raise PermissionError(f"cannot write the lock record of the store at {self.path}: "
                                  f"{err.strerror or err}") from None
        self._lock = lock
        return self

    def release(self) -> None:
        if self._lock is None:
            return
        try:
            os.remove(os.path.join(self.path, HOLDER_FILE))
        except OSError:
            pass  # a read-only or full filesystem: the next holder takes over with a warning
        self._lock.release()
        self._lock = None

    def __enter__(self) -> "WriterLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
