"""A spec's store before it is computed: its samples and folds, K, the arrays and their size on
disk, and the precompute time, projected from computing a few samples here
(:func:`project`; ``pnp spec check`` prints it).

The size on disk is the arrays' raw size (exact: :func:`array_shapes`) times each array's
compression ratio under the spec's codec, measured on the computed samples (and on the first
chunk of the layout arrays), plus the 4-byte ``crc32c`` checksum of every chunk: a projection, as
compression depends on the data.  The time is the number of samples times the seconds per sample
of ``timed_samples`` samples computed after one untimed warm-up sample (which pays the one-off
costs: filters, plans) on ``device`` in this process: one worker's time (with ``W`` workers of the
same speed, about a ``W``-th of it).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from pnp.store import DONE, schema, shapes
from pnp.store.codes import SPLIT_NAMES

#: bytes of the crc32c checksum stored with every chunk of every array
CHECKSUM_BYTES = 4


@dataclass(frozen=True)
class StoreProjection:
    """What :func:`project` found.

    ``split_counts``: samples per fold name (train, val, test); ``arrays``: name → (shape, dtype);
    ``raw_bytes``: their uncompressed size; ``disk_bytes``: the projected size on disk (None when
    no sample was computed); ``seconds_per_sample``: measured on ``timed_samples`` samples on
    ``device`` (None when none was timed)."""

    n_samples: int
    params: tuple[str, ...]
    split_counts: dict[str, int]
    n_coefs: int
    n_time: int
    chunk_size: int
    arrays: dict[str, tuple[tuple[int, ...], str]]
    raw_bytes: int
    disk_bytes: int | None
    codec: str
    timed_samples: int
    seconds_per_sample: float | None
    device: str
    ratios: dict[str, float] = field(default_factory=dict)

    @property
    def n_chunks(self) -> int:
        return math.ceil(self.n_samples / self.chunk_size)

    @property
    def precompute_seconds(self) -> float | None:
        """Projected precompute time of the whole store on one worker like this process."""
        return None if self.seconds_per_sample is None else self.n_samples * self.seconds_per_sample


def array_shapes(spec, n_params: int, n_coefs: int, n_time: int) -> dict[str, tuple[tuple[int, ...], str]]:
    """Name → (shape, dtype) of every array of ``spec``'s store (as :func:`pnp.store.create_store`
    makes them)."""
    st = spec.store
    sizes = shapes(spec.n_samples, n_params, n_coefs, n_time if st["audio"] else None)
    return {name: (tuple(sizes[d] for d in a.dims), a.dtype)
            for name, a in schema(jacobian=st["jacobian"], audio=st["audio"]).items()}


def _compressor(codec: str, level: int) -> Callable[[np.ndarray], int] | None:
    """Compressed size in bytes of an array under the store's codec (None for ``"none"``): the
    same compressors as :func:`pnp.store.create_store` (blosc with zstd and byte shuffle, or zstd)."""
    from numcodecs import Blosc, Zstd

    if codec == "none":
        return None
    coder = Blosc(cname="zstd", clevel=level, shuffle=Blosc.SHUFFLE) if codec == "blosc-zstd" else Zstd(level=level)
    return lambda a: len(coder.encode(np.ascontiguousarray(a)))


def _layout_rows(spec, n: int) -> dict[str, np.ndarray]:
    lay = spec.layout()
    return {"theta": lay.theta[:n].astype(np.float64), "nu": lay.nu[:n].astype(np.float32),
            "bin": lay.bins[:n].astype(np.int32), "split": lay.split[:n].astype(np.int8),
            "status": np.full(min(n, len(lay)), DONE, dtype=np.uint8)}


def disk_bytes(spec, arrays: dict[str, tuple[tuple[int, ...], str]], computed: dict[str, np.ndarray]
               ) -> tuple[int, dict[str, float]]:
    """Projected bytes on disk of ``arrays`` and each array's compression ratio, from the rows of
    ``computed`` (the computed arrays of a few samples) and the first chunk of the layout."""
    st = spec.store
    compressed = _compressor(st["codec"], st["level"])
    rows = {**_layout_rows(spec, st["chunk_size"]), **computed}
    n_chunks = math.ceil(spec.n_samples / st["chunk_size"])
    total, ratios = 0, {}
    for name, (shape, dtype) in arrays.items():
        raw = math.prod(shape) * np.dtype(dtype).itemsize
        sample = rows[name]
        ratios[name] = 1.0 if compressed is None or sample.nbytes == 0 else compressed(sample) / sample.nbytes
        total += round(raw * ratios[name]) + n_chunks * CHECKSUM_BYTES
    return total, ratios


def _forward_width(engine) -> int:
    """K from one forward pass at the centre of the space (no Jacobian)."""
    import torch

    param = engine.parametrization
    with torch.no_grad():
        nu = torch.zeros(1, param.dim, dtype=engine.dtype, device=engine.device)
        x = engine.synth(param.theta(nu), validate=False).to(engine.representation_dtype)
        return int(engine.representation.features(x).shape[1])


def _timed(engine, warm_up: np.ndarray, theta: np.ndarray, clock: Callable[[], float]
           ) -> tuple[dict[str, np.ndarray], float]:
    """The computed arrays of ``warm_up`` and ``theta`` (rows concatenated) and the seconds per
    sample of ``theta``, computed after ``warm_up``."""
    from pnp.store.compute import compute_block

    warm, _ = compute_block(engine, warm_up)
    t0 = clock()
    data, _ = compute_block(engine, theta)
    seconds = (clock() - t0) / len(theta)
    return {k: np.concatenate([warm[k], v]) for k, v in data.items()}, seconds


def project(spec, device: str = "cpu", timed_samples: int = 1, clock: Callable[[], float] = time.perf_counter
            ) -> StoreProjection:
    """Project ``spec``'s store (see the module docs): computes ``timed_samples`` samples (the
    first ones of the layout, at most all of them; 0: none, K from one forward pass) after one
    warm-up sample (the last one) on
    ``device`` ("cpu", "cuda", "cuda:1"; resolve "auto" with
    :func:`pnp.devices.resolve_device`)."""
    from pnp.store.compute import build_engine

    if isinstance(timed_samples, bool) or not isinstance(timed_samples, int):
        raise TypeError(f"timed_samples must be an integer >= 0, got {timed_samples!r}")
    if timed_samples < 0:
        raise ValueError(f"timed_samples must be an integer >= 0, got {timed_samples!r}")
    engine = build_engine(spec, device)
    lay = spec.layout()
    n_timed = min(timed_samples, len(lay))
    computed: dict[str, np.ndarray] = {}
    seconds: float | None = None
    if n_timed:
        computed, seconds = _timed(engine, lay.theta[-1:], lay.theta[:n_timed], clock)
        n_coefs = int(computed["features"].shape[1])
    else:
        n_coefs = _forward_width(engine)
    n_time = int(engine.synth.n_samples)
    arrays = array_shapes(spec, lay.theta.shape[1], n_coefs, n_time)
    raw = sum(math.prod(shape) * np.dtype(dtype).itemsize for shape, dtype in arrays.values())
    disk, ratios = disk_bytes(spec, arrays, computed) if n_timed else (None, {})
    codes = np.bincount(lay.split, minlength=3)
    return StoreProjection(
        n_samples=len(lay), params=tuple(engine.parametrization.free),
        split_counts={name: int(codes[i]) for i, name in enumerate(SPLIT_NAMES)}, n_coefs=n_coefs, n_time=n_time,
        chunk_size=spec.store["chunk_size"], arrays=arrays, raw_bytes=raw, disk_bytes=disk,
        codec=spec.store["codec"], timed_samples=n_timed, seconds_per_sample=seconds, device=str(device),
        ratios=ratios,
    )


def to_dict(p: StoreProjection) -> dict[str, Any]:
    """JSON-able form (shapes as lists), with ``n_chunks`` and ``precompute_seconds``."""
    return {
        "n_samples": p.n_samples, "params": list(p.params), "split_counts": p.split_counts, "n_coefs": p.n_coefs,
        "n_time": p.n_time, "chunk_size": p.chunk_size, "n_chunks": p.n_chunks,
        "arrays": {k: {"shape": list(s), "dtype": d} for k, (s, d) in p.arrays.items()},
        "raw_bytes": p.raw_bytes, "disk_bytes": p.disk_bytes, "codec": p.codec, "compression_ratios": p.ratios,
        "timed_samples": p.timed_samples, "seconds_per_sample": p.seconds_per_sample,
        "precompute_seconds": p.precompute_seconds, "device": p.device,
    }
