"""What runs inside a dask worker for ``pnp precompute``: one task = one store chunk.

:func:`run_chunk` is the task.  Each worker process builds the engine of the spec **once**
(:func:`pnp.store.compute.build_engine`, cached in the module-level :data:`_ENGINES`, keyed by
the spec hash, batch size, device and store) and opens the store once; every task then calls
:func:`pnp.store.compute.process_chunk`, which computes the chunk's numbers and writes them
(data first, ``status`` last).  No maths lives here: only the per-worker state, the device of
the worker and its threads.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Mapping

from pnp.store.compute import (  # noqa: F401 - the task's building blocks, re-exported
    Engine,
    build_engine,
    compute_block,
    describe_device,
    process_chunk,
    resolve_device,
)

#: per-process cache: (spec hash, batch size, device, store path) → _WorkerState
_ENGINES: dict[tuple, "_WorkerState"] = {}
_LOCK = threading.Lock()
#: how many times this process built an engine (tests/benchmarks check it stays at 1)
BUILD_COUNT = {"n": 0}


@dataclass
class _WorkerState:
    engine: Engine
    group: Any


def _worker_device(device: str) -> str:
    """Device of this worker.  With several visible GPUs and no dask-cuda (which gives every
    worker exactly one), worker ``i`` of a LocalCluster uses GPU ``i mod n_gpus``."""
    import torch

    device = resolve_device(device)
    if device == "cuda" and torch.cuda.device_count() > 1:
        try:
            from distributed import get_worker

            name = get_worker().name
            index = int(name) if str(name).isdigit() else abs(hash(name))
        except (ValueError, ImportError):
            index = 0
        return f"cuda:{index % torch.cuda.device_count()}"
    return device


def _torch_threads(requested: int | None) -> int:
    """Intra-op torch threads per task: ``PNP_TORCH_THREADS`` if set, else ``requested``, else 1.

    One thread per task, with parallelism from dask (one task per core), is the fastest on
    CPU: torch's intra-op threading of the many small JTFS operations costs more than it gains
    (measured 5x slower with 2 threads on a busy 2-core machine).
    """
    env = os.environ.get("PNP_TORCH_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            pass
    return max(1, int(requested)) if requested else 1


def _state(store: str, storage_options: Mapping | None, spec_dict: dict, spec_hash: str, device: str,
           torch_threads: int | None, malloc: bool = True) -> _WorkerState:
    key = (spec_hash, spec_dict["compute"]["batch_size"], device, store)
    state = _ENGINES.get(key)
    if state is not None:
        return state
    with _LOCK:
        state = _ENGINES.get(key)
        if state is None:
            import torch

            from pnp.allocator import tune_malloc
            from pnp.spec import DatasetSpec
            from pnp.store import open_group

            torch.set_num_threads(_torch_threads(torch_threads))
            if malloc:
                tune_malloc()  # keep the JTFS's large temporaries on the heap (see pnp.allocator)
            spec = DatasetSpec.from_dict(spec_dict)
            if spec.hash != spec_hash:
                raise ValueError(f"spec hash mismatch on the worker ({spec.hash} != {spec_hash}): "
                                 "driver and workers run different pnp versions")
            engine = build_engine(spec, _worker_device(device))
            group = open_group(store, "r+", storage_options)
            state = _WorkerState(engine=engine, group=group)
            _ENGINES[key] = state
            BUILD_COUNT["n"] += 1
    return state


def _maxrss() -> int:
    """Peak resident memory of this process in bytes (0 where unknown, e.g. Windows)."""
    try:
        import resource
    except ImportError:  # pragma: no cover
        return 0
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def run_chunk(
    store: str,
    storage_options: Mapping | None,
    spec_dict: dict,
    spec_hash: str,
    chunk: int,
    device: str = "auto",
    torch_threads: int | None = None,
    malloc: bool = True,
) -> dict[str, Any]:
    """The dask task: compute and write one chunk (``malloc``: apply
    :func:`pnp.allocator.tune_malloc` in this worker process first); returns :func:`process_chunk`'s summary
    plus ``cpu_seconds`` (CPU time of the task's thread), ``device``, ``pid``, ``maxrss`` (peak resident memory of this worker, bytes) and
    ``builds`` (engines built by this worker process so far)."""
    state = _state(store, storage_options, spec_dict, spec_hash, device, torch_threads, malloc)
    cpu0 = time.thread_time()
    out = process_chunk(state.group, chunk, state.engine)
    out.update(
        cpu_seconds=time.thread_time() - cpu0,
        device=describe_device(str(state.engine.device)),
        pid=os.getpid(),
        maxrss=_maxrss(),
        builds=BUILD_COUNT["n"],
    )
    return out
