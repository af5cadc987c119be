"""Chunked reading of store features for the geometry evaluations (k-NN, embeddings).

Stores are opened with :func:`pnp.store.open_store` (the one store reader, :class:`pnp.store.Store`:
code tables, θ / ν / metric as numpy float64, checked reads).  This module adds what the blocked
geometry computations need on top:

* :func:`feature_rows` — a lazy (n, K) float32 selection (:class:`Rows`) of a store's **dask**
  features array, never loaded whole, read by windows of whole chunks;
* :func:`read_rows` — one checked block of rows of a numpy, dask or :class:`Rows` array;
* :func:`block_rows` — the rows per tile of the blocked distance computations;
* :func:`same_grid` — whether several stores describe the same grid (for comparisons).

The per-sample arrays θ, ν, M are small (S × P² × 8 bytes at most: 20 MB for 10⁵ samples and
5 parameters) and are read whole; the features (S × K × 4 bytes: 1.45 GB for the PNP FTM set,
808 MB for the DAFx grid under MSS) are only ever read by row blocks.  Only done samples are
used (:meth:`pnp.store.Store.indices`); :func:`read_rows` checks that a block is finite and
names the first offending sample otherwise.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from pnp.store.reader import WINDOW_BYTES, Rows, is_lazy  # noqa: F401 - re-exported

#: default budget of one float64 tile of rows (bytes): block rows = budget / (8 K), in [16, 1024]
TILE_BYTES = 2**25


def block_rows(n_features: int, block_size: int | None = None) -> int:
    """Rows per tile of the blocked computations for ``n_features`` columns.

    ``block_size`` given: that number (validated).  Otherwise ``TILE_BYTES / (8 K)`` clipped to
    [16, 1024]: 1024 rows up to K = 4096, 85 rows for K = 49,320 (a 32 MiB float64 tile).
    """
    if block_size is not None:
        if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
            raise ValueError(f"block_size must be an integer >= 1 (rows per tile), got {block_size!r}")
        return int(block_size)
    return int(np.clip(TILE_BYTES // (8 * max(int(n_features), 1)), 16, 1024))


def read_rows(x: Any, start: int, stop: int, name: str = "features", ids: np.ndarray | None = None,
              dtype=None) -> np.ndarray:
    """Rows ``start:stop`` of ``x`` (numpy, dask or :class:`Rows`, (n, K)) as a numpy array of
    ``dtype`` (default: x's), checked finite.

    A lazy array is computed for that slice only (the chunks it touches are read and
    decompressed).  ``ids`` (n,) are the store indices of the rows, to name a non-finite sample.
    """
    if ids is None and isinstance(x, Rows):  # rows selected from a store: name the store's samples
        ids = x.idx
    block = x[start:stop]
    try:
        if isinstance(block, Rows):
            block = block.compute(dtype)
        else:
            block = np.asarray(block.compute() if is_lazy(block) else block)
            block = block if dtype is None else block.astype(dtype, copy=False)
    except Exception as err:  # noqa: BLE001 - a chunk that cannot be read or decoded
        raise _unreadable(name, err, ids, start, stop) from None
    if block.dtype.kind != "f":
        raise ValueError(f"{name} must be a floating-point array, got dtype {block.dtype}")
    if not np.isfinite(block).all():
        bad = start + int(np.flatnonzero(~np.isfinite(block).reshape(block.shape[0], -1).all(axis=1))[0])
        if ids is not None:  # rows of a store: its data are damaged
            from pnp.store import REPAIR_HINT, StoreDataError

            raise StoreDataError(f"array {name!r}: sample {int(ids[bad])} of the store has non-finite values; "
                                 f"{REPAIR_HINT}")
        raise ValueError(f"{name}: row {bad} has non-finite values; recompute or exclude it")
    return block


def _unreadable(name: str, err: Exception, ids: np.ndarray | None = None, start: int = 0,
                stop: int | None = None) -> Exception:
    """The error for a failed read of array ``name`` (a :class:`pnp.store.StoreDataError`)."""
    from pnp.store import REPAIR_HINT, StoreDataError

    if isinstance(err, StoreDataError):
        return err
    rows = ""
    if ids is not None and stop is not None and stop > start:
        rows = f" (samples {int(ids[start])}..{int(ids[stop - 1])})"
    reason = " ".join(f"{type(err).__name__}: {err}".split())[:300]
    return StoreDataError(f"array {name!r}{rows} cannot be read ({reason}); {REPAIR_HINT}")


def check_matrix(x: Any, name: str, n_cols: int | None = None) -> tuple[int, int]:
    """Shape (n, K) of a 2-D numpy/dask array, or a ``ValueError`` naming ``name``."""
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) != 2:
        raise ValueError(f"{name} must be a 2-D array (samples, features), got shape {shape}")
    if n_cols is not None and shape[1] != n_cols:
        raise ValueError(f"{name} must have {n_cols} columns, got {shape[1]}")
    if not np.issubdtype(np.dtype(x.dtype), np.floating):
        raise ValueError(f"{name} must be a floating-point array, got dtype {x.dtype}")
    return int(shape[0]), int(shape[1])


def feature_rows(store: Any, idx: np.ndarray | None = None):
    """Lazy (n, K) float32 features of the samples ``idx`` of ``store`` (:meth:`pnp.store.Store.features`)."""
    return store.features(idx)


def same_grid(stores: Sequence[Any]) -> None:
    """``ValueError`` unless every :class:`pnp.store.Store` of ``stores`` describes the same grid:
    same free parameters, the same θ array (bit for bit) and the same split."""
    ref = stores[0]
    for other in stores[1:]:
        where = f"{other.path} and {ref.path}"
        if other.params != ref.params:
            raise ValueError(f"{where} have different free parameters ({other.params} vs {ref.params})")
        ta, tb = ref.theta(), other.theta()
        if ta.shape != tb.shape:
            raise ValueError(f"{where} have different grids ({tb.shape[0]} vs {ta.shape[0]} samples)")
        diff = np.flatnonzero(~np.all(ta == tb, axis=1))
        if diff.size:
            i = int(diff[0])
            raise ValueError(f"{where} describe different grids: theta differs at {diff.size} sample(s), "
                             f"first sample {i}: {tb[i].tolist()} vs {ta[i].tolist()}")
        if not np.array_equal(ref.split_codes, other.split_codes):
            n = int(np.sum(ref.split_codes != other.split_codes))
            raise ValueError(f"{where} have the same theta but different splits ({n} sample(s) differ)")
