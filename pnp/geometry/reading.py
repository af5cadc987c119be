"""Chunked access to a precompute store for the geometry evaluations (k-NN, embeddings).

:func:`open_store_data` opens a store (:func:`pnp.store.open_store`: lazy dask arrays) and
returns a :class:`StoreData` that selects samples by split and reads:

* ``features(idx)`` — a lazy (n, K) float32 selection of the **dask** array (never loaded whole);
* ``theta(idx)``, ``nu(idx)`` — numpy (n, P) float64 (θ in physical units, ν ∈ [-1, 1]);
* ``metric(idx)`` — numpy (n, P, P) float64, the stored Riemannian metric M = JᵀJ (only in
  stores computed with ``store.jacobian = true``; a clear ``ValueError`` otherwise).

The per-sample arrays θ, ν, M are small (S × P² × 8 bytes at most: 20 MB for 10⁵ samples and
5 parameters) and are read whole; the features (S × K × 4 bytes: 1.45 GB for the PNP FTM set,
808 MB for the DAFx grid under MSS) are only ever read by row blocks (:func:`read_rows`).

Only samples whose ``status`` is *done* are used; pending or failed samples of a split are left
out with a warning (their features are NaN).  :func:`read_rows` also checks that a block is
finite and names the first offending sample otherwise.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

#: split names accepted by the evaluations, with their store codes; "all" = every done sample
SPLITS = {"train": 0, "val": 1, "test": 2}
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


#: bytes of one contiguous read of :class:`Rows` (a window of whole store chunks)
WINDOW_BYTES = 2**25


def is_lazy(x: Any) -> bool:
    """Whether ``x`` is read lazily by blocks (a dask array or :class:`Rows`) rather than in memory."""
    return isinstance(x, Rows) or type(x).__module__.startswith("dask")


class Rows:
    """A lazy selection of the rows ``idx`` (sorted) of a dask or numpy array (n, ...).

    ``rows[a:b]`` and ``rows[int_array]`` are new selections (nothing is read); ``compute()`` /
    ``np.asarray`` read them through plain dask slices of the base array, one window of at most
    :data:`WINDOW_BYTES` worth of whole chunks at a time, keeping only the selected rows (dask's
    own fancy indexing builds a graph over every chunk and is several times slower per block).
    Memory: the selected rows plus one window.  Over a numpy array it avoids copying a large
    selection whole: each block is gathered when it is read.
    """

    def __init__(self, base, idx):
        self.base = base
        self.idx = np.asarray(idx, dtype=np.int64)
        if self.idx.ndim != 1 or (self.idx.size and (np.any(np.diff(self.idx) <= 0) or self.idx[0] < 0
                                                    or self.idx[-1] >= base.shape[0])):
            raise ValueError(f"Rows: idx must be increasing indices in [0, {base.shape[0]})")

    @property
    def shape(self) -> tuple[int, ...]:
        return (int(self.idx.size),) + tuple(self.base.shape[1:])

    @property
    def dtype(self):
        return self.base.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return int(self.idx.size)

    def __getitem__(self, key) -> "Rows":
        if isinstance(key, slice) or (isinstance(key, np.ndarray) and key.ndim == 1):
            return Rows(self.base, self.idx[key])
        raise TypeError(f"Rows supports slices and 1-D index arrays, got {type(key).__name__}")

    def compute(self, dtype=None) -> np.ndarray:
        """The selected rows as a numpy array (of ``dtype``, default the base's)."""
        idx, base = self.idx, self.base
        out = np.empty(self.shape, dtype=base.dtype if dtype is None else dtype)
        if not idx.size:
            return out
        if not is_lazy(base):
            out[:] = base[idx]
            return out
        bounds = np.cumsum((0,) + tuple(base.chunks[0]))
        chunk_of = np.searchsorted(bounds, idx, side="right") - 1
        row_bytes = max(1, int(np.prod(base.shape[1:], dtype=np.int64)) * base.dtype.itemsize)
        width = max(1, WINDOW_BYTES // (row_bytes * max(base.chunks[0])))
        i = 0
        while i < idx.size:
            j = int(np.searchsorted(chunk_of, chunk_of[i] + width, side="left"))
            lo, hi = int(idx[i]), int(idx[j - 1]) + 1
            out[i:j] = np.asarray(base[lo:hi].compute())[idx[i:j] - lo]
            i = j
        return out

    def __array__(self, dtype=None, copy=None):
        return self.compute(dtype)


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


@dataclass
class StoreData:
    """An opened store, seen by the geometry evaluations.  Build with :func:`open_store_data`.

    Attributes
    ----------
    path : str
    store : pnp.store.Store — the dask arrays and provenance
    params : list of str — free parameter names (P)
    space : ParameterSpace — the free parameters' space (scales, bounds)
    split : (S,) int8 — 0 train, 1 val, 2 test
    status : (S,) uint8 — 0 pending, 1 done, 2 failed
    """

    path: str
    store: Any
    params: list[str]
    space: Any
    split: np.ndarray
    status: np.ndarray
    _theta: np.ndarray | None = field(default=None, repr=False)

    @property
    def attrs(self) -> dict[str, Any]:
        return self.store.attrs

    @property
    def name(self) -> str:
        return str(self.attrs.get("name", ""))

    @property
    def representation(self) -> dict[str, Any]:
        return dict(self.attrs.get("representation", {}))

    @property
    def n_samples(self) -> int:
        return int(self.split.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.store["features"].shape[1])

    @property
    def has_metric(self) -> bool:
        return "metric" in self.store

    @property
    def done(self) -> np.ndarray:
        """(S,) bool — samples computed successfully."""
        return self.status == 1

    def indices(self, split: str, warn: bool = True) -> np.ndarray:
        """Sorted store indices (int64) of the done samples of ``split`` (train/val/test/all)."""
        if split == "all":
            member = np.ones(self.n_samples, dtype=bool)
        elif split in SPLITS:
            member = self.split == SPLITS[split]
        else:
            raise ValueError(f"split must be one of {', '.join(list(SPLITS) + ['all'])}, got {split!r}")
        idx = np.flatnonzero(member & self.done)
        left = int(member.sum()) - idx.size
        if left and warn:
            warnings.warn(f"{self.path}: {left} sample(s) of the {split} split are pending or failed and are left out",
                          stacklevel=2)
        return idx.astype(np.int64)

    def features(self, idx: np.ndarray | None = None):
        """Lazy (n, K) float32 features of the samples ``idx`` (sorted): the store's dask array, or
        a :class:`Rows` selection of it (read by blocks of whole chunks)."""
        f = self.store["features"]
        return f if idx is None else Rows(f, idx)

    def theta(self, idx: np.ndarray | None = None) -> np.ndarray:
        """(n, P) float64, physical units."""
        if self._theta is None:
            try:
                self._theta = np.asarray(self.store["theta"].compute(), dtype=np.float64)
            except Exception as err:  # noqa: BLE001
                raise _unreadable("theta", err) from None
            from pnp.store import check_layout_rows

            check_layout_rows("theta", self._theta, 0, self.path)
        return self._theta if idx is None else self._theta[np.asarray(idx)]

    def nu(self, idx: np.ndarray | None = None) -> np.ndarray:
        """(n, P) float64, normalised to [-1, 1] (stored in float32)."""
        try:
            nu = np.asarray(self.store["nu"].compute(), dtype=np.float64)
        except Exception as err:  # noqa: BLE001
            raise _unreadable("nu", err) from None
        from pnp.store import check_layout_rows

        check_layout_rows("nu", nu, 0, self.path)
        return nu if idx is None else nu[np.asarray(idx)]

    def metric(self, idx: np.ndarray | None = None) -> np.ndarray:
        """(n, P, P) float64 — the stored metric M = JᵀJ; ``ValueError`` if the store has none."""
        if not self.has_metric:
            raise ValueError(
                f"{self.path} has no 'metric' array (it was computed with store.jacobian = false: features "
                "only); use the feature space (--space features) or a store with Jacobians"
            )
        m = self.store["metric"]
        try:
            out = np.asarray((m if idx is None else m[np.asarray(idx)]).compute(), dtype=np.float64)
        except Exception as err:  # noqa: BLE001
            raise _unreadable("metric", err) from None
        if not np.isfinite(out).all():
            from pnp.store import REPAIR_HINT, StoreDataError

            rows = np.arange(self.n_samples) if idx is None else np.asarray(idx)
            bad = rows[~np.isfinite(out.reshape(out.shape[0], -1)).all(axis=1)]
            raise StoreDataError(f"{self.path}: array 'metric': {bad.size} selected sample(s) hold non-finite values "
                                 f"(samples {', '.join(map(str, bad[:10].tolist()))}); {REPAIR_HINT}")
        return out

    def describe(self) -> str:
        rep = self.representation
        return f"{self.name} ({rep.get('name', '?')}, K={self.n_features})"


def open_store_data(path: str, storage_options: dict | None = None) -> StoreData:
    """Open the store at ``path`` for evaluation (``FileNotFoundError`` / ``ValueError`` with the
    reason when it is missing or not a valid pnp store)."""
    from pnp.store import check_layout_rows, open_store, read_block
    from pnp.synth.space import ParameterSpace

    st = open_store(path, storage_options)
    params = list(st.attrs["params"])
    full = ParameterSpace.from_dict(st.attrs["parameter_space"])
    space = ParameterSpace([full[n] for n in params], name=full.name)
    split = np.asarray(read_block(st.group["split"], "split", 0, st.n_samples, st.path), dtype=np.int8)
    check_layout_rows("split", split, 0, st.path)
    status = np.asarray(st.status(), dtype=np.uint8)
    return StoreData(path=st.path, store=st, params=params, space=space, split=split, status=status)


def same_grid(stores: Sequence[StoreData]) -> None:
    """``ValueError`` unless every store describes the same grid: same free parameters, the same
    θ array (bit for bit) and the same split (for ``--compare``)."""
    ref = stores[0]
    for other in stores[1:]:
        where = f"--compare: {other.path} and {ref.path}"
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
        if not np.array_equal(ref.split, other.split):
            n = int(np.sum(ref.split != other.split))
            raise ValueError(f"{where} have the same theta but different splits ({n} sample(s) differ)")
