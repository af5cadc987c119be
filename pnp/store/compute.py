"""The numbers a precompute store holds, for a block of θ: the engine of a spec (synth,
representation, parametrization on a device) and :func:`compute_block` (features, Jacobian,
metric, eigenvalues, audio in their stored dtypes), and :func:`process_chunk`, which computes one
chunk of a store and writes it with the store's write protocol (data first, ``status`` last).

The dask task that calls :func:`process_chunk` on a worker is
:func:`pnp.pipelines._worker.run_chunk`; ``pnp store verify --recompute`` calls
:func:`compute_block` directly.  Samples whose results are not finite (after the cast to the
stored dtype) are marked failed and stored as NaN.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping, TextIO

import numpy as np

from pnp.devices import resolve_device  # noqa: F401 - re-exported (workers, spec check)
from pnp.store import (
    create_store,
    directory_state,
    finish_creation,
    normalise_path,
    open_group,
    provenance,
    refuse_foreign,
    validate_store,
)


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
        assert J is not None  # features_and_jacobian(..., jacobian=True)
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


# ------------------------------------------------------------------------------ create or reopen
def _n_coefs(synth, rep, param) -> int:
    """K, from one forward pass at the centre of the space (float32, CPU)."""
    import torch

    with torch.no_grad():
        nu = torch.zeros(1, param.dim, dtype=torch.float32)
        return int(rep.features(synth(param.theta(nu), validate=False)).shape[1])


def prepare_store(spec, path: str, device: str, storage_options: Mapping | None = None,
                  out: TextIO | None = None):
    """Create the store for ``spec`` or reopen it for resuming; returns ``(group, created)``.

    The caller holds the writer lock (:class:`pnp.store.lock.WriterLock`).  Refuses
    (``ValueError``) a store created from another spec, naming the differing fields;
    ``FileExistsError`` when ``path`` holds files pnp did not write or damaged group metadata.
    An unfinished creation (killed at any point) is started again.
    """
    path = normalise_path(path)
    state = directory_state(path, storage_options)
    refuse_foreign(path, state)
    if state == "ready":
        group = open_group(path, "r+", storage_options)
        stored = dict(group.attrs).get("spec", {})
        diff = spec.diff(stored)
        if diff:
            raise ValueError(
                f"the store {path} was created from a different spec ({stored.get('name', '?')!r}); "
                f"differing fields: {'; '.join(diff)}. Use the original spec to resume, or another store path"
            )
        validate_store(group, path)
        finish_creation(path, storage_options)  # a creation killed after 'ready'
        return group, False
    if state == "creating" and out:
        print(f"store {path}: creation was interrupted, creating it again", file=out)
    synth = spec.build_synth()
    rep = spec.build_representation(synth)
    param = spec.parametrization(synth)
    K = _n_coefs(synth, rep, param)
    attrs = provenance(spec, synth, rep, param, K, device)
    n_time = synth.n_samples if spec.store["audio"] else None
    group = create_store(path, spec, attrs, K, n_time=n_time, storage_options=storage_options)
    return group, True
