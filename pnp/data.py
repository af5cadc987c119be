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
Every read goes through the dataset's :class:`pnp.store.Store` (the one store reader): its zarr
group is opened once per process and dropped when pickled, so ``DataLoader(num_workers > 0)``
works.  Reads are chunk-aware: :meth:`StoreDataset.__getitems__` (used by ``DataLoader`` for batched fetches)
reads each touched store chunk once (whole-chunk reads, sorted, with a small per-process cache
of decoded chunks — with :class:`ChunkShuffleSampler` consecutive batches come from the same
chunks) and renders the audio of a batch in one synth call.
"""

from __future__ import annotations

import os
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch

from pnp import store as pstore
from pnp.checks import check_bool, check_int, check_optional_int
from pnp.store.codes import SELECTIONS, SPLIT_NAMES, split_code, status_counts
from pnp.store.reader import DEFAULT_CACHE_BYTES, FIELDS, missing_array_hint
from pnp.vocabulary import SHUFFLES

#: split names accepted by :class:`StoreDataset` (``"all"``: every sample)
SPLITS = SELECTIONS
#: what ``input`` may ask for
INPUTS = (None, "audio", "features")
_INT_FIELDS = ("bin", "split")


def _check_arguments(split, fields, input, skip_failed, dtype, cache_bytes, limit) -> tuple[str, ...]:
    """Validate :class:`StoreDataset`'s arguments; the fields as a tuple without repeats."""
    split_code(split)
    if isinstance(fields, str):
        fields = (fields,)
    try:
        fields = tuple(dict.fromkeys(fields))
    except TypeError:
        raise TypeError(f"fields must be a sequence of field names among {', '.join(FIELDS)}; got {fields!r}") from None
    unknown = [f for f in fields if f not in FIELDS]
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(FIELDS)}")
    if input not in INPUTS:
        raise ValueError(f"input must be None, 'audio' or 'features', got {input!r}")
    if not fields and input is None:
        raise ValueError(f"give at least one field (among {', '.join(FIELDS)}) or an input")
    check_bool(skip_failed, "skip_failed")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    check_int(cache_bytes, "cache_bytes", 0)
    check_optional_int(limit, "limit", 1)
    return fields


def _open(store: Any, storage_options: Mapping | None, cache_bytes: int) -> pstore.Store:
    if isinstance(store, pstore.Store):
        return store
    if not isinstance(store, (str, os.PathLike)):
        raise TypeError(f"store must be a path, a URL or a pnp.store.Store, got {type(store).__name__}")
    return pstore.open_store(store, storage_options, cache_bytes=cache_bytes)


def _usable_samples(opened: pstore.Store, split: str, skip_failed: bool) -> tuple[np.ndarray, dict[str, int]]:
    """The done samples of ``split`` (ids, ascending) and the split's counts per status; a
    ``ValueError`` for an empty split, pending samples, or failed ones without ``skip_failed``."""
    in_split = opened.in_split(split)
    where = f"split {split!r} of the store {opened.path}"
    if not in_split.any():
        sizes = ", ".join(f"{n} {int(np.sum(opened.split_codes == c))}" for c, n in enumerate(SPLIT_NAMES))
        raise ValueError(f"{where} is empty (the store has {sizes} samples)")
    status = opened.status()
    counts = status_counts(status[in_split])
    n = int(in_split.sum())
    if counts["pending"]:
        raise ValueError(f"{counts['pending']} of the {n} samples of {where} are pending (not computed yet); "
                         "re-run `pnp precompute` on the store's spec to complete the store")
    if counts["failed"] and not skip_failed:
        raise ValueError(f"{counts['failed']} of the {n} samples of {where} failed in the precompute (non-finite "
                         "features or Jacobian); pass skip_failed=True to leave them out")
    if not counts["done"]:
        raise ValueError(f"{where} has no usable sample: all {n} failed")
    return opened.indices(split), counts


class StoreDataset(torch.utils.data.Dataset):
    """The samples of one split of a ``pnp precompute`` store (see the module docs).

    Parameters
    ----------
    store : str, os.PathLike or pnp.store.Store
        Path or fsspec URL of the store, or an opened :class:`~pnp.store.Store` (its reads and
        cache are shared).
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
        Bytes of decoded chunks cached per process (0 disables the cache; ignored when ``store``
        is an opened :class:`~pnp.store.Store`, whose own setting holds).
    limit : int >= 1, optional
        Keep only the first ``limit`` samples of the split (in store order): a fixed subset.

    Attributes
    ----------
    store : pnp.store.Store — the reader (every read goes through it)
    indices : np.ndarray (n,) int64 — global sample ids of the split, ascending
    params : list of str — free parameter names (P = ``n_params``)
    spec : pnp.spec.DatasetSpec — the store's spec (built on first access)
    synth, parametrization, representation — the spec's objects (built on first access)
    chunk_size : int — samples per store chunk
    store_fields : tuple of str — the per-sample arrays the store holds
    counts : dict — samples of the split per status before dropping failed ones

    Raises ``ValueError`` for an unknown split, field or input, a field the store lacks, an empty
    split, pending samples in the split, or failed ones without ``skip_failed``; ``TypeError``
    for arguments of the wrong type; ``FileNotFoundError`` when there is no store.
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
        self.fields = _check_arguments(split, fields, input, skip_failed, dtype, cache_bytes, limit)
        self.store = _open(store, storage_options, int(cache_bytes))
        self.path = self.store.path
        self.storage_options = self.store.storage_options
        self.split, self.input, self.skip_failed, self.dtype = split, input, skip_failed, dtype
        self.attrs = self.store.attrs
        self.n_samples, self.chunk_size = self.store.n_samples, self.store.chunk_size
        self.params = self.store.params
        self.n_params, self.n_coefs = len(self.params), self.store.n_coefs
        self._read_fields, self._render = self._plan_reads()
        indices, self.counts = _usable_samples(self.store, split, skip_failed)
        self.indices = indices[:limit]
        # built on first access, per process (dropped when pickled)
        self._spec = self._synth = self._parametrization = self._representation = None

    def _plan_reads(self) -> tuple[tuple[str, ...], bool]:
        """The arrays each batch reads, and whether the audio is re-synthesised; ``ValueError``
        for a field the store lacks."""
        held = set(self.store.fields)
        #: whether the audio is read from the store (otherwise re-synthesised when asked for)
        self.audio_from_store = "audio" in held
        if "audio" in self.fields and not self.audio_from_store:
            raise ValueError(f"field 'audio': the store {self.path} has no 'audio' array "
                             f"({missing_array_hint('audio')})")
        needed = list(self.fields) + (["features"] if self.input == "features" and "features" not in self.fields
                                      else [])
        missing = [f for f in needed if f not in held]
        if missing:
            raise ValueError(f"the store {self.path} has no {', '.join(map(repr, missing))} array "
                             f"({missing_array_hint(missing[0])}); it holds {', '.join(self.store.fields)}")
        if self.input == "audio" and self.audio_from_store and "audio" not in needed:
            needed.append("audio")
        return tuple(needed), self.input == "audio" and not self.audio_from_store

    @property
    def chunk_reads(self) -> int:
        """Whole-chunk reads of the store done by this process (diagnostics)."""
        return self.store.chunk_reads

    # ------------------------------------------------------------------ lazy objects
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_synth=None, _representation=None)
        return state

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
        return self.store.fields

    def field_shape(self, name: str) -> tuple[int, ...]:
        """Per-sample shape of the store array ``name`` (e.g. ``(K,)`` for features)."""
        return self.store.field_shape(name)

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
    def _read_rows(self, name: str, ids: np.ndarray) -> np.ndarray:
        """Rows ``ids`` (global sample ids, any order) of array ``name``: one read per touched chunk."""
        return self.store.read_rows(name, ids)

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
        if "metric" not in self.store_fields:
            raise ValueError(f"the store {self.path} has no 'metric' array ({missing_array_hint('metric')})")
        from tqdm.auto import tqdm

        total = np.zeros((self.n_params, self.n_params), dtype=np.float64)
        chunks = self.indices // self.chunk_size
        for chunk in tqdm(np.unique(chunks), desc="mean metric", unit="chunk", disable=not progress):
            total += self.store.read_rows("metric", self.indices[chunks == chunk]).astype(np.float64).sum(axis=0)
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
            raise TypeError(f"dataset must have 'indices' and 'chunk_size' (a StoreDataset), got {type(dataset).__name__}")
        check_int(seed, "seed", 0)
        check_bool(shuffle, "shuffle")
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
        check_int(epoch, "epoch", 0)
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
        check_int(seed, "seed", 0)
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
        check_int(epoch, "epoch", 0)
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
    check_int(batch_size, "batch_size", 1)
    check_int(num_workers, "num_workers", 0)
    check_bool(drop_last, "drop_last")
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
