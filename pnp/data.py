"""Training data from a precompute store: a torch ``Dataset``, a chunk-aware sampler, a loader.

* :class:`StoreDataset` — the samples of one split (train / val / test / all) of a store made by
  ``pnp precompute``, as dicts of torch tensors;
* :class:`ChunkShuffleSampler` — shuffles chunks, then samples within each chunk, so that the
  reads stay sequential inside the store's chunks;
* :func:`make_loader` — a ``torch.utils.data.DataLoader`` with that sampler.

Items
-----
``ds[i]`` (``i`` a *position* in ``0 .. len(ds) - 1``) is a dict of tensors:

=========  ==========  ==========================================================
key        shape       content (dtype)
=========  ==========  ==========================================================
theta      (P,)        free parameters, physical units (``dtype``, float32 by default)
nu         (P,)        θ normalised to [-1, 1] (``dtype``)
bin        (P,)        bin / grid coordinates (int64)
split      ()          0 train, 1 val, 2 test (int64)
features   (K,)        S = Φ(g(θ)) with the spec's compression (``dtype``)
jacobian   (K, P)      J = ∂S/∂ν (``dtype``)
metric     (P, P)      M = JᵀJ (``dtype``; stored in float64, cast like the rest)
eigvals    (P,)        eigenvalues of M, ascending (``dtype``)
audio      (N,)        g(θ) (``dtype``), see ``input="audio"``
index      ()          global sample index in the store (int64)
=========  ==========  ==========================================================

Every floating field is cast to ``dtype`` (float32 by default: what an encoder consumes; the
stored float64 ``metric`` / ``eigvals`` / ``theta`` lose precision beyond 1e-7 relative — use
``dtype=torch.float64`` to keep them, or :meth:`StoreDataset.mean_metric`, which stays in
float64).  The default ``collate`` stacks the items into a batch dict with a leading ``B`` axis.

Reading
-------
The zarr group is opened lazily, once per process (nothing unpicklable is held before the first
read, and it is dropped when pickled), so ``DataLoader(num_workers > 0)`` works.  Reads are
chunk-aware: :meth:`StoreDataset.__getitems__` (used by ``DataLoader`` for batched fetches)
reads each touched store chunk once (whole-chunk reads, sorted, with a small per-process cache
of decoded chunks — with :class:`ChunkShuffleSampler` consecutive batches come from the same
chunks) and renders the audio of a batch in one synth call.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch

from pnp import store as pstore
from pnp.vocabulary import SHUFFLES

#: split names → ``split`` codes (``None``: every sample)
SPLITS = {"train": 0, "val": 1, "test": 2, "all": None}
#: per-sample arrays a store may hold
FIELDS = ("theta", "nu", "bin", "split", "features", "jacobian", "metric", "eigvals", "audio")
#: what ``input`` may ask for
INPUTS = (None, "audio", "features")
_INT_FIELDS = ("bin", "split")
#: default bytes of decoded chunks cached per process
DEFAULT_CACHE_BYTES = 64 * 2**20


def _store_hint(name: str) -> str:
    if name in ("jacobian", "metric", "eigvals"):
        return "its spec had store.jacobian = false (features only)"
    if name == "audio":
        return "its spec had store.audio = false; use input='audio' to re-synthesise the sounds from theta"
    return "the store does not follow the pnp schema"


class StoreDataset(torch.utils.data.Dataset):
    """The samples of one split of a ``pnp precompute`` store (see the module docs).

    Parameters
    ----------
    store : str, os.PathLike or pnp.store.Store
        Path or fsspec URL of the store, or an opened :class:`~pnp.store.Store`.
    split : {"train", "val", "test", "all"}
    fields : sequence of str
        Per-sample arrays to return, among :data:`FIELDS` (default ``("nu", "metric")``).
    input : None, "audio" or "features"
        What the encoder reads: ``"features"`` adds the stored features; ``"audio"`` adds the
        sound g(θ) — read from the store's ``audio`` array when it has one, otherwise
        re-synthesised from the stored θ (with the spec's fixed parameters) by the spec's synth
        in the spec's compute dtype, exactly as ``pnp precompute`` renders it (θ → ν rounded to
        the compute dtype → θ(ν) → synth), then cast to ``dtype``.
    skip_failed : bool
        Drop the samples marked failed (non-finite) by the precompute; by default they are an
        error.  Pending (not computed) samples are always an error.
    storage_options : mapping, optional
        fsspec options for URL stores.
    dtype : torch.dtype
        Dtype of every floating field (float32 or float64; default float32).
    cache_bytes : int
        Bytes of decoded chunks cached per process (0 disables the cache).
    limit : int >= 1, optional
        Keep only the first ``limit`` samples of the split (in store order): a fixed subset.

    Attributes
    ----------
    indices : np.ndarray (n,) int64 — global sample ids of the split, ascending
    params : list of str — free parameter names (P = ``n_params``)
    spec : pnp.spec.DatasetSpec — the store's spec (built on first access)
    synth, parametrization, representation — the spec's objects (built on first access)
    chunk_size : int — samples per store chunk
    store_fields : tuple of str — the per-sample arrays the store holds
    counts : dict — samples of the split per status before dropping failed ones

    Raises ``ValueError`` for an unknown split, field or input, a field the store lacks, an empty
    split, pending samples in the split, or failed ones without ``skip_failed``;
    ``FileNotFoundError`` when there is no store.
    """

    def __init__(
        self,
        store: Any,
        split: str = "train",
        fields: Sequence[str] = ("nu", "metric"),
        input: str | None = None,
        skip_failed: bool = False,
        storage_options: Mapping | None = None,
        dtype: torch.dtype = torch.float32,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        limit: int | None = None,
    ):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(map(repr, SPLITS))}, got {split!r}")
        if isinstance(fields, str):
            fields = (fields,)
        try:
            fields = tuple(dict.fromkeys(fields))
        except TypeError:
            raise ValueError(f"fields must be a sequence of field names among {', '.join(FIELDS)}; got {fields!r}") from None
        unknown = [f for f in fields if f not in FIELDS]
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(FIELDS)}")
        if input not in INPUTS:
            raise ValueError(f"input must be None, 'audio' or 'features', got {input!r}")
        if not fields and input is None:
            raise ValueError(f"give at least one field (among {', '.join(FIELDS)}) or an input")
        if not isinstance(skip_failed, bool):
            raise ValueError(f"skip_failed must be True or False, got {skip_failed!r}")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
        if isinstance(cache_bytes, bool) or not isinstance(cache_bytes, (int, np.integer)) or cache_bytes < 0:
            raise ValueError(f"cache_bytes must be an integer >= 0, got {cache_bytes!r}")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
            raise ValueError(f"limit must be an integer >= 1 or None, got {limit!r}")

        if isinstance(store, pstore.Store):
            opened = store
            self.path = store.path
        else:
            if not isinstance(store, (str, os.PathLike)):
                raise ValueError(f"store must be a path, a URL or a pnp.store.Store, got {type(store).__name__}")
            self.path = pstore.normalise_path(store)
            opened = pstore.open_store(self.path, storage_options)
        self.storage_options = dict(storage_options) if storage_options else None
        self.split = split
        self.input = input
        self.skip_failed = skip_failed
        self.dtype = dtype
        self.cache_bytes = int(cache_bytes)
        self.attrs = dict(opened.attrs)
        group = opened.group
        keys = set(group.array_keys())
        needed = list(fields)
        if input == "features" and "features" not in needed:
            needed.append("features")
        self.fields = tuple(fields)
        #: arrays read from the store (audio: re-synthesised when the store has none)
        self.audio_from_store = "audio" in keys
        if "audio" in fields and not self.audio_from_store:
            raise ValueError(f"field 'audio': the store {self.path} has no 'audio' array ({_store_hint('audio')})")
        missing = [f for f in needed if f not in keys]
        if missing:
            raise ValueError(
                f"the store {self.path} has no {', '.join(map(repr, missing))} array ({_store_hint(missing[0])}); "
                f"it holds {', '.join(sorted(k for k in keys if k in FIELDS))}"
            )
        self._read_fields = tuple(needed) + (("audio",) if input == "audio" and self.audio_from_store
                                             and "audio" not in needed else ())
        self._render = input == "audio" and not self.audio_from_store
        self.n_samples = int(group["status"].shape[0])
        self.chunk_size = pstore.chunk_size_of(group)
        self.params = list(self.attrs["params"])
        self.n_params = len(self.params)
        self.n_coefs = int(self.attrs["n_coefs"])
        self._shapes = {name: tuple(group[name].shape[1:]) for name in keys if name in FIELDS}
        self._dtypes = {name: np.dtype(str(group[name].dtype)) for name in keys if name in FIELDS}

        status = pstore.read_status(group, strict=True, where=self.path)
        codes = np.asarray(pstore.read_block(group["split"], "split", 0, self.n_samples, self.path), dtype=np.int64)
        pstore.check_layout_rows("split", codes, 0, self.path)
        code = SPLITS[split]
        in_split = np.ones(self.n_samples, dtype=bool) if code is None else codes == code
        where = f"split {split!r} of the store {self.path}"
        if not in_split.any():
            sizes = ", ".join(f"{n} {int(np.sum(codes == c))}" for n, c in SPLITS.items() if c is not None)
            raise ValueError(f"{where} is empty (the store has {sizes} samples)")
        self.counts = {n: int(np.sum(status[in_split] == c)) for c, n in enumerate(pstore.STATUS_NAMES)}
        if self.counts["pending"]:
            raise ValueError(
                f"{self.counts['pending']} of the {int(in_split.sum())} samples of {where} are pending (not computed "
                f"yet); re-run `pnp precompute SPEC --store {self.path}` to complete the store"
            )
        failed = in_split & (status == pstore.FAILED)
        if failed.any() and not skip_failed:
            raise ValueError(
                f"{int(failed.sum())} of the {int(in_split.sum())} samples of {where} failed in the precompute "
                "(non-finite features or Jacobian); pass skip_failed=True (--skip-failed) to leave them out"
            )
        keep = in_split & (status == pstore.DONE)
        if not keep.any():
            raise ValueError(f"{where} has no usable sample: all {int(in_split.sum())} failed")
        self.indices = np.flatnonzero(keep).astype(np.int64)[:limit]
        #: (S,) bool, the done samples: a read that finds one of them without finite data refuses it
        self._done = status == pstore.DONE
        # lazily built, per process (dropped when pickled)
        self._group = group if isinstance(store, pstore.Store) else None
        self._spec = None
        self._synth = None
        self._parametrization = None
        self._representation = None
        self._arrays: dict[str, Any] = {}
        self._cache: OrderedDict = OrderedDict()
        self._cached_bytes = 0
        self._pid = os.getpid()
        #: zarr chunk reads done by this process (diagnostics)
        self.chunk_reads = 0

    # ------------------------------------------------------------------ pickling / lazy objects
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_group=None, _arrays={}, _synth=None, _representation=None, _cache=OrderedDict(),
                     _cached_bytes=0, chunk_reads=0)
        return state

    def _open(self):
        """The zarr group, opened once per process."""
        if self._group is None or self._pid != os.getpid():
            from pnp.store import open_group

            self._group = open_group(self.path, "r", self.storage_options)
            self._arrays = {}
            self._cache = OrderedDict()
            self._cached_bytes = 0
            self._pid = os.getpid()
        return self._group

    @property
    def spec(self):
        """The :class:`~pnp.spec.DatasetSpec` the store was made from."""
        if self._spec is None:
            from pnp.spec import DatasetSpec

            self._spec = DatasetSpec.from_dict(self.attrs["spec"], source=self.attrs.get("spec_source"))
        return self._spec

    @property
    def synth(self):
        """The spec's synth (built on first access, once per process)."""
        if self._synth is None:
            self._synth = self.spec.build_synth()
        return self._synth

    @property
    def parametrization(self):
        """ν ↔ θ of the free parameters, with the spec's fixed parameters."""
        if self._parametrization is None:
            self._parametrization = self.spec.parametrization(self.synth)
        return self._parametrization

    @property
    def representation(self):
        """The store's representation (``spec.build_representation``), built on first access."""
        if self._representation is None:
            self._representation = self.spec.build_representation(self.synth)
        return self._representation

    @property
    def store_fields(self) -> tuple[str, ...]:
        """The per-sample arrays the store holds (among :data:`FIELDS`, in that order)."""
        return tuple(f for f in FIELDS if f in self._shapes)

    def field_shape(self, name: str) -> tuple[int, ...]:
        """Per-sample shape of the store array ``name`` (e.g. ``(K,)`` for features)."""
        if name not in self._shapes:
            raise ValueError(f"the store {self.path} has no {name!r} array; it holds {', '.join(self.store_fields)}")
        return self._shapes[name]

    # ------------------------------------------------------------------ dataset protocol
    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def __repr__(self) -> str:
        keys = list(self.fields) + ([self.input] if self.input and self.input not in self.fields else [])
        return (f"StoreDataset({self.path!r}, split={self.split!r}, {len(self)} samples, "
                f"fields={tuple(keys)}, P={self.n_params})")

    def _positions(self, positions: Any) -> np.ndarray:
        pos = np.asarray(positions)
        if pos.ndim != 1 or (pos.size and not np.issubdtype(pos.dtype, np.integer)):
            raise ValueError(f"positions must be a 1-D sequence of integers, got {positions!r}")
        pos = pos.astype(np.int64)
        n = len(self)
        if pos.size and (pos.min() < -n or pos.max() >= n):
            bad = pos[(pos < -n) | (pos >= n)][0]
            raise IndexError(f"position {int(bad)} is out of range for a dataset of {n} samples")
        return np.where(pos < 0, pos + n, pos)

    def __getitem__(self, i: int | Sequence[int]) -> dict[str, torch.Tensor]:
        """One sample (``i`` an integer position: tensors without the batch axis) or a whole
        batch (``i`` a list of positions: :meth:`get_batch`, what :func:`make_loader` asks for)."""
        if isinstance(i, (list, tuple, np.ndarray)):
            return self.get_batch(i)
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"StoreDataset positions must be integers or lists of integers, got {type(i).__name__}")
        return self.__getitems__([int(i)])[0]

    def __getitems__(self, positions: Sequence[int]) -> list[dict[str, torch.Tensor]]:
        """The items at ``positions`` (a list of dicts, as ``DataLoader`` expects), read batched."""
        batch = self.get_batch(positions)
        n = int(batch["index"].shape[0])
        return [{k: v[b] for k, v in batch.items()} for b in range(n)]

    def get_batch(self, positions: Sequence[int] | np.ndarray) -> dict[str, torch.Tensor]:
        """The samples at ``positions`` as one dict of batched tensors (leading axis B)."""
        pos = self._positions(positions)
        ids = self.indices[pos]
        out: dict[str, torch.Tensor] = {}
        for name in self._read_fields:
            rows = self._read_rows(name, ids)
            if name in _INT_FIELDS:
                out[name] = torch.from_numpy(rows.astype(np.int64))
            else:
                out[name] = torch.from_numpy(np.ascontiguousarray(rows)).to(self.dtype)
        if self._render:
            out["audio"] = self.render(self._read_rows("theta", ids))
        out["index"] = torch.from_numpy(ids.copy())
        return out

    # ------------------------------------------------------------------ reading
    def _array(self, name: str):
        """The zarr array ``name`` (handles cached per process: no metadata read per batch)."""
        group = self._open()
        arr = self._arrays.get(name)
        if arr is None:
            arr = self._arrays[name] = group[name]
        return arr

    def _chunk(self, name: str, chunk: int) -> np.ndarray:
        """Decoded chunk ``chunk`` of array ``name`` (one whole-chunk read, LRU-cached)."""
        key = (name, chunk)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        arr = self._array(name)
        start = chunk * self.chunk_size
        stop = min(start + self.chunk_size, self.n_samples)
        data = pstore.read_block(arr, name, start, stop, self.path)
        if name in pstore.COMPUTED:
            pstore.check_done_finite(data, self._done[start:stop], name, np.arange(start, stop), self.path)
        pstore.check_layout_rows(name, data, start, self.path)
        self.chunk_reads += 1
        if self.cache_bytes and data.nbytes <= self.cache_bytes:
            self._cache[key] = data
            self._cached_bytes += data.nbytes
            while self._cached_bytes > self.cache_bytes:
                _, old = self._cache.popitem(last=False)
                self._cached_bytes -= old.nbytes
        return data

    def _read_rows(self, name: str, ids: np.ndarray) -> np.ndarray:
        """Rows ``ids`` (global sample ids, any order) of array ``name``: one read per touched chunk."""
        out = np.empty((ids.shape[0],) + self._shapes[name], dtype=self._dtypes[name])
        chunks = ids // self.chunk_size
        for chunk in np.unique(chunks):  # sorted
            sel = np.flatnonzero(chunks == chunk)
            out[sel] = self._chunk(name, int(chunk))[ids[sel] - chunk * self.chunk_size]
        return out

    def render(self, theta: np.ndarray) -> torch.Tensor:
        """Audio (B, N) of free-parameter values ``theta`` (B, P) float64 (physical units), rendered
        as ``pnp precompute`` does (ν rounded to the spec's compute dtype, fixed parameters
        added, one synth call, no autograd), cast to ``dtype``."""
        param = self.parametrization
        nu = torch.as_tensor(np.asarray(param.nu(np.asarray(theta, dtype=np.float64))), dtype=self.spec.dtype)
        with torch.no_grad():
            x = self.synth(param.theta(nu), validate=False)
        return x.to(self.dtype)

    # ------------------------------------------------------------------ statistics
    def mean_metric(self, progress: bool = False) -> torch.Tensor:
        """Mean of M over the dataset's samples, (P, P) float64, computed chunk by chunk from
        the stored float64 metric (no cast to ``dtype``).  ``ValueError`` without a metric."""
        if "metric" not in self._shapes:
            raise ValueError(f"the store {self.path} has no 'metric' array ({_store_hint('metric')})")
        from tqdm.auto import tqdm

        arr = self._array("metric")  # read directly (not through the chunk cache)
        total = np.zeros((self.n_params, self.n_params), dtype=np.float64)
        chunks = self.indices // self.chunk_size
        touched = np.unique(chunks)
        for chunk in tqdm(touched, desc="mean metric", unit="chunk", disable=not progress):
            ids = self.indices[chunks == chunk]
            start = int(chunk) * self.chunk_size
            stop = min(start + self.chunk_size, self.n_samples)
            block = pstore.read_block(arr, "metric", start, stop, self.path).astype(np.float64, copy=False)
            pstore.check_done_finite(block, self._done[start:stop], "metric", np.arange(start, stop), self.path)
            total += block[ids - start].sum(axis=0)
        return torch.from_numpy(total / len(self))


class ChunkShuffleSampler(torch.utils.data.Sampler):
    """Positions ``0 .. len(dataset) - 1``, chunk by chunk.

    With ``shuffle`` the store chunks touched by the dataset are visited in a random order and the
    samples inside each chunk in a random order, so a batch reads one or two chunks and
    consecutive batches re-use them; the permutation is a deterministic function of
    ``(seed, epoch)`` (:meth:`set_epoch`, call it at the start of every epoch).  Without
    ``shuffle`` the positions come in order (0, 1, …).

    ``dataset`` needs ``indices`` (global sample ids, ascending) and ``chunk_size``, as
    :class:`StoreDataset` has.
    """

    def __init__(self, dataset: Any, seed: int = 0, shuffle: bool = True):
        indices = getattr(dataset, "indices", None)
        chunk_size = getattr(dataset, "chunk_size", None)
        if indices is None or chunk_size is None:
            raise ValueError(f"dataset must have 'indices' and 'chunk_size' (a StoreDataset), got {type(dataset).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        if not isinstance(shuffle, bool):
            raise ValueError(f"shuffle must be True or False, got {shuffle!r}")
        self.seed = int(seed)
        self.shuffle = shuffle
        self.epoch = 0
        chunks = np.asarray(indices, dtype=np.int64) // int(chunk_size)
        # positions grouped by chunk (indices are ascending, so each group is contiguous)
        bounds = np.flatnonzero(np.diff(chunks)) + 1
        self._groups = np.split(np.arange(chunks.shape[0], dtype=np.int64), bounds)
        self._n = int(chunks.shape[0])

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of epoch ``epoch`` (an integer >= 0)."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"epoch must be an integer >= 0, got {epoch!r}")
        self.epoch = int(epoch)

    def order(self) -> np.ndarray:
        """This epoch's positions (n,) int64."""
        if not self.shuffle:
            return np.arange(self._n, dtype=np.int64)
        rng = np.random.default_rng([self.seed, self.epoch])
        parts = [rng.permutation(self._groups[c]) for c in rng.permutation(len(self._groups))]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def __iter__(self) -> Iterator[int]:
        return iter(self.order().tolist())

    def __len__(self) -> int:
        return self._n


class SampleShuffleSampler(torch.utils.data.Sampler):
    """Positions ``0 .. n - 1`` in a uniformly random order (i.i.d. batches, as the PNP authors'
    loaders), ``samples_per_epoch`` of them per epoch.

    Epoch ``e`` (:meth:`set_epoch`) draws the concatenation of independent permutations of all
    positions from ``numpy.random.default_rng([seed, e])``, cut to ``samples_per_epoch`` (default
    ``n``: one permutation), so an epoch may hold several passes over a small split (the
    authors' epochs are 25,600 sounds whatever the split's size).  Deterministic given
    ``(seed, epoch)``.  Reads touch many store chunks per batch: give the dataset a cache that
    holds the split (``StoreDataset(cache_bytes=...)``).
    """

    def __init__(self, dataset: Any, seed: int = 0, samples_per_epoch: int | None = None):
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        self._n = len(dataset)
        if samples_per_epoch is not None and (isinstance(samples_per_epoch, bool)
                                              or not isinstance(samples_per_epoch, (int, np.integer))
                                              or samples_per_epoch < 1):
            raise ValueError(f"samples_per_epoch must be an integer >= 1, got {samples_per_epoch!r}")
        self.seed = int(seed)
        self.samples_per_epoch = self._n if samples_per_epoch is None else int(samples_per_epoch)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the draw of epoch ``epoch`` (an integer >= 0)."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"epoch must be an integer >= 0, got {epoch!r}")
        self.epoch = int(epoch)

    def order(self) -> np.ndarray:
        """This epoch's positions (samples_per_epoch,) int64."""
        if self._n == 0:
            return np.zeros(0, dtype=np.int64)
        rng = np.random.default_rng([self.seed, self.epoch])
        passes = -(-self.samples_per_epoch // self._n)
        return np.concatenate([rng.permutation(self._n) for _ in range(passes)])[: self.samples_per_epoch]

    def __iter__(self) -> Iterator[int]:
        return iter(self.order().tolist())

    def __len__(self) -> int:
        return self.samples_per_epoch if self._n else 0


#: how :func:`make_loader` shuffles: store chunks then samples within them, or samples uniformly


class BatchOfPositions(torch.utils.data.BatchSampler):
    """Batches of positions from a per-sample sampler (``self.sampler``), for a ``DataLoader``
    with ``batch_size=None``: the dataset reads each batch at once (:meth:`StoreDataset.get_batch`)
    instead of sample by sample and re-stacked.  ``set_epoch`` is passed to the sampler."""

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)  # type: ignore[union-attr]


def make_loader(
    dataset: StoreDataset,
    batch_size: int,
    shuffle: bool = True,
    num_workers: int = 0,
    seed: int = 0,
    drop_last: bool = False,
    order: str = "chunks",
    samples_per_epoch: int | None = None,
    **kwargs: Any,
) -> torch.utils.data.DataLoader:
    """A ``DataLoader`` over ``dataset`` with a :class:`ChunkShuffleSampler` (``order="chunks"``)
    or, with ``shuffle`` and ``order="samples"``, a :class:`SampleShuffleSampler` drawing
    ``samples_per_epoch`` positions per epoch, grouped into batches by :class:`BatchOfPositions`
    (``loader.sampler``; its ``.sampler`` is the per-sample one; call
    ``loader.sampler.set_epoch(epoch)`` every epoch).  Batches are dicts of (B, …) tensors, each
    read whole by the dataset (the same values and order as batching sample by sample).
    Extra keyword arguments go to ``DataLoader`` (``pin_memory``, ``persistent_workers``, …).
    ``ValueError`` for ``batch_size < 1``, ``num_workers < 0``, an unknown ``order``, or
    ``samples_per_epoch`` without ``order="samples"``."""
    if order not in SHUFFLES:
        raise ValueError(f"order must be one of {', '.join(map(repr, SHUFFLES))}, got {order!r}")
    if samples_per_epoch is not None and not (shuffle and order == "samples"):
        raise ValueError("samples_per_epoch needs shuffle=True and order='samples'")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)) or num_workers < 0:
        raise ValueError(f"num_workers must be an integer >= 0, got {num_workers!r}")
    if not isinstance(drop_last, bool):
        raise ValueError(f"drop_last must be True or False, got {drop_last!r}")
    if drop_last and len(dataset) < batch_size:
        raise ValueError(
            f"drop_last with batch_size {batch_size} > {len(dataset)} samples would give no batch at all"
        )
    if shuffle and order == "samples":
        sampler: torch.utils.data.Sampler = SampleShuffleSampler(dataset, seed=seed, samples_per_epoch=samples_per_epoch)
    else:
        sampler = ChunkShuffleSampler(dataset, seed=seed, shuffle=shuffle)
    batches = BatchOfPositions(sampler, int(batch_size), drop_last)
    return torch.utils.data.DataLoader(dataset, batch_size=None, sampler=batches, num_workers=int(num_workers), **kwargs)


__all__ = ["FIELDS", "INPUTS", "SHUFFLES", "SPLITS", "BatchOfPositions", "ChunkShuffleSampler", "SampleShuffleSampler", "StoreDataset",
           "make_loader"]
