"""StoreDataset / ChunkShuffleSampler / make_loader on tiny real stores: stored values for every
split, re-synthesised audio, multi-process loading, the sampler's order, the mean metric, the
chunk-aware reads, and the errors (features-only store, failed / pending / empty splits)."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
import torch
from _stores import build_tiny_store

from pnp import store as pstore
from pnp.data import FIELDS, ChunkShuffleSampler, StoreDataset, make_loader

N, CHUNK = 27, 4
STORED = ("theta", "nu", "bin", "split", "features", "jacobian", "metric", "eigvals")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_tiny_store(tmp_path_factory.mktemp("data") / "tiny.zarr")


@pytest.fixture(scope="module")
def audio_store(tmp_path_factory):
    """Features only (no Jacobian), with the audio stored."""
    return build_tiny_store(tmp_path_factory.mktemp("data") / "tiny_audio.zarr", jacobian=False, audio=True)


@pytest.fixture(scope="module")
def arrays(store):
    g = pstore.open_group(store)
    return {name: np.asarray(g[name][:]) for name in g.array_keys()}


def _copy(store, tmp_path, name="copy.zarr"):
    dst = tmp_path / name
    shutil.copytree(store, dst)
    return str(dst)


def _set(path, name, ids, value):
    g = pstore.open_group(path, "r+")
    arr = g[name][:]
    arr[ids] = value
    g[name][:] = arr


# ------------------------------------------------------------------------------ values
@pytest.mark.parametrize("split", ["train", "val", "test", "all"])
def test_items_are_the_stored_values(store, arrays, split):
    codes = {"train": 0, "val": 1, "test": 2}
    ds = StoreDataset(store, split=split, fields=STORED)
    expect = np.arange(N) if split == "all" else np.flatnonzero(arrays["split"] == codes[split])
    np.testing.assert_array_equal(ds.indices, expect)
    assert ds.indices.dtype == np.int64 and len(ds) == expect.size > 0
    assert ds.params == ["f_c", "f_m", "gamma"] and ds.n_params == 3 and ds.chunk_size == CHUNK
    assert ds.store_fields == STORED and ds.field_shape("jacobian") == (351, 3)
    order = np.random.default_rng(0).permutation(len(ds))
    items = ds.__getitems__(order.tolist())
    for pos, item in zip(order, items):
        i = int(ds.indices[pos])
        assert item["index"].dtype == torch.int64 and int(item["index"]) == i
        for name in STORED:
            value = item[name].numpy()
            if name in ("bin", "split"):
                assert item[name].dtype == torch.int64
                np.testing.assert_array_equal(value, arrays[name][i])
            else:
                assert item[name].dtype == torch.float32
                np.testing.assert_array_equal(value, arrays[name][i].astype(np.float32))
    single = ds[int(order[0])]
    for name in STORED:
        assert torch.equal(single[name], items[0][name])
    assert torch.equal(ds[-1]["index"], torch.tensor(int(ds.indices[-1])))
    # float64 keeps the stored float64 arrays exactly
    ds64 = StoreDataset(store, split=split, fields=("metric", "theta"), dtype=torch.float64)
    batch = ds64.get_batch(np.arange(len(ds64)))
    np.testing.assert_array_equal(batch["metric"].numpy(), arrays["metric"][ds64.indices])
    np.testing.assert_array_equal(batch["theta"].numpy(), arrays["theta"][ds64.indices])


def test_audio_input_is_the_synth_output(store, audio_store, arrays):
    ds = StoreDataset(store, split="all", fields=("nu",), input="audio")
    assert not ds.audio_from_store
    batch = ds.get_batch(np.arange(N))
    assert batch["audio"].shape == (N, 512) and batch["audio"].dtype == torch.float32
    synth = ds.spec.build_synth()
    param = ds.spec.parametrization(synth)
    theta = torch.as_tensor(param.nu(arrays["theta"]), dtype=torch.float64)
    with torch.no_grad():
        direct = synth(param.theta(theta))
    torch.testing.assert_close(batch["audio"], direct.float(), rtol=0, atol=1e-6)
    assert direct.abs().max() > 0.1
    # a store with audio: read, and the re-synthesis equals the stored sounds
    st = StoreDataset(audio_store, split="all", fields=("nu",), input="audio")
    assert st.audio_from_store
    stored = np.asarray(pstore.open_group(audio_store)["audio"][:])
    np.testing.assert_array_equal(st.get_batch(np.arange(N))["audio"].numpy(), stored)
    np.testing.assert_array_equal(st.render(arrays["theta"]).numpy(), stored)
    feats = StoreDataset(audio_store, split="val", fields=(), input="features")
    assert feats.store_fields == ("theta", "nu", "bin", "split", "features", "audio")
    assert set(feats[0]) == {"features", "index"} and feats[0]["features"].shape == (351,)


def test_mean_metric_is_the_numpy_mean(store, arrays):
    for split in ("train", "val", "all"):
        ds = StoreDataset(store, split=split)
        M = ds.mean_metric()
        assert M.dtype == torch.float64 and M.shape == (3, 3)
        np.testing.assert_allclose(M.numpy(), arrays["metric"][ds.indices].mean(axis=0), rtol=1e-13)


# ------------------------------------------------------------------------------ loading
def _collect(loader):
    out = {}
    for batch in loader:
        assert batch["nu"].shape[1:] == (3,) and batch["metric"].shape[1:] == (3, 3)
        for b, i in enumerate(batch["index"].tolist()):
            assert i not in out
            out[i] = (batch["nu"][b], batch["metric"][b], batch["audio"][b])
    return out


def test_dataloader_workers_give_the_same_samples(store):
    ds = StoreDataset(store, split="train", input="audio")
    pickle.loads(pickle.dumps(ds))  # picklable before and after reading
    ds[0]
    clone = pickle.loads(pickle.dumps(ds))
    assert clone.store._group is None and torch.equal(clone[3]["metric"], ds[3]["metric"])
    a = _collect(make_loader(ds, batch_size=5, num_workers=0, seed=1))
    b = _collect(make_loader(ds, batch_size=5, num_workers=2, seed=1))
    assert sorted(a) == sorted(b) == ds.indices.tolist()
    for i in a:
        for x, y in zip(a[i], b[i]):
            assert torch.equal(x, y)
    # whole batches: the same batches, values and order as a per-sample DataLoader with collation
    for drop_last in (False, True):
        whole = make_loader(ds, batch_size=5, seed=1, drop_last=drop_last)
        per_sample = torch.utils.data.DataLoader(ds, batch_size=5, sampler=ChunkShuffleSampler(ds, seed=1),
                                                 drop_last=drop_last)
        for epoch in (0, 1):
            whole.sampler.set_epoch(epoch)
            per_sample.sampler.set_epoch(epoch)
            got, want = list(whole), list(per_sample)
            assert len(got) == len(want) > 1
            for g, w in zip(got, want):
                assert g.keys() == w.keys() and all(torch.equal(g[k], w[k]) for k in g)
    loader = make_loader(ds, batch_size=4, drop_last=True)
    assert isinstance(loader.sampler.sampler, ChunkShuffleSampler)
    assert [len(batch["index"]) for batch in loader] == [4] * (len(ds) // 4)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        make_loader(ds, batch_size=0)
    with pytest.raises(ValueError, match="num_workers must be an integer >= 0, got -1"):
        make_loader(ds, batch_size=2, num_workers=-1)


def test_chunk_shuffle_sampler(store):
    ds = StoreDataset(store, split="all", fields=("nu",))
    sampler = ChunkShuffleSampler(ds, seed=3)
    chunk_of = ds.indices // CHUNK
    orders = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        order = list(sampler)
        assert len(sampler) == N and sorted(order) == list(range(N))  # every position once
        runs = [c for k, c in enumerate(chunk_of[order]) if k == 0 or c != chunk_of[order][k - 1]]
        assert len(runs) == len(set(runs)) == 7  # chunk-contiguous
        sampler.set_epoch(epoch)
        assert list(sampler) == order  # deterministic per (seed, epoch)
        orders.append(order)
    assert orders[0] != orders[1] != orders[2] != orders[0]
    other = ChunkShuffleSampler(ds, seed=4)
    assert list(other) != orders[0]
    assert list(ChunkShuffleSampler(ds, shuffle=False)) == list(range(N))
    # a split with gaps: positions of the chunks it touches
    val = StoreDataset(store, split="val", fields=("nu",))
    vs = ChunkShuffleSampler(val, seed=0)
    order = list(vs)
    chunks = val.indices[order] // CHUNK
    assert sorted(order) == list(range(len(val)))
    assert all(chunks[k] == chunks[k - 1] or chunks[k] not in chunks[:k] for k in range(1, len(chunks)))
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        ChunkShuffleSampler(ds, seed=-1)
    with pytest.raises(ValueError, match="epoch must be an integer >= 0"):
        sampler.set_epoch(-2)
    with pytest.raises(TypeError, match="dataset must have 'indices' and 'chunk_size'"):
        ChunkShuffleSampler(list(range(5)))


def test_batched_reads_touch_each_chunk_once(store, arrays):
    ds = StoreDataset(store, split="all", fields=("nu", "features"), cache_bytes=0)
    positions = [9, 1, 8, 10, 0, 11, 2]  # chunks 2, 0, 2, 2, 0, 2, 0
    batch = ds.get_batch(positions)
    assert ds.chunk_reads == 4  # 2 chunks x 2 arrays
    np.testing.assert_array_equal(batch["features"].numpy(), arrays["features"][positions])
    np.testing.assert_array_equal(batch["nu"].numpy(), arrays["nu"][positions])
    ds.get_batch([3, 1])
    assert ds.chunk_reads == 6  # no cache: read again
    cached = StoreDataset(store, split="all", fields=("nu", "features"), cache_bytes=2**20)
    cached.get_batch([0, 1])
    cached.get_batch([2, 3, 1])
    assert cached.chunk_reads == 2  # the second batch of the same chunk reads nothing
    np.testing.assert_array_equal(cached.get_batch([3, 2])["nu"].numpy(), arrays["nu"][[3, 2]])
    # a cache smaller than one chunk caches nothing; a one-chunk cache keeps the last chunk only
    one = StoreDataset(store, split="all", fields=("features",), cache_bytes=CHUNK * 351 * 4)
    for pos in ([0], [1], [4], [5], [0]):
        one.get_batch(pos)
    assert one.chunk_reads == 3


# ------------------------------------------------------------------------------ errors
def test_argument_and_store_errors(store, audio_store, tmp_path):
    with pytest.raises(ValueError, match="split must be one of 'train', 'val', 'test', 'all', got 'valid'"):
        StoreDataset(store, split="valid")
    with pytest.raises(ValueError, match="unknown field\\(s\\) 'M', 'nus'; allowed: " + ", ".join(FIELDS)):
        StoreDataset(store, fields=("nu", "M", "nus"))
    with pytest.raises(ValueError, match="input must be None, 'audio' or 'features', got 'wave'"):
        StoreDataset(store, input="wave")
    with pytest.raises(ValueError, match="give at least one field"):
        StoreDataset(store, fields=())
    with pytest.raises(ValueError, match=r"has no 'metric' array \(its spec had store.jacobian = false"):
        StoreDataset(audio_store, fields=("nu", "metric"))
    with pytest.raises(ValueError, match=r"has no 'audio' array \(its spec had store.audio = false; use input='audio'"):
        StoreDataset(store, fields=("audio",))
    with pytest.raises(ValueError, match="the store .* has no 'metric' array"):
        StoreDataset(audio_store, fields=("nu",)).mean_metric()
    with pytest.raises(FileNotFoundError, match="no store at"):
        StoreDataset(tmp_path / "missing.zarr")
    with pytest.raises(ValueError, match="dtype must be torch.float32 or torch.float64"):
        StoreDataset(store, dtype=torch.float16)
    ds = StoreDataset(store, fields=("nu",))
    with pytest.raises(IndexError, match="position 99 is out of range for a dataset of 17 samples"):
        ds.get_batch([0, 99])
    # an empty split
    empty = _copy(store, tmp_path, "empty.zarr")
    _set(empty, "split", slice(None), 0)
    with pytest.raises(ValueError, match=r"split 'test' of the store .* is empty \(the store has train 27, val 0, test 0"):
        StoreDataset(empty, split="test")
    assert len(StoreDataset(empty, split="train")) == N


def test_failed_and_pending_samples(store, arrays, tmp_path):
    train = np.flatnonzero(arrays["split"] == 0)
    val = np.flatnonzero(arrays["split"] == 1)
    failed = _copy(store, tmp_path, "failed.zarr")
    _set(failed, "status", train[[0, 5, 6]], pstore.FAILED)
    with pytest.raises(ValueError, match="3 of the 17 samples of split 'train' .* failed in the precompute.*skip_failed=True"):
        StoreDataset(failed, split="train")
    ds = StoreDataset(failed, split="train", skip_failed=True)
    np.testing.assert_array_equal(ds.indices, np.delete(train, [0, 5, 6]))
    assert ds.counts == {"pending": 0, "done": 14, "failed": 3}
    assert len(StoreDataset(failed, split="val")) == val.size  # other splits are unaffected
    np.testing.assert_allclose(ds.mean_metric().numpy(), arrays["metric"][ds.indices].mean(0), rtol=1e-13)
    _set(failed, "status", val, pstore.FAILED)
    with pytest.raises(ValueError, match=f"has no usable sample: all {val.size} failed"):
        StoreDataset(failed, split="val", skip_failed=True)
    pending = _copy(store, tmp_path, "pending.zarr")
    _set(pending, "status", train[[1, 2]], pstore.PENDING)
    _set(pending, "status", train[[3]], pstore.FAILED)
    for skip in (False, True):
        with pytest.raises(ValueError, match=r"2 of the 17 samples of split 'train' .* are pending.*re-run `pnp precompute"):
            StoreDataset(pending, split="train", skip_failed=skip)
    with pytest.raises(ValueError, match=r"2 of the 27 samples of split 'all'"):
        StoreDataset(pending, split="all")
    assert len(StoreDataset(pending, split="test")) == int(np.sum(arrays["split"] == 2))
