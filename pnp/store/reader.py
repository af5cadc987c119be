"""Reading a precompute store: :class:`Store`, the one reader of training data, geometry and verify.

:func:`open_store` opens and validates a store (schema, attributes, each array's metadata) and
returns a :class:`Store`.  Everything that reads stored numbers goes through it:

* the code tables — :meth:`Store.status` (re-read), :attr:`Store.done` and :attr:`Store.split_codes`
  (read once), :meth:`Store.in_split` and :meth:`Store.indices` (the done samples of a split);
* rows — :meth:`Store.read_rows` reads the rows of any sample ids, one whole-chunk read per
  touched chunk (an LRU cache of decoded chunks per process), and refuses damaged data with a
  :class:`~pnp.store.StoreDataError` naming the array, the chunk and the samples: a chunk that
  cannot be decoded, a done sample without finite data, a layout row holding its fill value;
* whole small arrays — :meth:`Store.theta`, :meth:`Store.nu` (n, P) float64 and
  :meth:`Store.metric` (n, P, P) float64;
* lazy arrays — ``store["features"]`` is a dask array, built on demand, and
  :meth:`Store.features` a lazy :class:`Rows` selection of it (the blocked geometry reads).

A :class:`Store` pickles without its zarr handles and reopens them once per process, so it can be
held by a ``DataLoader`` with worker processes or sent to dask workers.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any, Mapping

import numpy as np

from pnp import store as pstore
from pnp.checks import check_int
from pnp.store.codes import SELECTIONS, Status, split_mask, status_counts

#: per-sample arrays a store may hold, in schema order
FIELDS = ("theta", "nu", "bin", "split", "features", "jacobian", "metric", "eigvals", "audio")
#: default bytes of decoded chunks cached per process
DEFAULT_CACHE_BYTES = 64 * 2**20


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


def missing_array_hint(name: str) -> str:
    """Why a valid store may lack the array ``name`` (for error messages)."""
    if name in ("jacobian", "metric", "eigvals"):
        return "its spec had store.jacobian = false (features only)"
    if name == "audio":
        return "its spec had store.audio = false; use input='audio' to re-synthesise the sounds from theta"
    return "the store does not follow the pnp schema"


class Store:
    """An opened, validated store (build with :func:`open_store`).

    Attributes
    ----------
    path : str — normalised path or URL
    attrs : dict — the parsed group attributes (provenance, see :func:`pnp.store.provenance`)
    storage_options : dict or None — fsspec options of a URL store
    cache_bytes : int — bytes of decoded chunks cached per process (0: no cache)
    chunk_reads : int — whole-chunk reads done by this process (diagnostics)
    """

    def __init__(self, path: str, group: Any, storage_options: Mapping | None = None,
                 cache_bytes: int = DEFAULT_CACHE_BYTES):
        self.path = path
        self.attrs: dict[str, Any] = dict(group.attrs)
        self.storage_options = dict(storage_options) if storage_options else None
        self.cache_bytes = int(cache_bytes)
        self.n_samples = int(group["status"].shape[0])
        self.chunk_size = pstore.chunk_size_of(group)
        held = [name for name in FIELDS if name in set(group.array_keys())]
        self._shapes = {name: tuple(group[name].shape[1:]) for name in held}
        self._dtypes = {name: np.dtype(str(group[name].dtype)) for name in held}
        self._group: Any = group
        self._pid = os.getpid()
        self._reset_handles()
        self._done: np.ndarray | None = None
        self._split: np.ndarray | None = None
        self._small: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ handles, pickling
    def _reset_handles(self) -> None:
        self._zarr_arrays: dict[str, Any] = {}
        self._dask_arrays: dict[str, Any] = {}
        self._cache: OrderedDict = OrderedDict()
        self._cached_bytes = 0
        self.chunk_reads = 0

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_group=None, _zarr_arrays={}, _dask_arrays={}, _cache=OrderedDict(), _cached_bytes=0,
                     chunk_reads=0)
        return state

    @property
    def group(self):
        """The zarr group, opened once per process."""
        if self._group is None or self._pid != os.getpid():
            self._group = pstore.open_group(self.path, "r", self.storage_options)
            self._pid = os.getpid()
            self._reset_handles()
        return self._group

    def _zarr(self, name: str):
        group = self.group  # (re)opens first: resets the handles in a new process
        arr = self._zarr_arrays.get(name)
        if arr is None:
            arr = self._zarr_arrays[name] = group[name]
        return arr

    # ------------------------------------------------------------------ description
    def __repr__(self) -> str:
        return f"Store({self.path!r}, {self.n_samples} samples, P={self.n_params}, K={self.n_coefs})"

    def __contains__(self, name: str) -> bool:
        return name in self._shapes or name == "status"

    def __getitem__(self, name: str):
        """The array ``name`` as a lazy dask array (``KeyError`` if the store has none)."""
        if name not in self:
            raise KeyError(f"the store {self.path} has no {name!r} array ({missing_array_hint(name)})")
        arr = self._dask_arrays.get(name)
        if arr is None:
            import dask.array as da

            arr = self._dask_arrays[name] = da.from_zarr(self._zarr(name))
        return arr

    @property
    def arrays(self) -> dict[str, Any]:
        """Every array as a lazy dask array, by name."""
        return {name: self[name] for name in sorted(set(self._shapes) | {"status"})}

    @property
    def fields(self) -> tuple[str, ...]:
        """The per-sample arrays the store holds (among :data:`FIELDS`, in that order)."""
        return tuple(self._shapes)

    def field_shape(self, name: str) -> tuple[int, ...]:
        """Per-sample shape of the array ``name`` (e.g. ``(K,)`` for features)."""
        if name not in self._shapes:
            raise ValueError(f"the store {self.path} has no {name!r} array; it holds {', '.join(self.fields)}")
        return self._shapes[name]

    @property
    def name(self) -> str:
        return str(self.attrs.get("name", ""))

    @property
    def params(self) -> list[str]:
        """Free parameter names (P)."""
        return list(self.attrs["params"])

    @property
    def n_params(self) -> int:
        return len(self.attrs["params"])

    @property
    def n_coefs(self) -> int:
        return int(self.attrs["n_coefs"])

    @property
    def n_features(self) -> int:
        return self.field_shape("features")[0]

    @property
    def has_metric(self) -> bool:
        return "metric" in self._shapes

    @property
    def representation_config(self) -> dict[str, Any]:
        """The representation's stored ``config()`` (a dict; ``name`` among its keys)."""
        return dict(self.attrs.get("representation", {}))

    def describe(self) -> str:
        return f"{self.name} ({self.representation_config.get('name', '?')}, K={self.n_coefs})"

    @property
    def space(self):
        """The free parameters' :class:`~pnp.synth.space.ParameterSpace` (scales, bounds, units)."""
        from pnp.synth.space import ParameterSpace

        full = ParameterSpace.from_dict(self.attrs["parameter_space"])
        return ParameterSpace([full[n] for n in self.params], name=full.name)

    def spec(self):
        """The :class:`~pnp.spec.DatasetSpec` the store was created from."""
        from pnp.spec import DatasetSpec

        return DatasetSpec.from_dict(self.attrs["spec"], source=self.attrs.get("spec_source"))

    def to_xarray(self):
        """The store as an ``xarray.Dataset`` (lazy, dask-backed; needs xarray)."""
        import xarray as xr

        return xr.open_zarr(self.path, consolidated=True, storage_options=self.storage_options)

    # ------------------------------------------------------------------ codes and selections
    def status(self, strict: bool = True) -> np.ndarray:
        """Current status (S,) uint8, re-read from the store; ``strict``: see :func:`pnp.store.read_status`."""
        return pstore.read_status(self.group, strict=strict, where=self.path)

    def counts(self, split: str = "all") -> dict[str, int]:
        """Number of pending / done / failed samples of ``split`` (now)."""
        return status_counts(self.status()[self.in_split(split)])

    @property
    def done(self) -> np.ndarray:
        """(S,) bool: the samples done when first asked (what the readers serve and check)."""
        if self._done is None:
            self._done = self.status() == Status.DONE
        return self._done

    @property
    def split_codes(self) -> np.ndarray:
        """(S,) int8 split codes (:class:`~pnp.store.codes.Split`), read once and checked."""
        if self._split is None:
            codes = np.asarray(pstore.read_block(self._zarr("split"), "split", 0, self.n_samples, self.path),
                               dtype=np.int8)
            pstore.check_layout_rows("split", codes, 0, self.path)
            self._split = codes
        return self._split

    def in_split(self, split: str) -> np.ndarray:
        """(S,) bool: membership of ``split`` (``"train"``, ``"val"``, ``"test"`` or ``"all"``)."""
        return split_mask(self.split_codes, split)

    def indices(self, split: str = "all", warn: bool = False) -> np.ndarray:
        """Sorted ids (n,) int64 of the done samples of ``split``; ``warn``: a warning names how
        many samples of the split are left out (pending or failed)."""
        member = self.in_split(split)
        idx = np.flatnonzero(member & self.done).astype(np.int64)
        left = int(member.sum()) - idx.size
        if left and warn:
            import warnings

            warnings.warn(f"{self.path}: {left} sample(s) of the {split} split are pending or failed and are left out",
                          stacklevel=2)
        return idx

    # ------------------------------------------------------------------ rows
    def read_chunk(self, name: str, chunk: int) -> np.ndarray:
        """Decoded chunk ``chunk`` of array ``name``, checked (one whole-chunk read, LRU-cached)."""
        key = (name, chunk)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        start = chunk * self.chunk_size
        stop = min(start + self.chunk_size, self.n_samples)
        data = pstore.read_block(self._zarr(name), name, start, stop, self.path)
        if name in pstore.COMPUTED:
            pstore.check_done_finite(data, self.done[start:stop], name, np.arange(start, stop), self.path)
        pstore.check_layout_rows(name, data, start, self.path)
        self.chunk_reads += 1
        if self.cache_bytes and data.nbytes <= self.cache_bytes:
            self._cache[key] = data
            self._cached_bytes += data.nbytes
            while self._cached_bytes > self.cache_bytes:
                _, old = self._cache.popitem(last=False)
                self._cached_bytes -= old.nbytes
        return data

    def read_rows(self, name: str, ids: np.ndarray) -> np.ndarray:
        """Rows ``ids`` (n,) (sample ids, any order) of array ``name``, in the stored dtype:
        one checked read per touched chunk."""
        shape = self.field_shape(name)
        ids = np.asarray(ids, dtype=np.int64)
        out = np.empty((ids.shape[0],) + shape, dtype=self._dtypes[name])
        chunks = ids // self.chunk_size
        for chunk in np.unique(chunks):  # sorted
            sel = np.flatnonzero(chunks == chunk)
            out[sel] = self.read_chunk(name, int(chunk))[ids[sel] - chunk * self.chunk_size]
        return out

    def features(self, idx: np.ndarray | None = None):
        """Lazy (n, K) float32 features of the samples ``idx`` (sorted ids; all by default): the
        dask array, or a :class:`Rows` selection of it (read by windows of whole chunks)."""
        f = self["features"]
        return f if idx is None else Rows(f, idx)

    def _whole(self, name: str) -> np.ndarray:
        """A small per-sample array read whole (chunk by chunk, checked, not cached per chunk), as float64."""
        got = self._small.get(name)
        if got is None:
            arr = self._zarr(name)
            blocks = [pstore.read_block(arr, name, a, b, self.path)
                      for a, b in pstore.chunk_ranges(self.n_samples, self.chunk_size)]
            got = np.concatenate(blocks).astype(np.float64, copy=False)
            pstore.check_layout_rows(name, got, 0, self.path)
            self._small[name] = got
        return got

    def theta(self, idx: np.ndarray | None = None) -> np.ndarray:
        """θ of the samples ``idx`` (all by default), (n, P) float64, physical units."""
        theta = self._whole("theta")
        return theta if idx is None else theta[np.asarray(idx)]

    def nu(self, idx: np.ndarray | None = None) -> np.ndarray:
        """ν of the samples ``idx`` (all by default), (n, P) float64 (stored in float32), in [-1, 1]."""
        nu = self._whole("nu")
        return nu if idx is None else nu[np.asarray(idx)]

    def metric(self, idx: np.ndarray | None = None) -> np.ndarray:
        """The stored metric M = JᵀJ of the samples ``idx`` (done ones; all by default),
        (n, P, P) float64; ``ValueError`` if the store has none."""
        if not self.has_metric:
            raise ValueError(f"{self.path} has no 'metric' array (it was computed with store.jacobian = false: "
                             "features only); use the feature space or a store with Jacobians")
        ids = np.arange(self.n_samples) if idx is None else np.asarray(idx, dtype=np.int64)
        out = self.read_rows("metric", ids).astype(np.float64, copy=False)
        bad = ids[~np.isfinite(out.reshape(out.shape[0], -1)).all(axis=1)]
        if bad.size:
            raise pstore.StoreDataError(f"{self.path}: array 'metric': {bad.size} selected sample(s) hold non-finite "
                                        f"values (samples {', '.join(map(str, bad[:10].tolist()))}); "
                                        f"{pstore.REPAIR_HINT}")
        return out


def open_store(path: str | os.PathLike, storage_options: Mapping | None = None,
               cache_bytes: int = DEFAULT_CACHE_BYTES) -> Store:
    """Open and validate the store at ``path`` (a local path or an fsspec URL).

    ``FileNotFoundError`` when there is none; ``ValueError`` when it is not a valid pnp store (or
    its creation was interrupted); :class:`~pnp.store.StoreDataError` when an array's metadata
    disagree with the consolidated copy.
    """
    check_int(cache_bytes, "cache_bytes", 0)
    path = pstore.normalise_path(path)
    group = pstore.open_group(path, "r", storage_options)
    pstore.validate_store(group, path)
    problems = pstore.array_metadata_problems(group, path, storage_options)
    if problems:
        raise pstore.StoreDataError(f"{path}: " + "; ".join(problems) + f"; {pstore.REPAIR_HINT.replace('STORE', path)}")
    return Store(path, group, storage_options, cache_bytes=int(cache_bytes))


__all__ = ["DEFAULT_CACHE_BYTES", "FIELDS", "SELECTIONS", "WINDOW_BYTES", "Rows", "Store", "is_lazy", "missing_array_hint", "open_store"]
