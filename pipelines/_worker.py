"""What runs inside a dask worker for ``pnp precompute``: one task = one store chunk.

:func:`run_chunk` is the task.  Each worker process builds the synth, the representation and
the parametrization **once** (cached in the module-level :data:`_ENGINES`, keyed by the spec
hash, device and dtype) and opens the store once; every task then reads its chunk's θ, computes
features / Jacobian / metric / eigenvalues with :mod:`pnp.jacobian`, and writes the chunk with
:func:`pnp.store.write_chunk` (data first, ``status`` last).  No maths lives here.

Samples whose features, Jacobian, metric, eigenvalues or audio are not finite (after the cast
to the stored dtype) are marked ``FAILED`` and their values stored as NaN.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

#: per-process cache: (spec hash, batch size, device, store path) → _WorkerState
_ENGINES: dict[tuple, "_WorkerState"] = {}
_LOCK = threading.Lock()
#: how many times this process built an engine (tests/benchmarks check it stays at 1)
BUILD_COUNT = {"n": 0}


@dataclass
class Engine:
    """The per-worker computing objects of a spec."""

    synth: Any
    representation: Any
    parametrization: Any
    device: Any  # torch.device
    dtype: Any  # torch.dtype of nu, theta and the synth
    representation_dtype: Any  # torch.dtype of the representation (differs in mixed precision)
    batch_size: int
    jacobian: bool
    audio: bool


@dataclass
class _WorkerState:
    engine: Engine
    group: Any


def resolve_device(device: str) -> str:
    """'auto' → 'cuda' if available else 'cpu'; 'cuda' without CUDA → ``ValueError``."""
    import torch

    if device not in ("auto", "cpu", "cuda") and not str(device).startswith("cuda:"):
        raise ValueError(f"--device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: CUDA is not available here (torch.cuda.is_available() is False)")
    return device


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


def describe_device(device: str) -> str:
    """Human description, e.g. 'cpu' or 'cuda:0 (NVIDIA H100)'."""
    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available():
        d = torch.device(device)
        index = d.index if d.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return str(device)


def build_engine(spec, device: str = "cpu") -> Engine:
    """Synth, representation and parametrization of ``spec`` on ``device``."""
    import torch

    synth = spec.build_synth()
    rep = spec.build_representation(synth)
    dev = torch.device(device)
    return Engine(
        synth=synth.to(dev),
        representation=rep.to(dev),
        parametrization=spec.parametrization(synth),
        device=dev,
        dtype=spec.dtype,
        representation_dtype=spec.representation_dtype,
        batch_size=spec.compute["batch_size"],
        jacobian=spec.store["jacobian"],
        audio=spec.store["audio"],
    )


def compute_block(engine: Engine, theta: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Compute the stored arrays for free-parameter values ``theta`` (B, P) float64.

    Returns ``(data, ok)``: ``data`` maps array names to numpy arrays in their stored dtypes
    (``features`` (B, K) float32, ``jacobian`` (B, K, P) float32, ``metric`` (B, P, P) float64,
    ``eigvals`` (B, P) float64, ``audio`` (B, N) float32 as configured) with NaN rows for the
    samples that are not finite; ``ok`` (B,) bool marks the finite samples.  The input of the
    computation is ν = normalize(θ) (float64) rounded to the spec's compute dtype.
    """
    import torch

    from pnp.jacobian import eigenvalues, features_and_jacobian, metric

    param = engine.parametrization
    nu = torch.as_tensor(np.asarray(param.nu(np.asarray(theta, dtype=np.float64))), dtype=engine.dtype)
    nu = nu.to(engine.device)
    S, J = features_and_jacobian(
        engine.synth, engine.representation, nu, batch_size=engine.batch_size,
        jacobian=engine.jacobian, parametrization=param, representation_dtype=engine.representation_dtype,
    )
    data: dict[str, np.ndarray] = {"features": S.to(torch.float32).cpu().numpy()}
    ok = np.isfinite(data["features"]).all(axis=1)
    if engine.jacobian:
        M = metric(J)
        data["jacobian"] = J.to(torch.float32).cpu().numpy()
        data["metric"] = M.cpu().numpy()
        data["eigvals"] = eigenvalues(M).cpu().numpy()
        ok &= np.isfinite(data["jacobian"]).all(axis=(1, 2))
        ok &= np.isfinite(data["metric"]).all(axis=(1, 2)) & np.isfinite(data["eigvals"]).all(axis=1)
    if engine.audio:
        with torch.no_grad():
            x = engine.synth(param.theta(nu), validate=False)
        data["audio"] = x.to(torch.float32).cpu().numpy()
        ok &= np.isfinite(data["audio"]).all(axis=1)
    for value in data.values():
        value[~ok] = np.nan
    return data, ok


def process_chunk(group, chunk: int, engine: Engine) -> dict[str, Any]:
    """Compute chunk ``chunk`` of the store ``group`` and write it (data, then status).

    Returns ``{"chunk", "start", "stop", "done", "failed": [sample indices], "seconds"}``.
    """
    from pnp.store import DONE, FAILED, chunk_size_of, write_chunk

    t0 = time.perf_counter()
    c = chunk_size_of(group)
    n = group["status"].shape[0]
    start, stop = chunk * c, min(chunk * c + c, n)
    theta = np.asarray(group["theta"][start:stop], dtype=np.float64)
    data, ok = compute_block(engine, theta)
    write_chunk(group, chunk, data, np.where(ok, DONE, FAILED).astype(np.uint8))
    return {
        "chunk": chunk,
        "start": start,
        "stop": stop,
        "done": int(ok.sum()),
        "failed": [int(start + i) for i in np.flatnonzero(~ok)],
        "seconds": time.perf_counter() - t0,
    }


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
           torch_threads: int | None) -> _WorkerState:
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
) -> dict[str, Any]:
    """The dask task: compute and write one chunk; returns :func:`process_chunk`'s summary
    plus ``cpu_seconds`` (CPU time of the task's thread), ``device``, ``pid``, ``maxrss`` (peak resident memory of this worker, bytes) and
    ``builds`` (engines built by this worker process so far)."""
    state = _state(store, storage_options, spec_dict, spec_hash, device, torch_threads)
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
