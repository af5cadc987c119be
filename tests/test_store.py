"""pnp.store: schema, creation, write protocol, open / validate, xarray, clear errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import zarr

from pnp import store as pstore
from pnp.spec import loads_spec

SPEC = """
name = "unit"
[synth]
name = "amchirp"
config = { duration = 0.125 }
fixed = { f_c = 600.0 }
[grid]
kind = "jittered"
counts = [5, 2]
seed = 4
[split]
rule = "pnp"
val_bins = [[1, 3], [0, 1]]
n_test = 2
[representation]
name = "jtfs"
config = { J = 5, Q = [4, 1], J_fr = 2, F = 2, T = "global" }
[features]
compression = "log1p"
[store]
chunk_size = 4
{extra}
"""


def make_spec(extra: str = ""):
    return loads_spec(SPEC.replace("{extra}", extra), source="unit.toml")


def create(path, spec=None, K=7, n_time=None):
    spec = spec or make_spec()
    synth = spec.build_synth()
    rep = spec.build_representation(synth)
    param = spec.parametrization(synth)
    attrs = pstore.provenance(spec, synth, rep, param, K, "cpu")
    return pstore.create_store(str(path), spec, attrs, K, n_time=n_time)


def test_create_schema_layout_and_provenance(tmp_path):
    spec = make_spec()
    g = create(tmp_path / "s.zarr", spec)
    L = spec.layout()
    S, P, K = 10, 2, 7
    expected = {
        "theta": ((S, P), "float64", ("sample", "param")),
        "nu": ((S, P), "float32", ("sample", "param")),
        "bin": ((S, P), "int32", ("sample", "param")),
        "split": ((S,), "int8", ("sample",)),
        "status": ((S,), "uint8", ("sample",)),
        "features": ((S, K), "float32", ("sample", "coef")),
        "jacobian": ((S, K, P), "float32", ("sample", "coef", "param")),
        "metric": ((S, P, P), "float64", ("sample", "param_i", "param_j")),
        "eigvals": ((S, P), "float64", ("sample", "eig")),
    }
    assert set(g.array_keys()) == set(expected)
    for name, (shape, dtype, dims) in expected.items():
        a = g[name]
        assert a.shape == shape and str(a.dtype) == dtype and tuple(a.metadata.dimension_names) == dims, name
        assert a.chunks == (4,) + shape[1:], name  # chunked along sample only
        assert a.compressors, name  # compressed
    np.testing.assert_array_equal(g["theta"][:], L.theta)
    np.testing.assert_array_equal(g["nu"][:], L.nu.astype(np.float32))
    np.testing.assert_array_equal(g["bin"][:], L.bins)
    np.testing.assert_array_equal(g["split"][:], L.split)
    assert np.all(g["status"][:] == pstore.PENDING) and np.all(np.isnan(g["features"][:]))
    a = dict(g.attrs)
    assert a["pnp_store"] == {"schema": 1, "state": "ready"}
    assert a["params"] == ["f_m", "gamma"] and a["fixed"] == {"f_c": 600.0}
    assert a["spec"] == spec.to_dict() and a["spec_hash"] == spec.hash
    assert a["synth"]["name"] == "amchirp" and a["parameter_space"]["parameters"][0]["name"] == "f_c"
    assert a["representation"]["name"] == "jtfs" and a["representation"]["log1p_c"] == 1e-3
    assert a["compression"] == {"kind": "log1p", "c": 1e-3, "formula": "log1p(|S| / c)"}
    assert a["normalizer"]["free"] == ["f_m", "gamma"] and a["normalizer"]["range"] == [-1.0, 1.0]
    assert {"torch", "numpy", "zarr", "dask", "python"} <= set(a["versions"])
    assert "git_commit" in a and a["device"] == "cpu" and a["created"].endswith("+00:00")
    assert a["status_codes"] == {"pending": 0, "done": 1, "failed": 2}
    json.dumps(a)  # JSON-able
    # open_store: lazy dask arrays + attributes
    st = pstore.open_store(tmp_path / "s.zarr")
    import dask.array as da

    assert isinstance(st["features"], da.Array) and st["features"].chunks[0] == (4, 4, 2)
    assert st.counts() == {"pending": 10, "done": 0, "failed": 0} and st.params == ["f_m", "gamma"]
    np.testing.assert_array_equal(st["theta"].compute(), L.theta)
    assert st.spec().diff(spec) == []


def test_write_chunk_protocol(tmp_path):
    g = create(tmp_path / "s.zarr")
    rng = np.random.default_rng(0)
    data = {
        "features": rng.standard_normal((4, 7)),
        "jacobian": rng.standard_normal((4, 7, 2)),
        "metric": rng.standard_normal((4, 2, 2)),
        "eigvals": rng.standard_normal((4, 2)),
    }
    status = np.array([1, 1, 2, 1], dtype=np.uint8)
    pstore.write_chunk(g, 1, data, status)
    np.testing.assert_array_equal(g["status"][:], [0, 0, 0, 0, 1, 1, 2, 1, 0, 0])
    np.testing.assert_array_equal(g["features"][4:8], data["features"].astype(np.float32))
    np.testing.assert_array_equal(g["metric"][4:8], data["metric"])
    assert np.all(np.isnan(g["features"][:4]))
    assert pstore.pending_chunks(g) == [0, 2]
    # the last, short chunk
    short = {k: v[:2] for k, v in data.items()}
    pstore.write_chunk(g, 2, short, np.array([1, 1], dtype=np.uint8))
    assert pstore.pending_chunks(g) == [0]
    # errors: missing array, wrong shape, bad status codes, chunk out of range
    with pytest.raises(ValueError, match=r"missing \['jacobian'\]"):
        pstore.write_chunk(g, 0, {k: v for k, v in data.items() if k != "jacobian"}, np.ones(4))
    with pytest.raises(ValueError, match=r"features: expected shape \(4, 7\), got \(4, 6\)"):
        pstore.write_chunk(g, 0, {**data, "features": data["features"][:, :6]}, np.ones(4))
    with pytest.raises(ValueError, match="status must be"):
        pstore.write_chunk(g, 0, data, np.zeros(4))
    with pytest.raises(ValueError, match=r"chunk must be in \[0, 2\], got 3"):
        pstore.write_chunk(g, 3, data, np.ones(4))
    # nothing of the refused writes reached the store
    assert pstore.pending_chunks(g) == [0] and np.all(np.isnan(g["features"][:4]))


def test_unreadable_status_chunk_reads_as_pending(tmp_path):
    g = create(tmp_path / "s.zarr")
    data = {"features": np.zeros((4, 7)), "jacobian": np.zeros((4, 7, 2)), "metric": np.zeros((4, 2, 2)),
            "eigvals": np.zeros((4, 2))}
    for c in (0, 1):
        pstore.write_chunk(g, c, data, np.ones(4, dtype=np.uint8))
    assert pstore.pending_chunks(g) == [2]
    (tmp_path / "s.zarr" / "status" / "c" / "1").write_bytes(b"garbage, as if truncated")
    st = pstore.read_status(g)
    np.testing.assert_array_equal(st, [1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    assert pstore.pending_chunks(g) == [1, 2]


def test_features_only_and_audio_schema(tmp_path):
    spec = make_spec('jacobian = false\naudio = true')
    g = create(tmp_path / "f.zarr", spec, K=5, n_time=1024)
    assert set(g.array_keys()) == {"theta", "nu", "bin", "split", "status", "features", "audio"}
    assert g["audio"].shape == (10, 1024) and tuple(g["audio"].metadata.dimension_names) == ("sample", "time")
    pstore.validate_store(g)
    with pytest.raises(ValueError, match="n_time is required"):
        create(tmp_path / "g.zarr", spec, K=5)


def test_xarray_reads_a_labelled_dataset(tmp_path):
    xr = pytest.importorskip("xarray")
    create(tmp_path / "s.zarr")
    ds = xr.open_zarr(tmp_path / "s.zarr")  # consolidated: no warning, no fallback
    assert ds["jacobian"].dims == ("sample", "coef", "param")
    assert ds["metric"].dims == ("sample", "param_i", "param_j")
    assert dict(ds.sizes) == {"sample": 10, "param": 2, "coef": 7, "param_i": 2, "param_j": 2, "eig": 2}
    assert ds["split"].dtype == np.int8 and ds["status"].dtype == np.uint8  # not masked to float
    assert ds.attrs["params"] == ["f_m", "gamma"]
    st = pstore.open_store(tmp_path / "s.zarr")
    assert st.to_xarray()["theta"].shape == (10, 2)


def test_validate_and_open_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no store at"):
        pstore.open_store(tmp_path / "missing.zarr")
    plain = zarr.open_group(str(tmp_path / "plain.zarr"), mode="w", zarr_format=3)
    plain.attrs["x"] = 1
    with pytest.raises(ValueError, match="is not a pnp store"):
        pstore.open_store(tmp_path / "plain.zarr")
    (tmp_path / "notzarr").mkdir()
    (tmp_path / "notzarr" / "file.txt").write_text("hello")
    with pytest.raises(ValueError, match="is not a zarr v3 group"):
        pstore.open_store(tmp_path / "notzarr")
    g = create(tmp_path / "s.zarr")
    # an interrupted creation is reported as such
    g.attrs["pnp_store"] = {"schema": 1, "state": "creating"}
    with pytest.raises(ValueError, match="store creation was interrupted"):
        pstore.validate_store(g)
    g.attrs["pnp_store"] = {"schema": 1, "state": "ready"}
    # a missing array
    del g["eigvals"]
    with pytest.raises(ValueError, match="array 'eigvals' missing"):
        pstore.validate_store(g)


def test_create_errors(tmp_path):
    create(tmp_path / "s.zarr")
    with pytest.raises(FileExistsError, match="already holds a pnp store"):
        create(tmp_path / "s.zarr")
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="not a pnp store"):
        create(tmp_path / "file")
    with pytest.raises((ValueError, PermissionError), match=r"cannot create the store at .*file/sub.zarr"):
        create(tmp_path / "file" / "sub.zarr")
    if os.geteuid() != 0:  # root ignores permissions
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(PermissionError, match="not writable"):
                create(ro / "s.zarr")
        finally:
            ro.chmod(0o700)


def test_helpers(tmp_path):
    assert pstore.chunk_ranges(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert pstore.is_url("s3://bucket/x.zarr") and not pstore.is_url("/tmp/x.zarr")
    assert pstore.normalise_path("rel.zarr") == str(Path.cwd() / "rel.zarr")
    assert pstore.normalise_path("s3://b/x.zarr/") == "s3://b/x.zarr"
    with pytest.raises(ValueError, match="must not be empty"):
        pstore.normalise_path("")
    create(tmp_path / "s.zarr")
    assert pstore.store_size(str(tmp_path / "s.zarr")) > 1000
    assert pstore.human_bytes(1234567) == "1.2 MB" and pstore.human_bytes(12) == "12 B"
